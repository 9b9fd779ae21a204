"""Training and serving see the same tokens: the tokenizer travels from fine-tuning into the
ONNX folder, and export/predict.py (MXNet blocked) encodes and predicts as training does."""
import collections
import json
import os
import subprocess
import sys
from pathlib import Path

import mxnet as mx
import numpy as np
import pytest
from mxnet import init

import gluonbert
from gluonbert.data.wordpiece import WordPieceTokenizer, vocab_from_bert_tokens
from gluonbert.export import export_onnx
from gluonbert.tasks import get_task
from gluonbert.tasks.readers import TaggedSentence
from gluonbert.tasks.sentences import TextExample

ROOT = Path(__file__).resolve().parents[1]
PREDICT = ROOT / 'export' / 'predict.py'
DATA = ROOT.parent / 'shared' / 'data'
SPECIALS = ['[PAD]', '[UNK]', '[CLS]', '[SEP]', '[MASK]']
MAX_LEN = 32


def wordpiece_for(texts, min_count=3):
    """A WordPiece tokenizer whose vocabulary holds the frequent words of ``texts``, every
    character and every character as a continuation: rare words split into pieces."""
    basic = WordPieceTokenizer(vocab_from_bert_tokens(SPECIALS))
    counts = collections.Counter(w for text in texts for w in basic.basic_tokenize(text))
    chars = sorted({c for word in counts for c in word})
    words = sorted(w for w, n in counts.items() if n >= min_count and len(w) > 1)
    vocab = vocab_from_bert_tokens(SPECIALS + chars + ['##' + c for c in chars] + words)
    return WordPieceTokenizer(vocab), vocab


@pytest.fixture(scope='module')
def without_mxnet(tmp_path_factory):
    stub = tmp_path_factory.mktemp('no-mxnet') / 'mxnet'
    stub.mkdir()
    (stub / '__init__.py').write_text("raise ImportError('mxnet is not available here')\n")
    return dict(os.environ, PYTHONPATH=os.pathsep.join([str(stub.parent), str(ROOT)]))


def export_head(task, vocab, tokenizer, labels, folder, examples, max_len=MAX_LEN):
    """A small random head of ``task``, exported with its tokenizer and settings and
    verified on ``examples``; returns the head."""
    mx.random.seed(0)
    bert = gluonbert.BERTModel(len(vocab), 16, 32, 2, 1, 0.0, max_len=max_len)
    bert.initialize(init.Xavier())
    net = task.head(bert, labels)
    net.output.initialize(init.Normal(1.0))
    features = task.encode(examples[:16], tokenizer, vocab, max_len, labels)
    names = labels if task.name != 'regression' else None
    export_onnx(net, folder, vocab, names, max_len, tokenizer=tokenizer,
                examples=features.inputs, task_settings=task.settings())
    return net


def run(env, *args, stdin=None):
    return subprocess.run([sys.executable, *map(str, args)], env=env, input=stdin,
                          capture_output=True)


SERVED_TOKENS = """
import sys, numpy as np
sys.path.insert(0, {export!r})
from predict import Predictor
from gluonbert.tasks.serving import read_lines
predictor = Predictor({folder!r})
with open({lines!r}, 'rb') as f:
    examples = predictor.examples(read_lines(f.read(), 'lines'), 'lines')
features = predictor.task.encode(examples, predictor.tokenizer, predictor.vocab,
                                 predictor.max_len, predictor.label_names)
windows = {{key: features.extra[key] for key in ('window_start',) if key in features.extra}}
np.savez({out!r}, tokens=features.tokens, segments=features.segments,
         valid_lens=features.valid_lens, example_index=features.example_index, **windows)
"""


def encoded(features):
    """What serving must reproduce, as SERVED_TOKENS saves it: the head's inputs and, for
    question answering, the windows (the example and the context token each row starts at)."""
    arrays = dict(tokens=features.tokens, segments=features.segments,
                  valid_lens=features.valid_lens, example_index=features.example_index)
    if 'window_start' in features.extra:
        arrays['window_start'] = features.extra['window_start']
    return arrays


def question_line(example):
    """``question<TAB>context``: a line holds no line break, and a context's is whitespace to
    the tokenizers as a space is (same length, so the same character offsets)."""
    return f'{example.question}\t{example.context.replace(chr(10), " ")}'


