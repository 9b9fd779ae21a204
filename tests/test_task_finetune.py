"""`gluonbert finetune` on small files written here, for every task, then evaluate, export
and serve the result, as a user would run them (subprocesses)."""
import json
import os
import random
import subprocess
import sys
from pathlib import Path

import pytest
from mxnet import init

import gluonbert

ROOT = Path(__file__).resolve().parents[1]
WORDS = 'the a film movie actor plot was is very quite good great fine bad awful dull'.split()
NAMES = 'john mary paris london acme google'.split()


def gluonbert_cli(*args, env=None, stdin=None):
    return subprocess.run([sys.executable, '-m', 'gluonbert', *map(str, args)],
                          capture_output=True, text=True, env=env, input=stdin, timeout=600)


@pytest.fixture(scope='module')
def pretrained(tmp_path_factory):
    """A tiny randomly initialised gluonbert folder whose vocabulary covers the files."""
    folder = tmp_path_factory.mktemp('pretrained') / 'bert'
    vocab = gluonbert.Vocab(WORDS + NAMES, reserved_tokens=['<pad>', '<cls>', '<sep>', '<mask>'])
    bert = gluonbert.BERTModel(len(vocab), 32, 64, 2, 1, 0.1, max_len=32)
    bert.initialize(init.Xavier())
    gluonbert.save_pretrained(bert, vocab, folder, config=bert.config)
    return folder


def sentiment_rows(rng, count):
    rows = []
    for _ in range(count):
        label = rng.choice(['pos', 'neg'])
        word = rng.choice(['good', 'great', 'fine'] if label == 'pos' else
                          ['bad', 'awful', 'dull'])
        rows.append((f'the {rng.choice(["film", "movie", "plot"])} was very {word}', label,
                     3.0 + rng.random() if label == 'pos' else rng.random()))
    return rows


def tagged_sentences(rng, count):
    sentences = []
    for _ in range(count):
        words, tags = [], []
        for _ in range(rng.randint(3, 8)):
            if rng.random() < 0.3:
                words.append(rng.choice(NAMES))
                tags.append('B-ENT')
            else:
                words.append(rng.choice(WORDS))
                tags.append('O')
        sentences.append((words, tags))
    return sentences


@pytest.fixture(scope='module')
def files(tmp_path_factory):
    """Train, dev and test files of each task: TSV, CSV with quotes, JSON Lines, CoNLL."""
    folder = tmp_path_factory.mktemp('files')
    rng = random.Random(0)
    out = {}
    for split, count in (('train', 96), ('dev', 24), ('test', 24)):
        rows = sentiment_rows(rng, count)
        (folder / f'{split}.tsv').write_text('sentence\tlabel\n' + ''.join(
            f'{text} \t{label}\n' for text, label, _ in rows), encoding='utf-8')
        (folder / f'{split}.jsonl').write_text(''.join(json.dumps(
            {'a': text, 'b': 'the film', 'score': score}) + '\n' for text, _, score in rows),
            encoding='utf-8')
        (folder / f'{split}.conll').write_text('-DOCSTART- O\n\n' + ''.join(
            ''.join(f'{w} NN {t}\n' for w, t in zip(words, tags)) + '\n'
            for words, tags in tagged_sentences(rng, count)), encoding='utf-8')
    for task, ext, extra in (('classification', 'tsv', []),
                             ('regression', 'jsonl', ['--text-columns', 'a,b',
                                                      '--label-column', 'score']),
                             ('token-classification', 'conll', [])):
        out[task] = ([str(folder / f'{s}.{ext}') for s in ('train', 'dev', 'test')], extra)
    return out


MAIN_METRIC = {'classification': 'accuracy', 'regression': 'pearson',
               'token-classification': 'f1'}


