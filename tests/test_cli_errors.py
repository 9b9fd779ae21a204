"""Hostile input to every subcommand is one line naming what is wrong, exit status 2, never a
traceback."""
import json

import mxnet as mx
import pytest
from mxnet import init

import gluonbert
from gluonbert import cli
from gluonbert.data import locate
from gluonbert.data.nli import locate_snli
from gluonbert.data.vocab import Vocab
from gluonbert.data.tokenization import WhitespaceTokenizer
from gluonbert.tasks import get_task
from gluonbert.tasks.saved import save_task_model
from gluonbert.train.checkpoint import save_pretrained

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
    for name, file, content in (('badvocab', 'vocab.json', 'not json'),
                                ('badconfig', 'config.json', '{"bert": 3}'),
                                ('badparams', 'model.params', 'garbage'),
                                ('badtokenizer', 'tokenizer.json', '{"kind": "bpe"}')):
        folder = root / name
        folder.mkdir()
        for other in ('vocab.json', 'config.json', 'model.params', 'tokenizer.json'):
            (folder / other).write_bytes((root / 'finetuned' / other).read_bytes())
        (folder / file).write_text(content)
    return root


CASES = [
    (['evaluate', '--model', '{root}/badvocab'], 'vocab.json\' is not a JSON list'),
    (['evaluate', '--model', '{root}/badconfig'], 'config.json: expected "task"'),
    (['evaluate', '--model', '{root}/badtokenizer'], "kind 'bpe'; expected 'whitespace', 'words' or"),
    (['evaluate', '--model', '{root}/badparams'], 'is not an MXNet parameter file'),
    (['evaluate', '--model', '{root}/afile'], 'is not a fine-tuned task model folder'),
    (['predict', '--model', '{root}/finetuned', '{root}/nosuch.tsv'], 'No such file'),
    (['predict', '--model', '{root}/finetuned', '{root}'], 'Is a directory'),
    (['predict', '--model', '{root}/finetuned', '{root}/three.tsv'],
     'line 1: expected a text or text<TAB>text'),
    (['predict', '--model', '{root}/question-answering', '{root}/three.tsv'],
     'three.tsv, line 1: expected question<TAB>context (one tab, both non-empty), found 2 tabs'),
    (['predict', '--model', '{root}/multiple-choice', '{root}/three.tsv'],
     'three.tsv, line 1: expected context<TAB>question<TAB>ending0<TAB>ending1... (at least '
     'two endings), found 3 fields'),
    (['export', '--model', '{root}/finetuned', '--out', '{root}/afile'], 'is a file'),
    (['export', '--model', '{root}/finetuned', '--out', '{root}/afile/x'], 'Not a directory'),
    (['export', '--model', '{root}/finetuned', '--out', '{root}'], 'is not a gluonbert ONNX'),
    (['finetune', '--pretrained', '{root}/afile'], 'neither a gluonbert folder'),
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
