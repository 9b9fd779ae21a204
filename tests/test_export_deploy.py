"""The deployment path: an export runs under the pinned and the newest onnxruntime, and
``export/optimize.py`` fuses and quantises it with onnxruntime's tools, equal to the export
(float32) and close to it (int8).

Needs ``export/.venv-deploy`` (``export/setup-deploy.sh``, a download); skipped without it.
"""
import json
import os
import shutil
import subprocess
import sys

import mxnet as mx
import numpy as onp
import onnxruntime
import pytest
from mxnet import init

import gluonbert
from gluonbert.export import export_onnx, inference_session

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DEPLOY_PYTHON = os.path.join(ROOT, 'export', '.venv-deploy', 'bin', 'python')
OPTIMIZE = os.path.join(ROOT, 'export', 'optimize.py')
PREDICT = os.path.join(ROOT, 'export', 'predict.py')
VOCAB = ['<unk>', '<pad>', '<cls>', '<sep>', '<mask>'] + [f'word{i}' for i in range(35)]
LABELS = ('entailment', 'contradiction', 'neutral')
MAX_LEN = 12
NUM_BLKS = 2

pytestmark = [pytest.mark.slow, pytest.mark.skipif(
    not os.path.exists(DEPLOY_PYTHON),
    reason='export/.venv-deploy is absent: run export/setup-deploy.sh (downloads onnxruntime)')]

RUN_IN_DEPLOY = """
import sys, numpy as np, onnxruntime as ort
feeds = dict(np.load(sys.argv[2]))
session = ort.InferenceSession(sys.argv[1], providers=['CPUExecutionProvider'])
np.save(sys.argv[3], session.run(None, feeds)[0])
print(ort.__version__)
"""


@pytest.fixture(scope='module')
def gelu_export(tmp_path_factory):
    """A BERT-style (GELU, embedding LayerNorm) classifier exported with int8."""
    mx.random.seed(0)
    bert = gluonbert.BERTModel(len(VOCAB), 32, 48, 4, NUM_BLKS, 0.1, max_len=16,
                               activation='gelu', embedding_layer_norm=True)
    bert.initialize(init.Xavier())
    net = gluonbert.BERTClassifier(bert, 3)
    net.output.initialize(init.Xavier())
    folder = tmp_path_factory.mktemp('deploy') / 'onnx'
    export_onnx(net, str(folder), VOCAB, LABELS, MAX_LEN, quantize=True)
    return folder