@pytest.mark.slow
@pytest.mark.parametrize('task', list(MAIN_METRIC))
def test_finetune_evaluate_export_and_serve_each_task(task, files, pretrained, tmp_path):
    (train, dev, test), extra = files[task]
    out = tmp_path / 'model'
    result = gluonbert_cli('finetune', '--pretrained', pretrained, '--task', task,
                           '--train', train, '--dev', dev, '--test', test, *extra,
                           '--epochs', 4, '--batch-size', 16, '--max-len', 16, '--lr', 2e-3,
                           '--out', out)
    assert result.returncode == 0, result.stderr
    assert 'test (best model)' in result.stdout and 'trivial baseline' in result.stdout
    for name in ('model.params', 'vocab.json', 'tokenizer.json', 'config.json'):
        assert (out / name).is_file(), name
    log = Path(str(out) + '.checkpoints')
    records = json.loads((log / 'metrics.json').read_text())
    evaluations = [r for r in records if r['kind'] == 'eval']
    losses = [r['loss'] for r in records if r['kind'] == 'train']
    assert len(evaluations) == 4 and (log / 'curves.png').is_file()
    assert losses[-1] < losses[0]  # it learns
    metric = f'dev_{MAIN_METRIC[task]}'
    best = max(e[metric] for e in evaluations)
    assert f'best {metric} {best:.4f}' in result.stdout
    # the same batch size: near-tied scores of a barely trained model must not rank apart
    evaluated = gluonbert_cli('evaluate', '--model', out, '--test', test, *extra,
                              '--batch-size', 16)
    assert evaluated.returncode == 0, evaluated.stderr
    test_line = next(l for l in result.stdout.splitlines() if l.startswith('test (best'))
    assert test_line.split(': ', 1)[1] in evaluated.stdout  # the same numbers
    exported = gluonbert_cli('export', '--model', out, '--data', test, *extra,
                             '--out', tmp_path / 'onnx')
    assert exported.returncode == 0, exported.stderr
    lines = {'classification': 'the movie was very awful\n',
             'regression': 'the plot was quite good\tthe film\n',
             'token-classification': 'john saw the film in paris\n'}[task]
    served = subprocess.run([sys.executable, str(ROOT / 'export' / 'predict.py'),
                             str(tmp_path / 'onnx')], input=lines, capture_output=True,
                            text=True, env=dict(os.environ, PYTHONPATH=str(ROOT)))
    assert served.returncode == 0, served.stderr
    local = gluonbert_cli('predict', '--model', out, stdin=lines)
    assert local.returncode == 0, local.stderr
    assert served.stdout.split('\n')[0] == local.stdout.split('\n')[0]  # same columns
    assert len(served.stdout.strip().split('\n')) == len(local.stdout.strip().split('\n'))


@pytest.mark.slow
def test_patience_stops_a_run_that_no_longer_improves(files, pretrained, tmp_path):
    (train, dev, _), _ = files['classification']
    result = gluonbert_cli('finetune', '--pretrained', pretrained, '--task', 'classification',
                           '--train', train, '--dev', dev, '--epochs', 30, '--lr', 1e-9,
                           '--batch-size', 32, '--max-len', 16, '--patience', 2,
                           '--out', tmp_path / 'm')
    assert result.returncode == 0, result.stderr
    assert 'early stop' in result.stdout
    records = json.loads((tmp_path / 'm.checkpoints' / 'metrics.json').read_text())
    assert len([r for r in records if r['kind'] == 'eval']) == 3


@pytest.mark.parametrize('content, message', [
    ('sentence\tlabel\nthe film\tpos\nthe plot\tmixed\n',
     "line 3: label 'mixed' is not one of the training labels ['neg', 'pos']"),
    ('text\tlabel\nthe film\tpos\n', "no column 'sentence' (--text-columns)"),
    ('sentence\tlabel\n', 'holds no example'),
])
def test_bad_dev_files_are_one_line_errors(content, message, files, pretrained, tmp_path):
    (train, _, _), _ = files['classification']
    dev = tmp_path / 'dev.tsv'
    dev.write_text(content, encoding='utf-8')
    result = gluonbert_cli('finetune', '--pretrained', pretrained, '--task', 'classification',
                           '--train', train, '--dev', dev, '--text-columns', 'sentence',
                           '--epochs', 1, '--max-len', 16, '--out', tmp_path / 'm')
    assert result.returncode == 2 and 'Traceback' not in result.stderr
    assert message in result.stderr
    assert not (tmp_path / 'm').exists()


def test_a_constant_schedule_fine_tunes_without_the_default_warm_up(files, pretrained,
                                                                      tmp_path):
    (train, _, _), _ = files['classification']
    result = gluonbert_cli('finetune', '--pretrained', pretrained, '--task', 'classification',
                           '--train', train, '--schedule', 'constant', '--epochs', 1,
                           '--max-len', 16, '--out', tmp_path / 'm')
    assert result.returncode == 0, result.stderr
    assert 'constant schedule, 0 warm-up of ' in result.stdout


def test_out_folder_holding_other_files_is_refused(files, pretrained, tmp_path):
    (train, _, _), _ = files['classification']
    (tmp_path / 'notes').mkdir()
    (tmp_path / 'notes' / 'todo.txt').write_text('mine')
    result = gluonbert_cli('finetune', '--pretrained', pretrained, '--task', 'classification',
                           '--train', train, '--epochs', 1, '--max-len', 16,
                           '--out', tmp_path / 'notes')
    assert result.returncode == 2
    assert 'is not a fine-tuned task model folder (holds todo.txt)' in result.stderr
    assert (tmp_path / 'notes' / 'todo.txt').read_text() == 'mine'


def hf_wordpiece_folder(folder):
    """A tiny randomly initialised HF BERT folder with a lower-casing WordPiece tokenizer."""
    from gluonbert.data.wordpiece import WordPieceTokenizer, vocab_from_bert_tokens
    vocab = vocab_from_bert_tokens(['[PAD]', '[UNK]', '[CLS]', '[SEP]', '[MASK]'] + WORDS +
                                   ['##s', '##ly'])
    bert = gluonbert.BERTModel(len(vocab), 32, 64, 2, 1, 0.1, max_len=32, activation='gelu',
                               embedding_layer_norm=True, layer_norm_eps=1e-12)
    bert.initialize(init.Xavier())
    gluonbert.save_hf_pretrained(bert, vocab, folder,
                                 tokenizer=WordPieceTokenizer(vocab, lower=True))
    return folder


