"""Hostile input to every subcommand is one line naming what is wrong, exit status 2, never a
traceback."""
import json
import re
import subprocess
import sys

import mxnet as mx
import pytest
from mxnet import init

import gluonbert
from gluonbert import cli, jobs
from gluonbert.data import locate
from gluonbert.data.nli import locate_snli
from gluonbert.data.vocab import Vocab
from gluonbert.data.tokenization import WhitespaceTokenizer
from gluonbert.tasks import get_task
from gluonbert.tasks.saved import save_task_model
from gluonbert.pretrained.saved import save_pretrained

VOCAB = Vocab(reserved_tokens=['<pad>', '<mask>', '<cls>', '<sep>', 'a', 'man', 'dog'])


@pytest.fixture
def no_data(tmp_path, monkeypatch):
    """A user's clone (issue 30): no $GLUONBERT_DATA, no ``../shared/data`` beside the
    repository or the working directory, no d2l cache ``../data``, no download, an empty
    preprocessing cache. The repository root and the working directory are moved to a folder
    of their own, so that this holds in any checkout, the project's own included."""
    clone = tmp_path / 'user' / 'clone'
    clone.mkdir(parents=True)
    monkeypatch.setattr(locate, '_REPO_ROOT', clone)
    monkeypatch.chdir(clone)
    monkeypatch.delenv('GLUONBERT_DATA', raising=False)
    monkeypatch.setenv('GLUONBERT_NO_DOWNLOAD', '1')
    monkeypatch.setenv('GLUONBERT_CACHE', str(tmp_path / 'cache'))
    for name in ('wikitext-2', 'snli-1.0-devtest', 'snli_1.0', 'sick'):
        assert not any(f.exists() for f in locate.candidate_folders(name, name)), name
    with pytest.raises(locate.DataNotFoundError):
        locate_snli()
    return clone


@pytest.fixture(scope='module')
def folders(tmp_path_factory):
    root = tmp_path_factory.mktemp('cli')
    mx.random.seed(0)
    bert = gluonbert.BERTModel(len(VOCAB), 16, 24, 2, 1, 0.0, max_len=32)
    bert.initialize(init.Xavier())
    save_pretrained(bert, VOCAB, root / 'pretrained', config=bert.config)
    task = get_task('snli')
    labels = ['entailment', 'contradiction', 'neutral']
    net = task.head(bert, labels)
    net.output.initialize(init.Xavier())
    save_task_model(net, bert, VOCAB, WhitespaceTokenizer(), root / 'finetuned', task, labels,
                    32)
    for name in ('question-answering', 'multiple-choice'):
        task = get_task(name)
        net = task.head(bert, None)
        net.output.initialize(init.Xavier())
        save_task_model(net, bert, VOCAB, WhitespaceTokenizer(), root / name, task, None, 32)
    (root / 'afile').write_text('x')
    (root / 'three.tsv').write_text('a\tb\tc\n')
    (root / 'spaces.tsv').write_text('a man\ta dog\na man  a dog\n')
    (root / 'hfbadvocab').mkdir()  # an HF folder whose vocab.txt is not UTF-8
    (root / 'hfbadvocab' / 'config.json').write_text(json.dumps(dict(
        vocab_size=5, hidden_size=16, intermediate_size=24, num_attention_heads=2,
        num_hidden_layers=1, max_position_embeddings=32)))
    (root / 'hfbadvocab' / 'vocab.txt').write_bytes(b'[PAD]\n[UNK]\ncaf\xe9\n[CLS]\n[SEP]\n')
    (root / 'hfbadvocab' / 'model.safetensors').write_text('')
    (root / 'infersent').mkdir()  # SNLI in InferSent files, one of them not UTF-8
    (root / 'infersent' / 's1.train').write_text('a man\na dog\n')
    (root / 'infersent' / 's2.train').write_bytes(b'a dog\na caf\xe9\n')
    (root / 'infersent' / 'labels.train').write_text('entailment\nneutral\n')
    (root / 'hflist').mkdir()  # an HF folder whose config.json holds a list
    for name, content in (('config.json', '[{"hidden_size": 16}]'), ('vocab.txt', '[PAD]\n'),
                          ('model.safetensors', '')):
        (root / 'hflist' / name).write_text(content)
    for name, file, content in (('badvocab', 'vocab.json', 'not json'),
                                ('badconfig', 'config.json', '{"bert": 3}'),
                                ('badparams', 'model.params', 'garbage'),
                                ('badtokenizer', 'tokenizer.json', '{"kind": "bpe"}')):
        folder = root / name
        folder.mkdir()
        for other in ('vocab.json', 'config.json', 'model.params', 'tokenizer.json'):
            (folder / other).write_bytes((root / 'finetuned' / other).read_bytes())
        (folder / file).write_text(content)
    # global names, numbered as in a fresh process (this one has built other models before)
    arrays = {re.sub(r'^bertmodel\d+_', 'bertmodel0_', p.name): p.data()
              for p in bert.collect_params().values()}
    for name, kind, content in (('globalnames', 'pretrained', arrays),
                                ('nonames', 'pretrained', {}),
                                ('globalnames-finetuned', 'finetuned', arrays)):
        folder = root / name  # as saved before config.json recorded the weights' sha256
        folder.mkdir()
        for other in (root / kind).iterdir():
            (folder / other.name).write_bytes(other.read_bytes())
        config = json.loads((folder / 'config.json').read_text())
        config.pop('weights')
        (folder / 'config.json').write_text(json.dumps(config))
        mx.nd.save(str(next(folder.glob('*.params'))), content)
    for name, kind, params in (('swapped-finetuned', 'finetuned', 'pretrained'),
                               ('swapped-pretrained', 'pretrained', 'finetuned')):
        folder = root / name  # the other kind's parameter file put in as this kind's
        folder.mkdir()
        for other in (root / kind).iterdir():
            (folder / other.name).write_bytes(other.read_bytes())
        file, = (root / params).glob('*.params')
        (folder / next((root / kind).glob('*.params')).name).write_bytes(file.read_bytes())
    return root


