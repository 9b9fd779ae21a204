"""Every saved folder (pretrained, fine-tuned, ONNX export, checkpoint) is written whole or
not at all, replaces only a previous folder of its kind, and never deletes what a folder held."""
import errno
import os
import resource
import signal
import subprocess
import sys
import time
from pathlib import Path

import mxnet as mx
import numpy as np
import pytest
from mxnet import init

import gluonbert
from gluonbert import cli
from gluonbert.atomic import atomic_folder, atomic_write
from gluonbert.data.tokenization import WhitespaceTokenizer
from gluonbert.data.vocab import Vocab
from gluonbert.export import export_onnx
from gluonbert.pretrained.saved import load_pretrained_model, save_pretrained
from gluonbert.tasks import get_task
from gluonbert.tasks.saved import load_task_model, save_task_model
from gluonbert.train.state import CheckpointManager, write_checkpoint

REPO = Path(__file__).resolve().parents[1]
LABELS = ('entailment', 'contradiction', 'neutral')


def vocab_of(size):
    return Vocab(reserved_tokens=['<pad>', '<mask>', '<cls>', '<sep>'] +
                 [f'w{i}' for i in range(size - 5)])


def bert(vocab, seed=0):
    mx.random.seed(seed)
    net = gluonbert.BERTModel(len(vocab), 16, 24, 2, 1, 0.0, max_len=16)
    net.initialize(init.Xavier())
    return net


def classifier(vocab, seed=0):
    net = gluonbert.BERTClassifier(bert(vocab, seed), 3)
    net.output.initialize(init.Xavier())
    return net


def save_snli_model(vocab, folder):
    """An snli task model of a small random BERT over ``vocab``, saved to ``folder``."""
    model, task = bert(vocab), get_task('snli')
    net = task.head(model, LABELS)
    net.output.initialize(init.Xavier())
    save_task_model(net, model, vocab, WhitespaceTokenizer(), folder, task, LABELS, 16)


def snapshot(folder):
    """Every file under ``folder`` with its bytes."""
    return {str(p.relative_to(folder)): p.read_bytes()
            for p in sorted(Path(folder).rglob('*')) if p.is_file()}


def runs_folder(tmp_path):
    """A folder as users keep one: a fine-tuned model, a pretrained one, notes."""
    runs = tmp_path / 'runs'
    vocab = vocab_of(30)
    save_snli_model(vocab, runs / 'finetuned')
    save_pretrained(bert(vocab), vocab, runs / 'pretrained')
    (runs / 'notes.txt').write_text('what I tried')
    return runs


@pytest.fixture
def full_disk():
    """Writes beyond 20 kB fail as on a full disk (RLIMIT_FSIZE), for the test's duration."""
    soft, hard = resource.getrlimit(resource.RLIMIT_FSIZE)
    previous = signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
    resource.setrlimit(resource.RLIMIT_FSIZE, (20_000, hard))
    yield
    resource.setrlimit(resource.RLIMIT_FSIZE, (soft, hard))
    signal.signal(signal.SIGXFSZ, previous)


def test_export_into_a_folder_of_other_files_is_refused_and_deletes_nothing(tmp_path):
    runs = runs_folder(tmp_path)
    before = snapshot(runs)
    vocab = vocab_of(30)
    with pytest.raises(FileExistsError, match=r"is not a gluonbert ONNX export \(holds finetuned, "
                                              r"notes.txt, pretrained\)"):
        export_onnx(classifier(vocab), runs, vocab, LABELS, 16, overwrite=True)
    assert snapshot(runs) == before


def test_the_export_command_onto_a_model_folder_exits_2_and_keeps_the_model(
        tmp_path, small_data_env, monkeypatch, capsys):
    monkeypatch.setenv('GLUONBERT_DATA', small_data_env['GLUONBERT_DATA'])
    runs = runs_folder(tmp_path)
    before = snapshot(runs)
    model = str(runs / 'finetuned')
    for out in (str(runs), model):
        assert cli.main(['export', '--model', model, '--out', out]) == 2
        error = capsys.readouterr().err.strip()
        assert error.count('\n') == 0 and 'is not a gluonbert ONNX export' in error
    assert snapshot(runs) == before


def test_the_export_command_replaces_its_own_previous_export(tmp_path, small_data_env,
                                                            monkeypatch, capsys):
    monkeypatch.setenv('GLUONBERT_DATA', small_data_env['GLUONBERT_DATA'])
    runs = runs_folder(tmp_path)
    model, out = str(runs / 'finetuned'), str(tmp_path / 'onnx')
    assert cli.main(['export', '--model', model, '--out', out]) == 0
    first = snapshot(out)
    assert cli.main(['export', '--model', model, '--out', out, '--int8']) == 0
    assert set(snapshot(out)) == set(first) | {'model.int8.onnx'}