REAL_DEV_FILES = [  # task, its settings, file, read options, max_len, the texts of an
    # example, how an example is written as an input line
    ('classification', {}, 'sst-2/dev.tsv', {}, MAX_LEN, lambda e: e.texts,
     lambda e: e.texts[0]),
    ('regression', {}, 'sts-b/dev.tsv', {'label_column': 'score'}, MAX_LEN, lambda e: e.texts,
     lambda e: '\t'.join(e.texts)),
    ('token-classification', {}, 'wnut-17/emerging.dev.conll', {}, MAX_LEN, lambda e: e.words,
     lambda e: ' '.join(e.words)),
    ('question-answering', {'doc_stride': 40, 'max_query_len': 24}, 'squad-1.1/dev-v1.1.json',
     {}, 128, lambda e: [e.question, e.context], question_line),
    ('multiple-choice', {}, 'cosmos-qa/valid.csv', {}, 128,
     lambda e: [e.context, e.question] + e.endings,
     lambda e: '\t'.join([e.context, e.question] + e.endings)),
]


@pytest.mark.slow
@pytest.mark.parametrize('name, settings, path, options, max_len, texts_of, as_line',
                         REAL_DEV_FILES, ids=[f[0] for f in REAL_DEV_FILES])
def test_serving_encodes_every_dev_example_to_the_training_token_ids(
        name, settings, path, options, max_len, texts_of, as_line, without_mxnet, tmp_path):
    if not (DATA / path).is_file():
        pytest.skip(f'{DATA / path} not found (the shared data sets sit beside the repository)')
    task = get_task(name, **settings)
    examples = task.read(str(DATA / path), **options)
    tokenizer, vocab = wordpiece_for([text for e in examples for text in texts_of(e)])
    labels = task.labels_from(examples)
    trained = encoded(task.encode(examples, tokenizer, vocab, max_len, labels))
    export_head(task, vocab, tokenizer, labels, tmp_path / 'onnx', examples, max_len)
    lines = tmp_path / 'lines.txt'
    lines.write_text(''.join(as_line(e) + '\n' for e in examples), encoding='utf-8')
    script = SERVED_TOKENS.format(export=str(PREDICT.parent), folder=str(tmp_path / 'onnx'),
                                  lines=str(lines), out=str(tmp_path / 'served.npz'))
    result = run(without_mxnet, '-c', script)
    assert result.returncode == 0, result.stderr.decode()
    served = dict(np.load(tmp_path / 'served.npz'))
    assert (trained['tokens'] != vocab['<unk>']).mean() > 0.99  # WordPiece, not whitespace
    assert sorted(served) == sorted(trained)
    if 'window_start' in trained:  # long contexts take several windows
        assert (trained['window_start'] > 0).sum() > len(examples) // 2
    for key, array in trained.items():
        np.testing.assert_array_equal(served[key], array, err_msg=key)


NER_TRAIN = [('John lives in New York', 'B-PER O O B-LOC I-LOC'),
             ('Mary visited Paris yesterday', 'B-PER O B-LOC O'),
             ('The unaffable dog barked at Johnny', 'O O O O O B-PER')]


@pytest.mark.slow
def test_ner_served_without_mxnet_gives_mxnet_tags_per_word(without_mxnet, tmp_path):
    task = get_task('token-classification')
    sentences = [TaggedSentence(w.split(), t.split(), 'x') for w, t in NER_TRAIN]
    tokenizer, vocab = wordpiece_for([w for w, _ in NER_TRAIN] * 3)
    labels = task.labels_from(sentences)
    net = export_head(task, vocab, tokenizer, labels, tmp_path / 'onnx', sentences)
    queries = ['JOHN lives in Parisville', 'the dog ' * 20 + 'barked', 'Mary']
    unlabelled = [TaggedSentence(q.split(), None, 'q') for q in queries]
    features = task.encode(unlabelled, tokenizer, vocab, MAX_LEN, labels)
    expected = task.postprocess(task.predict(net, features, [mx.cpu()]), features, unlabelled)
    result = run(without_mxnet, PREDICT, tmp_path / 'onnx', stdin=('\n'.join(queries) + '\n')
                 .encode())
    assert result.returncode == 0, result.stderr.decode()
    blocks = result.stdout.decode().strip('\n').split('\n\n')
    served = [[line.split('\t') for line in block.split('\n')] for block in blocks]
    assert [[w for w, _ in s] for s in served] == [q.split() for q in queries]
    assert [[t for _, t in s] for s in served] == expected
    assert len(expected[1]) == 41  # past max_len: windows, no word dropped