CASES = [
    (['evaluate', '--model', '{root}/badvocab'], 'vocab.json\' is not a JSON list'),
    (['evaluate', '--model', '{root}/badconfig'], 'config.json: expected "task"'),
    (['evaluate', '--model', '{root}/badtokenizer'], "kind 'bpe'; expected 'whitespace', 'words' or"),
    (['evaluate', '--model', '{root}/badparams'], 'is not an MXNet parameter file'),
    (['evaluate', '--model', '{root}/afile'], 'is not a fine-tuned task model folder'),
    (['evaluate', '--model', '{root}/swapped-finetuned'],
     'swapped-finetuned/model.params lacks parameter output.weight, which the model its folder '
     'describes needs: the file holds encoder, hidden, mlm, nsp, the model has encoder, hidden, '
     "output; it is another kind of model's file (a fine-tuned model.params in place of "
     'pretrained.params, or the reverse?)'),
    (['finetune', '--pretrained', '{root}/swapped-pretrained', '--max-len', '32'],
     'swapped-pretrained/pretrained.params lacks parameter mlm.mlp.0.weight, which the model its '
     'folder describes needs: the file holds encoder, hidden, output, the model has encoder, '
     'hidden, mlm, nsp'),
    (['finetune', '--pretrained', '{root}/globalnames', '--max-len', '32'],
     'globalnames/pretrained.params holds arrays named bertmodel0_bertencoder0_embedding0_weight, '
     'bertmodel0_bertencoder0_embedding1_weight, bertmodel0_bertencoder0_pos_embedding, ..., none '
     "by the model's structure (encoder.pos_embedding, ...) as save_parameters names them; it is "
     'no gluonbert or d2l parameter file'),
    (['evaluate', '--model', '{root}/globalnames-finetuned'],
     'globalnames-finetuned/model.params holds arrays named bertmodel0_bertencoder0_embedding0_'),
    (['finetune', '--pretrained', '{root}/nonames', '--max-len', '32'],
     'nonames/pretrained.params holds no arrays; expected the named parameters save_parameters '
     'writes'),
    (['predict', '--model', '{root}/finetuned', '{root}/nosuch.tsv'], 'No such file'),
    (['predict', '--model', '{root}/finetuned', '{root}'], 'Is a directory'),
    (['predict', '--model', '{root}/finetuned', '{root}/three.tsv'],
     'line 1: expected text<TAB>text (exactly one tab: the model was trained on pairs), found '
     '2 tabs'),
    (['predict', '--model', '{root}/finetuned', '{root}/spaces.tsv'],
     'spaces.tsv, line 2: expected text<TAB>text (exactly one tab: the model was trained on '
     'pairs), found 0 tabs'),
    (['predict', '--model', '{root}/question-answering', '{root}/three.tsv'],
     'three.tsv, line 1: expected question<TAB>context (one tab, both non-empty), found 2 tabs'),
    (['predict', '--model', '{root}/multiple-choice', '{root}/three.tsv'],
     'three.tsv, line 1: expected context<TAB>question<TAB>ending0<TAB>ending1... (at least '
     'two endings), found 3 fields'),
    (['export', '--model', '{root}/finetuned', '--out', '{root}/afile'], 'is a file'),
    (['export', '--model', '{root}/finetuned', '--out', '{root}/afile/x'], 'Not a directory'),
    (['export', '--model', '{root}/finetuned', '--out', '{root}'], 'is not a gluonbert ONNX'),
    (['finetune', '--pretrained', '{root}/afile'], 'neither a gluonbert folder'),
    (['finetune', '--pretrained', '{root}/hfbadvocab', '--max-len', '32'],
     "hfbadvocab/vocab.txt: not UTF-8 (byte b'\\xe9' cannot be decoded); expected a BERT "
     'vocab.txt in UTF-8'),
    (['finetune', '--pretrained', '{root}/pretrained', '--train', '{root}/infersent/s1.train',
      '--max-len', '32'],
     "infersent/s2.train: not UTF-8 (byte b'\\xe9' cannot be decoded); expected a UTF-8 text "
     'file'),
    (['finetune', '--pretrained', '{root}/hflist', '--max-len', '32'],
     "config.json holds a JSON list; expected a JSON object of BERT settings (HF's "
     "BertConfig)"),
    (['finetune', '--pretrained', '{root}/pretrained', '--max-len', '64'],
     "--max-len 64 exceeds the pretrained model's max_len 32"),
    (['finetune', '--pretrained', '{root}/pretrained', '--devices', 'cpu:x'],
     "device 'cpu:x' is not understood"),
    (['finetune', '--pretrained', '{root}/pretrained', '--data-dir', '{root}/nosuch',
      '--max-len', '32'],
     'nosuch'),
    (['finetune', '--pretrained', '{root}/pretrained', '--groups', '{{bad', '--max-len', '32'],
     "--groups '{{bad' is not JSON"),
    (['finetune', '--pretrained', '{root}/pretrained', '--task', 'classification',
      '--max-answer-len', '5'], '--max-answer-len 5: a setting of --task question-answering; '
     '--task classification has no such setting'),
    (['finetune', '--pretrained', '{root}/pretrained', '--task', 'question-answering',
      '--max-len', '32', '--doc-stride', '40'],
     '--task question-answering at --max-len 32: doc_stride=40: expected 1 to 24'),
    (['finetune', '--pretrained', '{root}/pretrained', '--amp', 'fp16', '--max-len', '32'],
     '--amp fp16: amp="float16" needs GPU contexts'),
    (['pretrain', '--amp', 'fp16', '--fallback', 'embedded', '--steps', '1'],
     '--amp fp16: amp="float16" needs GPU contexts'),
    (['pretrain', '--data-dir', '{root}/nosuch'], 'does not exist'),
    (['pretrain', '--num-heads', '3', '--fallback', 'embedded', '--steps', '1'],
     'num_hiddens=128 is not divisible by num_heads=3'),
    (['pretrain', '--batch-size', '100000'], 'GiB for one step\'s activations'),
    (['pretrain', '--config', '{root}/afile'], 'is not valid JSON/TOML'),
    (['pretrain', '--config', '{root}'], 'is a folder'),
    (['pretrain', '--save-config', '{root}'], 'is a folder; expected the path of a file'),
    (['pretrain', '--out', '{root}/finetuned', '--fallback', 'embedded', '--steps', '1',
      '--batch-size', '4'], 'is not a pretrained folder'),
]