@pytest.mark.slow
def test_hf_folder_fine_tunes_with_its_wordpiece_tokenizer_saved(files, tmp_path):
    hf_wordpiece_folder(tmp_path / 'hf')
    (train, dev, _), _ = files['classification']
    result = gluonbert_cli('finetune', '--pretrained', tmp_path / 'hf', '--task',
                           'classification', '--train', train, '--dev', dev, '--epochs', 1,
                           '--max-len', 16, '--out', tmp_path / 'm')
    assert result.returncode == 0, result.stderr
    assert '(hf)' in result.stdout
    saved = json.loads((tmp_path / 'm' / 'tokenizer.json').read_text())
    assert saved['kind'] == 'wordpiece' and saved['lower'] is True


def raw_sentiment_file(path, rng, count):
    """Raw text as users have it: capitals, punctuation touching the words."""
    rows = sentiment_rows(rng, count)
    path.write_text('sentence\tlabel\n' + ''.join(
        f'{text.capitalize()}{rng.choice([".", "!", ", really."])}\t{label}\n'
        for text, label, _ in rows), encoding='utf-8')
    return path


@pytest.mark.slow
def test_split_punctuation_fine_tunes_raw_text_and_serves_it_split(tmp_path):
    vocab = gluonbert.Vocab(WORDS + ['.', ',', '!', 'really'],
                            reserved_tokens=['<pad>', '<cls>', '<sep>', '<mask>'])
    bert = gluonbert.BERTModel(len(vocab), 32, 64, 2, 1, 0.1, max_len=32)
    bert.initialize(init.Xavier())
    gluonbert.save_pretrained(bert, vocab, tmp_path / 'bert', config=bert.config)
    rng = random.Random(1)
    train, dev = (raw_sentiment_file(tmp_path / f'{s}.tsv', rng, n) for s, n in
                  (('train', 96), ('dev', 24)))
    common = ('finetune', '--pretrained', tmp_path / 'bert', '--task', 'classification',
              '--train', train, '--dev', dev, '--max-len', 16, '--batch-size', 16,
              '--lr', 2e-3)
    whitespace = gluonbert_cli(*common, '--epochs', 1, '--out', tmp_path / 'ws')
    assert whitespace.returncode == 0, whitespace.stderr
    unknown_line = next(l for l in whitespace.stdout.splitlines() if 'are unknown' in l)
    assert float(unknown_line.split('%')[0]) > 5
    assert '--split-punctuation splits punctuation off words' in whitespace.stdout
    split = gluonbert_cli(*common, '--epochs', 3, '--split-punctuation', '--out', tmp_path / 'm')
    assert split.returncode == 0, split.stderr
    assert '0.0% of the training tokens are unknown' in split.stdout
    assert '--split-punctuation' not in split.stdout
    assert json.loads((tmp_path / 'm' / 'tokenizer.json').read_text()) == {'kind': 'words'}
    exported = gluonbert_cli('export', '--model', tmp_path / 'm', '--data', dev,
                             '--out', tmp_path / 'onnx')
    assert exported.returncode == 0, exported.stderr
    lines = 'The movie was very awful!\nthe movie was very awful !\nThe plot was great.\n'
    served = subprocess.run([sys.executable, str(ROOT / 'export' / 'predict.py'),
                             str(tmp_path / 'onnx')], input=lines, capture_output=True,
                            text=True, env=dict(os.environ, PYTHONPATH=str(ROOT)))
    local = gluonbert_cli('predict', '--model', tmp_path / 'm', stdin=lines)
    assert served.returncode == 0 and local.returncode == 0, served.stderr + local.stderr
    served_rows = [row.split('\t') for row in served.stdout.strip().split('\n')[1:]]
    local_rows = [row.split('\t') for row in local.stdout.strip().split('\n')[1:]]
    assert served_rows[0] == served_rows[1]  # "awful!" is "awful" "!", as in training
    assert [r[0] for r in served_rows] == [r[0] for r in local_rows]
    for served_row, local_row in zip(served_rows, local_rows):
        assert [float(p) for p in served_row[1:]] == pytest.approx(
            [float(p) for p in local_row[1:]], abs=1e-4)


def test_split_punctuation_of_a_wordpiece_model_is_one_line_error(files, tmp_path):
    hf_wordpiece_folder(tmp_path / 'hf')
    (train, _, _), _ = files['classification']
    result = gluonbert_cli('finetune', '--pretrained', tmp_path / 'hf', '--task',
                           'classification', '--train', train, '--split-punctuation',
                           '--epochs', 1, '--max-len', 16, '--out', tmp_path / 'm')
    assert result.returncode == 2 and 'Traceback' not in result.stderr
    last = result.stderr.strip().splitlines()[-1]
    assert last.startswith("gluonbert finetune: error: --split-punctuation: the model's "
                           "tokenizer is {'kind': 'wordpiece'")
    assert last.endswith('(WordPiece and word tokenizers split punctuation off already)')
    assert not (tmp_path / 'm').exists()