@pytest.mark.slow
def test_wordpiece_classifier_served_without_mxnet_predicts_as_mxnet(without_mxnet, tmp_path):
    task = get_task('classification')
    examples = [TextExample((t,), label, 'x') for t, label in
                [('a good film', 'pos'), ('a bad film', 'neg'), ('unaffable acting', 'neg')]]
    tokenizer, vocab = wordpiece_for([e.texts[0] for e in examples] * 3)
    net = export_head(task, vocab, tokenizer, ['neg', 'pos'], tmp_path / 'onnx', examples)
    assert json.loads((tmp_path / 'onnx' / 'tokenizer.json').read_text())['kind'] == 'wordpiece'
    queries = ['A GOOD film!', 'bad, unaffable.', 'film']
    query_examples = [TextExample((q,), None, 'q') for q in queries]
    features = task.encode(query_examples, tokenizer, vocab, MAX_LEN, ['neg', 'pos'])
    logits = task.predict(net, features, [mx.cpu()])
    result = run(without_mxnet, PREDICT, tmp_path / 'onnx', stdin=('\n'.join(queries) + '\n')
                 .encode())
    assert result.returncode == 0, result.stderr.decode()
    header, *rows = result.stdout.decode().strip().split('\n')
    assert header == 'label\tp_neg\tp_pos'
    probs = np.array([[float(v) for v in row.split('\t')[1:]] for row in rows])
    expected = np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)
    np.testing.assert_allclose(probs, expected, atol=1e-5)


@pytest.mark.slow
def test_non_utf8_input_is_a_one_line_error(without_mxnet, tmp_path):
    task = get_task('classification')
    examples = [TextExample(('a b',), 'x', 'x'), TextExample(('b a',), 'y', 'y')]
    tokenizer, vocab = wordpiece_for(['a b'] * 3)
    export_head(task, vocab, tokenizer, ['x', 'y'], tmp_path / 'onnx', examples)
    result = run(without_mxnet, PREDICT, tmp_path / 'onnx', stdin=b'a b\ncaf\xe9\n')
    assert result.returncode == 2
    stderr = result.stderr.decode().strip()
    assert '\n' not in stderr
    assert "stdin, line 2: not UTF-8 (byte b'\\xe9' at column 4)" in stderr


@pytest.mark.slow
def test_a_pair_model_given_a_line_without_one_tab_is_a_one_line_error(without_mxnet, tmp_path):
    task = get_task('snli')
    labels = ['entailment', 'contradiction', 'neutral']
    examples = [TextExample(('a b', 'b a'), label, label) for label in labels]
    tokenizer, vocab = wordpiece_for(['a b'] * 3)
    export_head(task, vocab, tokenizer, labels, tmp_path / 'onnx', examples)
    result = run(without_mxnet, PREDICT, tmp_path / 'onnx', stdin=b'a b\tb a\na b  b a\n')
    assert result.returncode == 2
    assert result.stderr.decode().strip() == (
        'error: stdin, line 2: expected text<TAB>text (exactly one tab: the model was trained '
        'on pairs), found 0 tabs')


def test_the_number_of_texts_trained_on_is_a_setting_served_with_the_model(tmp_path):
    from gluonbert.tasks import rebuilt_task
    from gluonbert.tasks.serving import InputFormatError, examples_from_lines
    task = get_task('classification')
    task.labels_from([TextExample(('a', 'b'), 'x', 'l1'), TextExample(('c', 'd'), 'y', 'l2')])
    served = rebuilt_task('classification', json.loads(json.dumps(task.settings())), MAX_LEN)
    assert served.texts == 2 and get_task('snli').settings() == {'texts': 2}
    with pytest.raises(InputFormatError, match=r'^in, line 2: expected text<TAB>text \(exactly '
                       r'one tab: the model was trained on pairs\), found 2 tabs$'):
        examples_from_lines(served, [(1, 'a\tb'), (2, 'a\tb\tc')], 'in')
    single = get_task('regression', texts=1)
    with pytest.raises(InputFormatError, match='expected one text without tabs'):
        examples_from_lines(single, [(1, 'a\tb')], 'in')
    assert len(examples_from_lines(get_task('classification'), [(1, 'a\tb'), (2, 'c')], 'in')) \
        == 2  # folders saved before the count was recorded: as before