@pytest.mark.parametrize('args, message', CASES, ids=[' '.join(a[:2]) + f' {i}'
                                                      for i, (a, _) in enumerate(CASES)])
def test_hostile_input_is_one_line_and_exit_2(folders, no_data, capsys, args, message):
    args = [a.format(root=folders) for a in args]
    assert cli.main(args) == 2
    err = capsys.readouterr().err
    lines = [line for line in err.strip().splitlines() if not line.startswith('MXNet ')]
    assert len(lines) == 1 and 'Traceback' not in err, err
    assert lines[0].startswith('gluonbert') and ': error: ' in lines[0]
    assert message.format(root=folders) in lines[0], lines[0]
    assert 'allow_missing' not in err and 'ignore_extra' not in err  # MXNet's wording


def test_a_folder_the_pretrain_job_refused_is_left_as_it_was(folders, capsys):
    before = sorted(p.name for p in (folders / 'finetuned').iterdir())
    cli.main(['pretrain', '--out', str(folders / 'finetuned'), '--fallback', 'embedded',
              '--steps', '1', '--batch-size', '4'])
    assert sorted(p.name for p in (folders / 'finetuned').iterdir()) == before
    assert json.loads((folders / 'finetuned' / 'config.json').read_text())['max_len'] == 32


# Errors that need no data: reported before any data set is looked up or read, and before
# any model folder is loaded (issue 30: they came after "SNLI not found" in a user's clone)
DATA_FREE_CASES = [
    (['finetune', '--pretrained', '{root}/pretrained', '--groups', '{{bad'],
     "--groups '{{bad' is not JSON"),
    (['finetune', '--pretrained', '{root}/pretrained', '--groups', '[1]'],
     "--groups '[1]' is not a JSON object"),
    (['finetune', '--pretrained', '{root}/pretrained', '--groups', '{{"x": {{"lr": 2}}}}'],
     "--groups: groups['x'] has unknown keys ['lr']"),
    (['finetune', '--pretrained', '{root}/pretrained', '--groups',
      '{{"x": {{"lr_mult": "a"}}}}'], 'lr_mult and wd_mult must be numbers'),
    (['finetune', '--pretrained', '{root}/pretrained', '--task', 'question-answering',
      '--max-len', '32', '--doc-stride', '40'], 'doc_stride=40: expected 1 to 24'),
    (['finetune', '--pretrained', '{root}/pretrained', '--task', 'classification',
      '--max-answer-len', '5'], '--task classification has no such setting'),
    (['finetune', '--pretrained', '{root}/pretrained', '--task', 'regression', '--strategy',
      'rdrop'], "--strategy rdrop: R-Drop compares two predicted class distributions; task "
     "'regression' has none"),
    (['finetune', '--pretrained', '{root}/pretrained', '--train-limit', '10', '--batch-size',
      '4', '--epochs', '1', '--eval-every', '4'], '--eval-every 4 exceeds the at most 3 updates'),
    (['finetune', '--pretrained', '{root}/pretrained', '--out', '{root}/afile/x'],
     'Not a directory'),
    (['finetune', '--pretrained', '{root}/pretrained', '--out', '{root}/pretrained'],
     'is not a fine-tuned task model'),
    (['finetune', '--pretrained', '{root}/pretrained', '--checkpoint-dir', '{root}/afile'],
     "checkpoint folder '{root}/afile' is a file"),
    (['finetune', '--pretrained', '{root}/pretrained', '--resume', '--checkpoint-dir',
      '{root}/nosuch'], 'nosuch'),
    (['finetune', '--pretrained', '{root}/pretrained', '--amp', 'fp16'],
     'amp="float16" needs GPU contexts'),
    (['export', '--model', '{root}/finetuned', '--out', '{root}/afile/x'], 'Not a directory'),
    (['pretrain', '--num-heads', '3'], 'num_hiddens=128 is not divisible by num_heads=3'),
    (['main', '--num-heads', '3'], 'num_hiddens=128 is not divisible by num_heads=3'),
    (['pretrain', '--amp', 'fp16'], 'amp="float16" needs GPU contexts'),
    (['pretrain', '--corpus', '{root}/three.tsv', '--synthetic'], '--corpus with --synthetic'),
    (['pretrain', '--vocab', '{root}/afile'], '--vocab needs --corpus'),
    (['pretrain', '--corpus', '{root}/nosuch.txt', '--add-tokens', '{root}/afile'],
     '--add-tokens needs --pretrained'),
    (['pretrain', '--corpus', '{root}/nosuch.txt:heavy'], "weight 'heavy' is not a positive"),
    (['pretrain', '--corpus', '{root}/three.tsv', '--steps', '10', '--eval-every', '100'],
     '--eval-every 100 exceeds --steps 10'),
    (['pretrain', '--summary', '{root}'], 'is a folder; expected the path of a file'),
    (['pretrain', '--corpus', '{root}/three.tsv', '--save-hf', '{root}/finetuned'],
     'is not a HF BERT folder'),
    (['pretrain', '--out', '{root}/afile/x'], 'Not a directory'),
    (['split', '{root}/nosuch.tsv', '--out', '{root}/finetuned'], 'exists and is not empty'),
    (['split', '{root}/nosuch.tsv', '--out', '{root}/new', '--dev-fraction', '0.5',
      '--test-fraction', '0.5'], 'leave nothing to train on'),
    (['split', '{root}/nosuch.tsv', '--out', '{root}/afile/x'], 'Not a directory'),
]


