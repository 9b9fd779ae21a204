"""export/predict.py serves an export with numpy and onnxruntime alone, predicting as MXNet does."""
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as onp
import pytest
import mxnet as mx
from mxnet import init

import gluonbert
from gluonbert.data.nli import SNLIBERTDataset, embedded_snli_dir, read_snli_infersent
from gluonbert.export import export_onnx
from gluonbert.model.heads import BERTForMultipleChoice, BERTForQuestionAnswering
from test_export_onnx import PooledScorer

ROOT = Path(__file__).resolve().parents[1]
PREDICT = ROOT / 'export' / 'predict.py'
MAX_LEN = 24
LABELS = ('entailment', 'contradiction', 'neutral')
CRAFTED = [  # casing, runs of spaces, unknown words, and pairs longer than MAX_LEN
    ('A MAN Plays a   GUITAR on STAGE .', 'Someone makes music .'),
    (' '.join(['a dog runs through the tall grass'] * 5), 'An animal is outside .'),
    ('Two kids .', ' '.join(['the children are playing zyxxy qwertz'] * 4)),
    ('zyxxy', 'qwertz'),
]


@pytest.fixture(scope='module')
def snli_export(tmp_path_factory):
    """A small classifier over a vocabulary of real SNLI, exported; and the pairs to predict."""
    dev = read_snli_infersent(embedded_snli_dir(), 'dev')
    vocab = SNLIBERTDataset(dev, MAX_LEN).vocab  # d2l: min_freq 5, reserved tokens
    mx.random.seed(0)
    bert = gluonbert.BERTModel(len(vocab), 32, 48, 2, 2, 0.1, max_len=MAX_LEN)
    bert.initialize(init.Xavier())
    net = gluonbert.BERTClassifier(bert, 3)
    net.output.initialize(init.Normal(1.0))
    premises, hypotheses, _ = read_snli_infersent(embedded_snli_dir(), 'test')
    pairs = list(zip(premises[:40], hypotheses[:40])) + CRAFTED
    data = SNLIBERTDataset(([p for p, _ in pairs], [h for _, h in pairs], [0] * len(pairs)),
                           MAX_LEN, vocab)
    examples = (data.all_token_ids, data.all_segments, data.valid_lens)
    # Centre the logits over these pairs, so that random weights predict all three labels
    logits = net(tuple(mx.nd.array(a, dtype=a.dtype) for a in examples))
    net.output.bias.set_data(net.output.bias.data() - logits.mean(axis=0))
    folder = tmp_path_factory.mktemp('deploy') / 'snli'
    export_onnx(net, folder, vocab, LABELS, MAX_LEN, examples=examples, quantize=True)
    logits = net(tuple(mx.nd.array(a, dtype=a.dtype) for a in examples)).asnumpy()
    return folder, pairs, logits


@pytest.fixture(scope='module')
def without_mxnet(tmp_path_factory):
    """An environment whose Python cannot import mxnet (a stub package shadows it) and
    imports this checkout's gluonbert, not another one installed."""
    stub = tmp_path_factory.mktemp('no-mxnet') / 'mxnet'
    stub.mkdir()
    (stub / '__init__.py').write_text("raise ImportError('mxnet is not available here')\n")
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(stub.parent), str(ROOT)]))
    check = subprocess.run([sys.executable, '-c', 'import mxnet'], env=env,
                           capture_output=True, text=True)
    assert check.returncode != 0 and 'mxnet is not available here' in check.stderr
    return env


def predict(env, *args, stdin=None):
    return subprocess.run([sys.executable, str(PREDICT), *map(str, args)], env=env,
                          input=stdin, capture_output=True, text=True)


def write_pairs(path, pairs):
    path.write_text(''.join(f'{p}\t{h}\n' for p, h in pairs), encoding='utf-8')
    return path


def parse(stdout):
    header, *rows = stdout.strip().split('\n')
    cells = [row.split('\t') for row in rows]
    return header.split('\t'), [c[0] for c in cells], onp.array([c[1:] for c in cells], float)


def softmax(logits):
    e = onp.exp(logits - logits.max(axis=1, keepdims=True))
    return e / e.sum(axis=1, keepdims=True)


def test_predictions_without_mxnet_equal_mxnet_on_real_snli_pairs(snli_export, without_mxnet,
                                                                  tmp_path):
    folder, pairs, logits = snli_export
    result = predict(without_mxnet, folder, write_pairs(tmp_path / 'pairs.tsv', pairs))
    assert result.returncode == 0, result.stderr
    header, labels, probs = parse(result.stdout)
    assert header == ['label', 'p_entailment', 'p_contradiction', 'p_neutral']
    assert labels == [LABELS[i] for i in logits.argmax(axis=1)]
    assert len(set(labels)) == 3
    onp.testing.assert_allclose(probs, softmax(logits), atol=2e-6)