def test_saving_a_pretrained_model_onto_a_full_disk_keeps_the_previous_one(tmp_path,
                                                                           full_disk):
    folder = tmp_path / 'bert.small'
    small, large = vocab_of(10), vocab_of(400)
    save_pretrained(bert(small), small, folder, config=bert(small).config)
    before = snapshot(folder)
    with pytest.raises(OSError, match='disk is full'):
        save_pretrained(bert(large), large, folder, config=bert(large).config)
    assert snapshot(folder) == before
    assert [p.name for p in tmp_path.iterdir()] == ['bert.small']  # no staging left behind
    net, vocab = load_pretrained_model(str(folder))
    assert len(vocab) == 10 and net.encoder.vocab_size == 10


def test_saving_a_task_model_onto_a_full_disk_keeps_the_previous_one(tmp_path, full_disk):
    folder = tmp_path / 'finetuned'
    small, large = vocab_of(10), vocab_of(400)
    save_snli_model(small, folder)
    before = snapshot(folder)
    with pytest.raises(OSError, match='disk is full'):
        save_snli_model(large, folder)
    assert snapshot(folder) == before
    assert len(load_task_model(str(folder))[2]) == 10


def test_a_pretrained_folder_is_not_saved_over_other_files(tmp_path):
    folder = tmp_path / 'mine'
    folder.mkdir()
    (folder / 'thesis.tex').write_text('years of work')
    vocab = vocab_of(10)
    with pytest.raises(FileExistsError, match=r'is not a pretrained folder \(holds thesis.tex'):
        save_pretrained(bert(vocab), vocab, folder)
    assert snapshot(folder) == {'thesis.tex': b'years of work'}


def test_a_failed_save_leaves_the_previous_folder_as_it_was(tmp_path):
    folder = tmp_path / 'out'
    with atomic_folder(folder, ('a', 'b'), 'a', 'thing') as staging:
        Path(staging, 'a').write_text('old')
    with pytest.raises(RuntimeError):
        with atomic_folder(folder, ('a', 'b'), 'a', 'thing') as staging:
            Path(staging, 'a').write_text('new')
            Path(staging, 'b').write_text('new')
            raise RuntimeError('killed half-way')
    assert snapshot(folder) == {'a': b'old'}
    assert os.listdir(tmp_path) == ['out']


def _no_space(*args):
    raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))  # as write() and fsync() raise it


@pytest.mark.parametrize('failing', ['write', 'fsync'])
def test_a_full_disk_while_writing_a_file_names_it_and_keeps_the_previous_one(
        tmp_path, monkeypatch, failing):
    path = tmp_path / 'summary.json'
    path.write_text('previous')

    def write(tmp):
        Path(tmp).write_text('new')
        if failing == 'write':
            _no_space()
    if failing == 'fsync':
        monkeypatch.setattr(os, 'fsync', _no_space)
    with pytest.raises(OSError) as raised:
        atomic_write(path, write)
    assert str(raised.value) == (f'cannot write {path}: No space left on device; free space '
                                 f'on its disk, or write elsewhere')
    assert raised.value.errno == errno.ENOSPC
    assert snapshot(tmp_path) == {'summary.json': b'previous'}


def test_a_full_disk_while_writing_a_folder_names_it_and_keeps_the_previous_one(
        tmp_path, monkeypatch):
    folder = tmp_path / 'out'
    with atomic_folder(folder, ('a', 'b'), 'a', 'thing') as staging:
        Path(staging, 'a').write_text('old')
    monkeypatch.setattr('gluonbert.atomic._fsync', _no_space)
    with pytest.raises(OSError, match=rf"^cannot write folder='{folder}': No space left on "
                                      rf"device; free space on its disk, or write elsewhere$"):
        with atomic_folder(folder, ('a', 'b'), 'a', 'thing') as staging:
            Path(staging, 'a').write_text('new')
    assert snapshot(folder) == {'a': b'old'}
    assert os.listdir(tmp_path) == ['out']


def meta(n):
    """A trainer checkpoint's state.json, marked with ``n``."""
    return {'num_updates': n, 'optimizer': {}, 'loss_scale': {}, 'guard': {}, 'rng': {},
            'data_position': {'n': n}}