@pytest.fixture
def nothing_read(no_data, monkeypatch):
    """``no_data``, and a look-up or read of any data set, or a load of a model folder, fails
    the test (an AssertionError is no user error: it reaches pytest)."""
    def forbidden(name):
        def call(*args, **kwargs):
            raise AssertionError(f'{name} ran before the option was checked')
        return call
    for name in ('gluonbert.data.locate.candidate_folders', 'gluonbert.data.nli.candidate_folders',
                 'gluonbert.data.locate._checked_folder', 'gluonbert.jobs.load_wiki_dataset',
                 'gluonbert.jobs.load_splits', 'gluonbert.jobs._eval_examples',
                 'gluonbert.jobs.corpus_start', 'gluonbert.jobs.load_pretrained_folder',
                 'gluonbert.jobs.load_task_model', 'gluonbert.tasks.group_splits.read_table',
                 'gluonbert.tasks.group_splits._read_squad_json'):
        monkeypatch.setattr(name, forbidden(name))


@pytest.mark.parametrize('args, message', DATA_FREE_CASES,
                         ids=[' '.join(a[:2]) + f' {i}' for i, (a, _) in
                              enumerate(DATA_FREE_CASES)])
def test_option_errors_come_before_any_data_is_looked_up(folders, nothing_read, capsys, args,
                                                         message):
    args = [a.format(root=folders) for a in args]
    assert cli.main(args) == 2
    err = capsys.readouterr().err
    lines = [line for line in err.strip().splitlines() if not line.startswith('MXNet ')]
    assert len(lines) == 1 and 'Traceback' not in err, err
    assert lines[0].startswith('gluonbert: error: '), lines[0]  # before the job started
    assert message.format(root=folders) in lines[0], lines[0]
    assert 'not found' not in lines[0]