def test_lines_served_in_another_order_get_the_same_outputs(snli_export, without_mxnet,
                                                            tmp_path):
    folder, pairs, logits = snli_export
    order = onp.random.RandomState(0).permutation(len(pairs))
    shuffled = predict(without_mxnet, folder, write_pairs(tmp_path / 'shuffled.tsv',
                                                          [pairs[i] for i in order]),
                       '--batch-size', 4)
    assert shuffled.returncode == 0, shuffled.stderr
    _, labels, probs = parse(shuffled.stdout)
    assert labels == [LABELS[i] for i in logits[order].argmax(axis=1)]
    onp.testing.assert_allclose(probs, softmax(logits[order]), atol=2e-6)


def test_pairs_are_read_from_stdin_and_blank_lines_skipped(snli_export, without_mxnet):
    folder, pairs, logits = snli_export
    stdin = '\n'.join(f'{p}\t{h}' for p, h in pairs[:3]) + '\n\n'
    result = predict(without_mxnet, folder, '-', stdin=stdin)
    assert result.returncode == 0, result.stderr
    assert parse(result.stdout)[1] == [LABELS[i] for i in logits[:3].argmax(axis=1)]


def test_int8_model_serves_the_same_pairs(snli_export, without_mxnet, tmp_path):
    folder, pairs, _ = snli_export
    result = predict(without_mxnet, folder, write_pairs(tmp_path / 'p.tsv', pairs), '--int8')
    assert result.returncode == 0, result.stderr
    _, labels, probs = parse(result.stdout)
    assert len(labels) == len(pairs) and onp.allclose(probs.sum(axis=1), 1, atol=1e-5)


def test_model_file_names_the_int8_model_as_int8_does(snli_export, without_mxnet, tmp_path):
    folder, pairs, _ = snli_export
    pairs_file = write_pairs(tmp_path / 'p.tsv', pairs)
    by_flag = predict(without_mxnet, folder, pairs_file, '--int8')
    by_name = predict(without_mxnet, folder, pairs_file, '--model-file', 'model.int8.onnx')
    plain = predict(without_mxnet, folder, pairs_file, '--model-file', 'model.onnx')
    assert by_flag.returncode == by_name.returncode == plain.returncode == 0, by_name.stderr
    assert by_name.stdout == by_flag.stdout != plain.stdout
    assert plain.stdout == predict(without_mxnet, folder, pairs_file).stdout


def test_optimised_model_missing_from_the_folder_names_its_maker(snli_export, without_mxnet):
    folder, _, _ = snli_export
    result = predict(without_mxnet, folder, '--model-file', 'model.opt.int8.onnx',
                     stdin='a dog\ta cat\n')
    assert result.returncode == 2 and result.stdout == ''
    assert result.stderr.strip() == (f'error: {folder / "model.opt.int8.onnx"} not found: '
                                     f'export/optimize.py writes it into the export folder')
    both = predict(without_mxnet, folder, '--int8', '--model-file', 'model.onnx', stdin='a\n')
    assert both.returncode == 2 and 'not allowed with argument --int8' in both.stderr


def test_max_len_beyond_the_exported_one_is_refused(snli_export, without_mxnet, tmp_path):
    folder, pairs, _ = snli_export
    result = predict(without_mxnet, folder, write_pairs(tmp_path / 'p.tsv', pairs[:1]),
                     '--max-len', MAX_LEN + 1)
    assert result.returncode == 2
    assert f'max_len={MAX_LEN + 1}: expected 5 to {MAX_LEN}, the max_len the model was ' \
           f'exported and verified for' in result.stderr


def test_line_of_three_texts_is_refused_with_its_number(snli_export, without_mxnet):
    folder, _, _ = snli_export
    result = predict(without_mxnet, folder, stdin='a dog\ta cat\none\ttwo\tthree\n')
    assert result.returncode == 2
    assert 'stdin, line 2: expected a text or text<TAB>text (at most one tab), found 2 tabs' \
        in result.stderr


def test_vocab_file_of_another_export_is_detected(snli_export, without_mxnet, tmp_path):
    folder, _, _ = snli_export
    mixed = shutil.copytree(folder, tmp_path / 'mixed')
    vocab = json.loads((mixed / 'vocab.json').read_text(encoding='utf-8'))
    (mixed / 'vocab.json').write_text(json.dumps(vocab[::-1]), encoding='utf-8')
    result = predict(without_mxnet, mixed, stdin='a\tb\n')
    assert result.returncode == 2
    assert 'vocab.json differs from the vocab embedded in the model' in result.stderr