def feeds(batch_size=4, seq_len=MAX_LEN, seed=1):
    rng = onp.random.RandomState(seed)
    lens = rng.randint(1, seq_len + 1, batch_size)
    segments = (onp.arange(seq_len) >= seq_len // 2) & (onp.arange(seq_len) < lens[:, None])
    return {'tokens': rng.randint(0, len(VOCAB), (batch_size, seq_len)),
            'segments': segments.astype(onp.int64), 'valid_lens': lens.astype(onp.int64)}


def run_in_deploy_venv(model, batch, tmp_path):
    """``(first output, onnxruntime version)`` of ``model`` run by the deploy venv."""
    inputs, outputs = tmp_path / 'feeds.npz', tmp_path / 'out.npy'
    onp.savez(inputs, **batch)
    done = subprocess.run([DEPLOY_PYTHON, '-c', RUN_IN_DEPLOY, str(model), str(inputs),
                           str(outputs)], capture_output=True, text=True, check=True)
    return onp.load(outputs), done.stdout.strip()


@pytest.mark.parametrize('name', ['model.onnx', 'model.int8.onnx'])
def test_export_gives_the_same_outputs_under_the_pinned_and_the_newest_onnxruntime(
        gelu_export, name, tmp_path):
    batch = feeds()
    pinned = inference_session(str(gelu_export / name)).run(None, batch)[0]
    newest, version = run_in_deploy_venv(gelu_export / name, batch, tmp_path)
    assert onnxruntime.__version__ == '1.19.2' and version != onnxruntime.__version__
    if name == 'model.onnx':
        onp.testing.assert_allclose(newest, pinned, atol=1e-5)
        return
    # int8 kernels differ between versions (and CPUs; on AVX2 both differed by 0.012 here):
    # each must stay as close to the float model as int8 allows
    expected = inference_session(str(gelu_export / 'model.onnx')).run(None, batch)[0]
    bound = 0.1 * onp.abs(expected).max()
    assert onp.abs(pinned - expected).max() < bound and onp.abs(newest - expected).max() < bound


def test_optimize_fuses_attention_layer_norm_gelu_and_bias_and_matches_the_export(
        gelu_export, tmp_path):
    done = subprocess.run([DEPLOY_PYTHON, OPTIMIZE, str(gelu_export)], capture_output=True,
                          text=True)
    assert done.returncode == 0, done.stderr
    report = json.loads((gelu_export / 'optimize.json').read_text())
    fusions = {name: row['fused'] for name, row in report['fusions'].items()}
    assert fusions['attention'] == NUM_BLKS
    assert fusions['skip_layer_norm'] == 2 * NUM_BLKS
    assert fusions['layer_norm'] == 2 * NUM_BLKS + 1  # and the embeddings' LayerNorm
    assert fusions['bias_gelu'] == NUM_BLKS
    for name, row in report['fusions'].items():  # a fusion that missed is named, not skipped
        line, = [line for line in done.stdout.splitlines() if line.startswith(name + ' ')]
        assert ('NOT APPLIED' in line) == (row['fused'] < row['expected'])
    assert report['optimized_vs_export']['max_abs_diff'] <= 1e-4
    described = json.loads((gelu_export / 'export.json').read_text())
    assert sorted(p.name for p in gelu_export.iterdir()) == sorted(described['files'])
    batch = feeds(seed=2)
    optimized, _ = run_in_deploy_venv(gelu_export / 'model.opt.onnx', batch, tmp_path)
    plain = inference_session(str(gelu_export / 'model.onnx')).run(None, batch)[0]
    onp.testing.assert_allclose(optimized, plain, atol=1e-4)
    pinned = inference_session(str(gelu_export / 'model.opt.onnx')).run(None, batch)[0]
    onp.testing.assert_allclose(pinned, plain, atol=1e-4)  # onnxruntime 1.19.2 runs it too
    batch = feeds(batch_size=32, seed=3)
    plain = inference_session(str(gelu_export / 'model.onnx')).run(None, batch)[0]
    int8, _ = run_in_deploy_venv(gelu_export / 'model.opt.int8.onnx', batch, tmp_path)
    # A 32-wide random model loses much to int8; its logits must still follow the float ones
    assert int8.shape == plain.shape and not onp.array_equal(int8, plain)
    assert onp.corrcoef(int8.ravel(), plain.ravel())[0, 1] > 0.7


INT8_PRODUCTS = """
import json, sys, onnx
model = onnx.load(sys.argv[1])
shapes = {t.name: list(t.dims) for t in model.graph.initializer}
print(json.dumps([
    # MatMulInteger's inputs: A, B, A's zero point, B's zero point
    [node.op_type, node.name, shapes.get(node.input[1]),
     shapes.get(node.input[3]) if node.op_type == 'MatMulInteger' else None]
    for node in model.graph.node
    if node.op_type in ('Attention', 'QAttention', 'MatMul', 'MatMulInteger')]))
"""


def test_int8_keeps_the_first_block_in_float32_and_quantizes_the_rest_per_channel(
        gelu_export, tmp_path):
    folder = shutil.copytree(gelu_export, tmp_path / 'onnx')
    subprocess.run([DEPLOY_PYTHON, OPTIMIZE, str(folder)], capture_output=True, check=True)
    done = subprocess.run([DEPLOY_PYTHON, '-c', INT8_PRODUCTS,
                           str(folder / 'model.opt.int8.onnx')],
                          capture_output=True, text=True, check=True)
    products = json.loads(done.stdout)
    assert [op for op, _, _, _ in products] == (
        ['Attention', 'MatMul', 'MatMul', 'MatMul']  # the first block, float32
        + (['QAttention'] + ['MatMulInteger'] * 3) * (NUM_BLKS - 1)
        + ['MatMulInteger'] * 2)  # the pooler and the output layer
    for op, _, weight, zero_point in products:
        if op == 'MatMulInteger':
            assert zero_point == [weight[1]]  # a scale and a zero point per output column
    report = json.loads((folder / 'optimize.json').read_text())
    assert report['int8']['per_channel'] is True and report['int8']['smoothing'] is None
    assert report['int8']['float32_nodes'] == [name for _, name, _, _ in products[:4]]


def calibration_lines(count, seed):
    """``text<TAB>text`` lines of the vocabulary's words, as ``predict.py`` reads them."""
    rng = onp.random.RandomState(seed)
    return ''.join(' '.join(rng.choice(VOCAB[5:], rng.randint(1, 6))) + '\t' +
                   ' '.join(rng.choice(VOCAB[5:], rng.randint(1, 6))) + '\n'
                   for _ in range(count))


@pytest.fixture(scope='module')
def outlier_export(tmp_path_factory):
    """A 3-block classifier whose LayerNorms give channel 0 sixteen times the range of the
    others, read by the dense layers with a sixteenth of the weight, as a few channels of
    real BERTs are: what dynamic int8 loses most to."""
    mx.random.seed(0)
    bert = gluonbert.BERTModel(len(VOCAB), 64, 128, 4, 3, 0.1, max_len=16,
                               activation='gelu', embedding_layer_norm=True)
    bert.initialize(init.Xavier())
    for name, param in bert.collect_params('.*gamma|.*weight').items():
        value = param.data().asnumpy()
        if name.endswith('gamma'):
            value[0] *= 16
        elif value.ndim == 2 and value.shape[1] == 64 and 'embedding' not in name:
            value[:, 0] /= 16  # a dense layer's weight (out, in) reading the 64 channels
        param.set_data(mx.nd.array(value))
    net = gluonbert.BERTClassifier(bert, 3)
    net.output.initialize(init.Xavier())
    folder = tmp_path_factory.mktemp('outlier') / 'onnx'
    export_onnx(net, str(folder), VOCAB, LABELS, MAX_LEN)
    return folder


def test_int8_smoothing_from_calibration_lines_keeps_the_function_and_halves_the_error(
        outlier_export, tmp_path):
    plain_folder = shutil.copytree(outlier_export, tmp_path / 'plain')
    smoothed_folder = shutil.copytree(outlier_export, tmp_path / 'smoothed')
    calibration = tmp_path / 'calibration.txt'
    calibration.write_text(calibration_lines(300, seed=6))
    subprocess.run([DEPLOY_PYTHON, OPTIMIZE, str(plain_folder)], capture_output=True,
                   check=True)
    done = subprocess.run([DEPLOY_PYTHON, OPTIMIZE, str(smoothed_folder), '--calibration',
                           str(calibration), '--calibration-limit', '200'],
                          capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    report = json.loads((smoothed_folder / 'optimize.json').read_text())
    smoothing = report['int8']['smoothing']
    # Blocks 2 and 3 (4 products each), block 1's attention and output projection, the
    # pooler and the output layer; block 1's feed-forward layers stay float32
    assert smoothing['products'] == 2 * 4 + 2 + 2 and smoothing['examples'] == 200
    assert [name.split('_')[-3] for name in report['int8']['float32_nodes']] == [
        'dense0', 'dense1']
    assert smoothing['calibration'] == str(calibration) and smoothing['alpha'] == 0.85
    assert report['smoothed_vs_export']['max_abs_diff'] <= 1e-4
    assert 'int8 smoothing: SmoothQuant, alpha 0.85, 12 products, 200 examples' in done.stdout
    assert json.loads((plain_folder / 'optimize.json').read_text())['int8']['smoothing'] is None
    done = subprocess.run([DEPLOY_PYTHON, '-c', INT8_PRODUCTS + SMOOTHING_MULS,
                           str(smoothed_folder / 'model.opt.int8.onnx')],
                          capture_output=True, text=True, check=True)
    divided_for = json.loads(done.stdout.splitlines()[-1])
    # Every int8 product's input is divided first, but attention's output projection's: its
    # division is folded into the value weights. Attention's is divided before its turn to
    # batch-first, which onnxruntime then quantises without a float copy
    assert sorted(divided_for) == sorted(['Transpose'] * 3 + ['DynamicQuantizeLinear'] * 6)
    batch = feeds(batch_size=64, seed=7)
    expected = inference_session(str(outlier_export / 'model.onnx')).run(None, batch)[0]
    errors = {}
    for name, folder in (('plain', plain_folder), ('smoothed', smoothed_folder)):
        int8, _ = run_in_deploy_venv(folder / 'model.opt.int8.onnx', batch, tmp_path)
        errors[name] = onp.sqrt(onp.mean((int8 - expected) ** 2))
    assert errors['smoothed'] < 0.5 * errors['plain'], errors


SMOOTHING_MULS = """
readers = {name: node.op_type for node in model.graph.node for name in node.input}
print(json.dumps([readers[node.output[0]] for node in model.graph.node
                  if node.op_type == 'Mul' and node.output[0].endswith('_smoothed')]))
"""


@pytest.mark.parametrize('args, message', [
    (['--calibration', 'missing.txt'], "--calibration 'missing.txt': No such file or directory"),
    (['--calibration', 'three.txt'], "--calibration 'three.txt': three.txt, line 2:"),
    (['--calibration', 'lines.txt', '--calibration-limit', '0'],
     '--calibration-limit 0: expected at least 1')])
def test_optimize_refuses_bad_calibration_and_writes_nothing(gelu_export, tmp_path, args,
                                                           message):
    folder = shutil.copytree(gelu_export, tmp_path / 'onnx')
    (tmp_path / 'lines.txt').write_text(calibration_lines(3, seed=0))
    (tmp_path / 'three.txt').write_text('word1\tword2\nword1\tword2\tword3\n')
    before = sorted(p.name for p in folder.iterdir())
    done = subprocess.run([DEPLOY_PYTHON, OPTIMIZE, str(folder), *args], capture_output=True,
                          text=True, cwd=tmp_path)
    assert done.returncode == 2 and message in done.stderr, done.stderr
    assert len(done.stderr.strip().splitlines()) == 1 or 'usage:' in done.stderr
    assert sorted(p.name for p in folder.iterdir()) == before


def test_predict_serves_the_optimised_models_as_the_export(gelu_export, tmp_path):
    folder = shutil.copytree(gelu_export, tmp_path / 'onnx')
    subprocess.run([DEPLOY_PYTHON, OPTIMIZE, str(folder)], capture_output=True, check=True)
    rng = onp.random.RandomState(5)
    lines = ''.join(' '.join(rng.choice(VOCAB[5:], rng.randint(1, 6))) + '\t' +
                    ' '.join(rng.choice(VOCAB[5:], rng.randint(1, 6))) + '\n'
                    for _ in range(40))

    def served(python, model_file):
        done = subprocess.run([python, PREDICT, str(folder), '--model-file', model_file],
                              input=lines, capture_output=True, text=True)
        assert done.returncode == 0, done.stderr
        header, *rows = done.stdout.splitlines()
        assert header == 'label\tp_entailment\tp_contradiction\tp_neutral'
        return onp.array([row.split('\t')[1:] for row in rows], float)

    plain = served(sys.executable, 'model.onnx')  # the pinned environment, as exported
    assert plain.shape == (40, 3) and len(set(plain.argmax(axis=1))) > 1
    onp.testing.assert_allclose(served(DEPLOY_PYTHON, 'model.onnx'), plain, atol=1e-5)
    onp.testing.assert_allclose(served(DEPLOY_PYTHON, 'model.opt.onnx'), plain, atol=1e-4)
    int8 = served(DEPLOY_PYTHON, 'model.opt.int8.onnx')
    assert onp.allclose(int8.sum(axis=1), 1, atol=1e-5) and not onp.array_equal(int8, plain)
    assert onp.corrcoef(int8.ravel(), plain.ravel())[0, 1] > 0.7


def test_optimize_refuses_a_folder_without_an_export(tmp_path):
    done = subprocess.run([DEPLOY_PYTHON, OPTIMIZE, str(tmp_path)], capture_output=True,
                          text=True)
    assert done.returncode == 2
    assert 'is not a gluonbert ONNX export folder' in done.stderr
    assert list(tmp_path.iterdir()) == []


def test_multiple_choice_keeps_its_head_reshape_and_fuses_attention_per_choice(tmp_path):
    from gluonbert.model.heads import BERTForMultipleChoice
    mx.random.seed(0)
    bert = gluonbert.BERTModel(len(VOCAB), 32, 48, 4, NUM_BLKS, 0.1, max_len=16)
    bert.initialize(init.Xavier())
    head = BERTForMultipleChoice(bert)
    head.output.initialize(init.Xavier())
    folder = tmp_path / 'mc'
    export_onnx(head, str(folder), VOCAB, None, MAX_LEN)
    done = subprocess.run([DEPLOY_PYTHON, OPTIMIZE, str(folder)], capture_output=True,
                          text=True)
    assert done.returncode == 0, done.stderr
    report = json.loads((folder / 'optimize.json').read_text())
    assert report['fusions']['attention']['fused'] == NUM_BLKS
    rng = onp.random.RandomState(4)
    lens = rng.randint(1, MAX_LEN + 1, (3, 2))
    batch = {'tokens': rng.randint(0, len(VOCAB), (3, 2, MAX_LEN)),
             'segments': (onp.arange(MAX_LEN) < lens[..., None]).astype(onp.int64),
             'valid_lens': lens.astype(onp.int64)}
    plain = inference_session(str(folder / 'model.onnx')).run(None, batch)[0]
    optimized = inference_session(str(folder / 'model.opt.onnx')).run(None, batch)[0]
    assert optimized.shape == plain.shape == (3, 2)
    onp.testing.assert_allclose(optimized, plain, atol=1e-4)