def _files(folder):
    """Every file under ``folder`` (relative path -> bytes)."""
    return {str(p.relative_to(folder)): p.read_bytes() for p in folder.rglob('*')
            if p.is_file()}


def _one_error_line(capsys):
    err = capsys.readouterr().err
    lines = [line for line in err.strip().splitlines() if line.startswith('gluonbert')]
    assert len(lines) == 1 and 'Traceback' not in err, err
    return lines[0]


@pytest.fixture
def finetuned_here(folders, tmp_path, capsys):
    """A good fine-tuned model in tmp_path/m and the command line that made it."""
    train = tmp_path / 'train.tsv'
    train.write_text('sentence\tlabel\n' + 'a man\tyes\na dog\tno\n' * 10)
    command = ['finetune', '--pretrained', str(folders / 'pretrained'), '--task',
               'classification', '--train', str(train), '--max-len', '16', '--batch-size', '2',
               '--epochs', '1', '--out', str(tmp_path / 'm')]
    assert cli.main(command) == 0
    capsys.readouterr()
    return tmp_path / 'm', command


@pytest.mark.parametrize('patience', ['every step', 'in a row'])
def test_a_run_whose_every_step_is_non_finite_never_replaces_the_model(
        finetuned_here, capsys, monkeypatch, patience):
    out, command = finetuned_here
    before = _files(out)
    original = jobs.load_pretrained_folder

    def with_a_nan_weight(*args, **kwargs):  # as an HF folder holding one NaN weight
        bert, *rest = original(*args, **kwargs)
        bert.hidden.weight.set_data(bert.hidden.weight.data() * float('nan'))
        return (bert, *rest)
    monkeypatch.setattr(jobs, 'load_pretrained_folder', with_a_nan_weight)
    if patience == 'every step':  # fewer steps than the guard's patience: the epoch ends
        command = command + ['--batch-size', '8']
    assert cli.main(command) == 2
    line = _one_error_line(capsys)
    assert 'every training step' in line and 'skipped as non-finite: parameter hidden.weight ' \
        'holds NaN or infinite values' in line, line
    assert line.endswith(f'nothing saved, --out {out} left as it was'), line
    assert _files(out) == before