def test_heads_it_does_not_serve_are_refused(without_mxnet, tmp_path):
    vocab = ['<unk>', '<pad>', '<cls>', '<sep>', 'a', 'b']
    bert = gluonbert.BERTModel(len(vocab), 16, 24, 2, 1, 0.0, max_len=8)
    bert.initialize(init.Xavier())
    head = PooledScorer(bert)
    head.scorer.initialize(init.Xavier())
    export_onnx(head, tmp_path / 'custom', vocab, None, 8)
    result = predict(without_mxnet, tmp_path / 'custom', stdin='a\tb\n')
    assert result.returncode == 2
    assert "holds a PooledScorer (task 'custom'); predict.py serves classification, " \
           "regression, token-classification, question-answering, multiple-choice heads" \
        in result.stderr


@pytest.fixture(scope='module')
def qa_and_mc_exports(tmp_path_factory):
    """A question-answering head exported with its task settings, and a multiple-choice
    head."""
    vocab = ['<unk>', '<pad>', '<cls>', '<sep>'] + 'who built the mill a miller did'.split()
    folders = {}
    for name, head_class, settings in (
            ('qa', BERTForQuestionAnswering, {'doc_stride': 4, 'max_query_len': 4}),
            ('mc', BERTForMultipleChoice, None)):
        mx.random.seed(0)
        bert = gluonbert.BERTModel(len(vocab), 16, 24, 2, 1, 0.0, max_len=16)
        bert.initialize(init.Xavier())
        head = head_class(bert)
        head.output.initialize(init.Xavier())
        folders[name] = tmp_path_factory.mktemp('deploy') / name
        export_onnx(head, folders[name], vocab, None, 16, task_settings=settings)
    return folders


@pytest.mark.parametrize('name, stdin, message', [
    ('qa', 'who built the mill ?\ta miller did\nwho built the mill ?\n',
     'stdin, line 2: expected question<TAB>context (one tab, both non-empty), found 0 tabs'),
    ('qa', 'who\tthe mill\ta miller\n', 'stdin, line 1: expected question<TAB>context'),
    ('mc', 'the mill\twho built it ?\ta miller\n',
     'stdin, line 1: expected context<TAB>question<TAB>ending0<TAB>ending1... (at least two '
     'endings), found 3 fields'),
    ('mc', 'the mill\twho ?\ta miller\tthe mill\n\nthe mill\twho ?\ta\tthe\tmill\n',
     'stdin, line 3: 3 endings; expected 2, as on stdin, line 1'),
])
def test_served_lines_with_the_wrong_fields_are_one_line_errors(qa_and_mc_exports,
                                                                without_mxnet, name, stdin,
                                                                message):
    result = predict(without_mxnet, qa_and_mc_exports[name], stdin=stdin)
    assert result.returncode == 2 and result.stdout == ''
    assert result.stderr.count('\n') == 1 and message in result.stderr, result.stderr


def test_question_answering_serves_a_table_of_answers_at_their_characters(qa_and_mc_exports,
                                                                         without_mxnet):
    contexts = ['the mill ' * 6 + 'a miller did', 'the mill']  # three windows, and one
    stdin = ''.join(f'who built the mill ?\t{context}\n' for context in contexts)
    result = predict(without_mxnet, qa_and_mc_exports['qa'], stdin=stdin)
    assert result.returncode == 0, result.stderr
    header, *rows = [line.split('\t') for line in result.stdout.strip().split('\n')]
    assert header == ['answer', 'probability', 'score', 'start_char', 'end_char']
    assert [row[0] for row in rows] == [context[int(row[3]):int(row[4])]
                                        for context, row in zip(contexts, rows)]
    assert all(row[0] and 0 < float(row[1]) <= 1 for row in rows)


def test_a_max_len_too_short_for_the_trained_windows_is_refused(qa_and_mc_exports,
                                                                 without_mxnet):
    result = predict(without_mxnet, qa_and_mc_exports['qa'], '--max-len', 8,
                     stdin='who\tthe mill\n')
    assert result.returncode == 2
    assert 'task_settings at max_len=8: doc_stride=4: expected 1 to 1' in result.stderr


@pytest.mark.parametrize('damage', ['empty', 'truncated', 'random'])
def test_a_damaged_model_file_is_one_line_naming_it(snli_export, without_mxnet, tmp_path,
                                                    damage):
    folder, _, _ = snli_export
    damaged = shutil.copytree(folder, tmp_path / 'damaged')
    data = (damaged / 'model.onnx').read_bytes()
    (damaged / 'model.onnx').write_bytes({'empty': b'', 'truncated': data[:len(data) // 2],
                                          'random': os.urandom(4096)}[damage])
    result = predict(without_mxnet, damaged, stdin='a\tb\n')
    assert result.returncode == 2
    assert 'Traceback' not in result.stderr and len(result.stderr.strip().splitlines()) == 1
    assert result.stderr.startswith(f'error: {damaged}/model.onnx (')
    assert 'is not a model onnxruntime can load' in result.stderr
    assert 'export it again with gluonbert export' in result.stderr