def test_resaving_a_checkpoint_interrupted_between_renames_keeps_a_complete_copy(
        tmp_path, monkeypatch):
    """The old writer moved the checkpoint aside, then renamed the new one in: interrupted
    between the two, the step had no checkpoint and the next save deleted both copies."""
    root = str(tmp_path / 'ckpt')
    arrays = {'params.nd': {'w': mx.nd.ones((2,))}}
    write_checkpoint(root, 3, arrays, meta(1))
    renames = []
    real_rename = os.rename

    def rename_then_die(src, dst):
        renames.append((src, dst))
        if len(renames) == 2:
            raise KeyboardInterrupt('killed between the renames')
        real_rename(src, dst)
    monkeypatch.setattr(os, 'rename', rename_then_die)
    try:
        write_checkpoint(root, 3, {'params.nd': {'w': mx.nd.zeros((2,))}}, meta(2))
    except KeyboardInterrupt:
        pass
    monkeypatch.setattr(os, 'rename', real_rename)
    path, loaded, state = CheckpointManager(root).load_latest()
    assert path.endswith('step-00000003') and state['data_position']['n'] in (1, 2)


RESAVER = '''
import sys
import mxnet as mx
from gluonbert.pretrained.saved import save_pretrained
from gluonbert.train.state import write_checkpoint
sys.path.insert(0, {tests!r})
from test_atomic_folders import bert, meta, vocab_of
vocabs = [vocab_of(10), vocab_of(60)]
nets = [bert(v) for v in vocabs]
print('ready', flush=True)
for i in range(10 ** 6):
    k = i % 2
    write_checkpoint({root!r}, 5, {{'params.nd': {{'w': mx.nd.full((1000,), i)}}}}, meta(i))
    save_pretrained(nets[k], vocabs[k], {folder!r}, config=nets[k].config)
'''


@pytest.mark.slow
def test_a_kill_at_any_instant_of_a_resave_leaves_a_complete_loadable_copy(tmp_path):
    root, folder = str(tmp_path / 'ckpt'), str(tmp_path / 'bert.small')
    script = RESAVER.format(tests=str(REPO / 'tests'), root=root, folder=folder)
    env = dict(os.environ, PYTHONPATH=str(REPO), OMP_NUM_THREADS='1')
    rng = np.random.RandomState(0)
    for _ in range(4):
        process = subprocess.Popen([sys.executable, '-c', script], env=env,
                                   stdout=subprocess.PIPE, text=True)
        assert process.stdout.readline() == 'ready\n'
        time.sleep(0.3 + rng.uniform(0, 1.0))
        process.send_signal(signal.SIGKILL)
        process.wait()
        process.stdout.close()
        if not os.path.isdir(folder):
            continue  # killed before the first save completed
        path, _, meta = CheckpointManager(root).load_latest()
        assert path.endswith('step-00000005')
        net, vocab = load_pretrained_model(folder)  # a vocab and weights of one model
        assert net.encoder.vocab_size == len(vocab) and len(vocab) in (10, 60)


def test_an_export_onto_a_full_disk_keeps_the_previous_export(tmp_path):
    vocab = vocab_of(30)
    net = classifier(vocab)
    export_onnx(net, tmp_path / 'onnx', vocab, LABELS, 16)
    before = snapshot(tmp_path / 'onnx')
    soft, hard = resource.getrlimit(resource.RLIMIT_FSIZE)
    previous = signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
    resource.setrlimit(resource.RLIMIT_FSIZE, (20_000, hard))
    try:
        with pytest.raises(OSError):
            export_onnx(net, tmp_path / 'onnx', vocab, LABELS, 16, overwrite=True)
    finally:
        resource.setrlimit(resource.RLIMIT_FSIZE, (soft, hard))
        signal.signal(signal.SIGXFSZ, previous)
    assert snapshot(tmp_path / 'onnx') == before
    assert os.listdir(tmp_path) == ['onnx']


def test_a_checkpoint_save_onto_a_full_disk_is_an_oserror_and_keeps_the_last_one(tmp_path):
    from gluonbert.train.trainer import BERTTrainer
    vocab = vocab_of(400)
    net = classifier(vocab)
    trainer = BERTTrainer(net, lr=1e-3, quiet=True, checkpoint_dir=str(tmp_path / 'ckpt'))
    first = trainer.save({'at': 'first'})
    before = snapshot(first)
    soft, hard = resource.getrlimit(resource.RLIMIT_FSIZE)
    previous = signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
    resource.setrlimit(resource.RLIMIT_FSIZE, (20_000, hard))
    try:
        with pytest.raises(OSError, match='disk is full|incomplete'):
            trainer.save({'at': 'second'})
    finally:
        resource.setrlimit(resource.RLIMIT_FSIZE, (soft, hard))
        signal.signal(signal.SIGXFSZ, previous)
    assert snapshot(first) == before and os.listdir(tmp_path / 'ckpt') == ['step-00000000']
    assert trainer.load() == {'at': 'first'}