def test_a_run_diverging_at_an_absurd_lr_never_replaces_the_model(finetuned_here, capsys):
    out, command = finetuned_here
    before = _files(out)
    assert cli.main(command + ['--lr', '1e30', '--batch-size', '1']) == 2
    line = _one_error_line(capsys)
    assert 'training diverged after 1 updates (5 non-finite steps in a row)' in line, line
    assert 'too high a --lr 1e+30' in line and line.endswith('left as it was'), line
    assert _files(out) == before


TINY_PRETRAIN = ['pretrain', '--num-hiddens', '32', '--ffn-num-hiddens', '64', '--num-heads',
                 '2', '--num-blks', '1', '--steps', '2', '--synthetic', '--vocab-size', '50',
                 '--batch-size', '4', '--max-len', '16', '--checkpoint-every', '1']


@pytest.mark.parametrize('option, value, before', [
    ('--num-heads', '4', '2'), ('--max-len', '12', '16'), ('--batch-size', '2', '4'),
    ('--seed', '1', '0'), ('--masking', 'span', 'token')])
def test_resume_with_an_option_that_changes_the_model_or_data_is_refused(
        tmp_path, capsys, option, value, before):
    run = TINY_PRETRAIN + ['--out', str(tmp_path / 'p')]
    assert cli.main(run) == 0
    checkpoints = _files(tmp_path / 'p.checkpoints')
    capsys.readouterr()
    assert cli.main(run + ['--steps', '3', '--resume', option, value]) == 2
    assert _one_error_line(capsys) == (
        f'gluonbert pretrain: error: --resume with {option} {value}: the checkpoint was '
        f'trained with {option} {before}, and this option changes the model or the data; '
        f'resume with {option} {before}, or start a new run without --resume')
    assert _files(tmp_path / 'p.checkpoints') == checkpoints


def test_resume_with_another_lr_and_steps_says_once_what_changed(tmp_path, capsys):
    run = TINY_PRETRAIN + ['--out', str(tmp_path / 'p')]
    assert cli.main(run) == 0
    capsys.readouterr()
    assert cli.main(run + ['--steps', '4', '--lr', '0.002', '--resume']) == 0
    out = capsys.readouterr().out
    assert out.count('resumed with changed options: --lr 0.001 -> 0.002, --steps 2 -> 4\n') \
        == 1, out


def test_resume_of_a_finetuning_run_on_another_train_file_is_refused(finetuned_here, capsys,
                                                                      tmp_path):
    out, command = finetuned_here
    other = tmp_path / 'other.tsv'
    other.write_text('sentence\tlabel\n' + 'a dog\tyes\na man\tno\n' * 10)
    train = command[command.index('--train') + 1]
    assert cli.main(command + ['--resume', '--epochs', '2', '--train', str(other)]) == 2
    line = _one_error_line(capsys)
    assert line.startswith(f'gluonbert finetune: error: --resume with --train {other} ('), line
    assert f'the checkpoint was trained with --train {train} (' in line, line


def test_a_second_run_on_a_folder_in_use_is_one_line_naming_the_running_one(
        finetuned_here, capsys):
    out, command = finetuned_here
    before = _files(out)
    holder = subprocess.Popen(  # a run holding --out, as a finetune in progress does
        [sys.executable, '-c', 'import sys, time\nfrom gluonbert.folder_lock import '
         'folder_locks\nwith folder_locks(sys.argv[1]):\n    print("held", flush=True)\n'
         '    time.sleep(120)\n', str(out)], stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline() == 'held\n'
        assert cli.main(command) == 2
        line = _one_error_line(capsys)
    finally:
        holder.kill()
        holder.wait()
    assert line == (f"gluonbert finetune: error: folder={str(out)!r} is in use by another run "
                    f"(pid {holder.pid}, which holds {out.parent}/.m.lock); wait for it to "
                    f"end, or choose another --out")
    assert _files(out) == before
    assert cli.main(command) == 0  # the lock went with the process


def test_json_lines_label_of_another_type_is_one_line_naming_file_line_and_field(
        folders, tmp_path, capsys):
    train = tmp_path / 'train.jsonl'
    train.write_text('{"text": "a man", "label": "yes"}\n{"text": "a dog", "label": 1.5}\n')
    assert cli.main(['finetune', '--pretrained', str(folders / 'pretrained'), '--task',
                     'classification', '--train', str(train), '--max-len', '16',
                     '--out', str(tmp_path / 'm')]) == 2
    assert _one_error_line(capsys) == (
        f"gluonbert finetune: error: {train}, line 2: field 'label' is 1.5, a JSON number "
        f"(--label-column); the column's labels are JSON string values (from {train}, line 1)")
    assert not (tmp_path / 'm').exists()


def test_a_pretrained_folder_edited_to_other_heads_is_refused_before_fine_tuning(
        folders, tmp_path, capsys):
    import shutil
    edited = tmp_path / 'edited'
    shutil.copytree(folders / 'pretrained', edited)
    config = json.loads((edited / 'config.json').read_text())
    (edited / 'config.json').write_text(json.dumps(dict(config, num_heads=4)))
    assert cli.main(['finetune', '--pretrained', str(edited), '--max-len', '32',
                     '--out', str(tmp_path / 'm')]) == 2
    assert _one_error_line(capsys) == (
        f'gluonbert finetune: error: {edited}/config.json: num_heads=4, but the weights in '
        f'{edited}/pretrained.params were trained with num_heads=2 (recorded with their '
        f'sha256; their shapes cannot tell): restore num_heads=2')
    assert not (tmp_path / 'm').exists()


CHOICES = 'context\tquestion\tanswer0\tanswer1\tlabel\n'
CHOICES_TRAIN = CHOICES + 'a man\twho\ta man\ta dog\t0\na dog\twho\ta man\ta dog\t1\n' * 5


@pytest.mark.parametrize('task, train, test, message', [
    ('classification', 'sentence\tlabel\n' + 'a man\tyes\na dog\tno\n' * 5,
     'sentence\tlabel\na man\tyes\na dog\tmaybe\n',
     "{test}, line 3: label 'maybe' is not one of the training labels ['no', 'yes']"),
    ('classification', 'sentence\tlabel\n' + 'a man\tyes\na dog\tno\n' * 5,
     'sentence\na man\n',
     '{test}, line 2: no label; this split needs the label column (--label-column)'),
    ('token-classification', 'a O\nman B-X\n\ndog O\n\n' * 5,
     'a O\ndog O\n\na O\nman B-X\ndog B-Y\n',
     "{test}, line 6: tag 'B-Y' is not one of the training tags ['B-X', 'I-X', 'O']"),
    ('multiple-choice', CHOICES_TRAIN, 'context\tquestion\tanswer0\tanswer1\na man\twho\ta\tb\n',
     '{test}, line 2: no label; this split needs the label column (--label-column)'),
    ('multiple-choice', CHOICES_TRAIN, CHOICES + 'a man\twho\ta\tb\t1\na dog\twho\ta\tb\t2\n',
     "{test}, line 3: label='2'; expected the index of the right ending, 0 to 1"),
    ('multiple-choice', CHOICES_TRAIN, CHOICES + 'a man\twho\ta\t0\n',
     '{test}, line 2: 4 fields, the header has 5 (TSV, no quote handling)'),
], ids=['unseen label', 'no label', 'unseen tag', 'choice without label',
        'choice index out of range', 'choice missing'])
@pytest.mark.parametrize('split', ['--test', '--dev'])
def test_a_dev_or_test_label_unseen_in_training_is_refused_before_training(
        folders, tmp_path, capsys, task, train, test, message, split):
    (tmp_path / 'train.txt').write_text(train)
    (tmp_path / 'test.txt').write_text(test)
    out = tmp_path / 'm'
    assert cli.main(['finetune', '--pretrained', str(folders / 'pretrained'), '--task', task,
                     '--train', str(tmp_path / 'train.txt'), split, str(tmp_path / 'test.txt'),
                     '--max-len', '16', '--out', str(out)]) == 2
    assert _one_error_line(capsys) == ('gluonbert finetune: error: ' +
                                       message.format(test=tmp_path / 'test.txt'))
    assert 'fine-tuning from' not in capsys.readouterr().out
    assert not out.exists() and not (tmp_path / 'm.checkpoints').exists()


def test_pretraining_that_diverges_is_one_line_saying_to_lower_the_lr_and_saves_nothing(
        tmp_path, capsys):
    run = TINY_PRETRAIN + ['--out', str(tmp_path / 'p')]
    assert cli.main(run) == 0
    before = _files(tmp_path / 'p')
    capsys.readouterr()
    assert cli.main(run + ['--steps', '20', '--lr', '1e30']) == 2
    line = _one_error_line(capsys)
    assert line.startswith('gluonbert pretrain: error: pretraining diverged after '), line
    assert '5 non-finite steps in a row' in line and 'lower --lr 1e+30' in line, line
    assert line.endswith(f'nothing saved, --out {tmp_path / "p"} left as it was'), line
    assert _files(tmp_path / 'p') == before


def test_a_failed_run_leaves_the_previous_runs_metrics_and_keeps_its_own_beside_them(
        tmp_path, capsys):
    run = TINY_PRETRAIN + ['--out', str(tmp_path / 'p')]
    assert cli.main(run) == 0
    checkpoints = tmp_path / 'p.checkpoints'
    finished = {name: (checkpoints / name).read_bytes()
                for name in ('metrics.json', 'metrics.csv', 'curves.png')}
    assert cli.main(run + ['--steps', '20', '--lr', '1e30']) == 2
    assert {name: (checkpoints / name).read_bytes() for name in finished} == finished
    failed = json.loads((checkpoints / 'metrics.partial.json').read_text())
    assert [r['event'].split(',')[0] for r in failed if r['kind'] == 'guard'][:1] == [
        'skipped (non-finite)']
    assert cli.main(run) == 0  # a finished run's metrics replace them, and the failed run's
    assert not (checkpoints / 'metrics.partial.json').exists()
    assert (checkpoints / 'metrics.json').read_bytes() == finished['metrics.json']


def test_a_full_disk_is_one_line_naming_the_folder_being_written(tmp_path, capsys,
                                                                 monkeypatch):
    import errno
    import os
    run = TINY_PRETRAIN + ['--out', str(tmp_path / 'p')]
    assert cli.main(run) == 0
    before = _files(tmp_path / 'p')
    capsys.readouterr()

    def no_space(path):  # the fsync of a file written onto a full disk
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
    monkeypatch.setattr('gluonbert.atomic._fsync', no_space)
    assert cli.main(run) == 2
    assert _one_error_line(capsys) == (
        f"gluonbert pretrain: error: cannot write folder="
        f"'{tmp_path}/p.checkpoints/step-00000001': No space left on device; free space on "
        f"its disk, or write elsewhere")
    assert _files(tmp_path / 'p') == before
