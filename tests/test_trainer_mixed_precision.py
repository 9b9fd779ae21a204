"""Mixed precision: bfloat16 AMP trains on CPU; float16 needs a GPU; the loss scale policy.

AMP rewrites MXNet's operators for the whole process, so the training test runs in a
subprocess of its own.
"""
import json
import os
import subprocess
import sys

import mxnet as mx
import pytest

from gluonbert.train.mixed_precision import LossScaler, check_supported, cpu_bfloat16_support
from gluonbert.train.trainer import BERTTrainer
from tiny_bert import tiny_classifier

TRAIN_IN_BFLOAT16 = """
import json, os, sys, tempfile, numpy as np
from gluonbert.train import mixed_precision
mixed_precision.enable('bfloat16')
from gluonbert.train.trainer import BERTTrainer
from tiny_bert import random_batch, summed_loss, tiny_classifier
net, _ = tiny_classifier()
trainer = BERTTrainer(net, 'adamw', lr=3e-3, amp='bfloat16', clip=1.0, quiet=True)
batch = random_batch(np.random.RandomState(0), 16)
losses = []
for _ in range(20):
    loss = summed_loss(net, batch)
    trainer.backward(loss)
    trainer.step(16, loss=loss)
    losses.append(float(loss.asnumpy()) / 16)
logits = net(batch[:3])
with tempfile.TemporaryDirectory() as folder:  # the operators of the graph that trained
    net.export(os.path.join(folder, 'net'), remove_amp_cast=False)
    with open(os.path.join(folder, 'net-symbol.json')) as f:
        nodes = json.load(f)['nodes']
operators = sorted({node['op'] for node in nodes})
def source(entry):  # the operator and output an input comes from, through AMP's casts
    node = nodes[entry[0]]
    return source(node['inputs'][0]) if node['op'] == 'amp_cast' else f"{node['op']}:{entry[1]}"
attention_inputs = [source(node['inputs'][0]) for node in nodes if node['op'] == 'gb_attention']
dense_inputs = [source(node['inputs'][0]) for node in nodes
                if node['op'] in ('FullyConnected', 'gb_dense')]
from gluonbert import ops  # the same parameters on MXNet's FullyConnected, imperatively
net.hybridize(active=False)
with ops.disabled('gb_dense'):
    plain = net(batch[:3])
to64 = lambda a: a.astype('float32').asnumpy().astype('float64')
print(json.dumps({'losses': losses, 'logits_dtype': str(logits.dtype), 'operators': operators,
                  'attention_inputs': attention_inputs, 'dense_inputs': dense_inputs,
                  'dense_kernel': ops.enabled('gb_dense'),
                  'logits_off_by': float(abs(to64(logits) - to64(plain)).max()
                                         / abs(to64(plain)).max()),
                  'weight_dtype': str(net.output.weight.data().dtype),
                  'loss_scale': trainer.loss_scale, 'skipped': trainer.guard.skipped}))
"""


def test_bfloat16_amp_trains_on_cpu_with_the_kernels():
    supported, why = cpu_bfloat16_support()
    if not supported:
        pytest.skip(why)
    tests = os.path.dirname(os.path.abspath(__file__))
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([tests, os.environ.get('PYTHONPATH', '')]))
    run = subprocess.run([sys.executable, '-c', TRAIN_IN_BFLOAT16], capture_output=True,
                         text=True, env=env, timeout=300, check=True)
    result = json.loads(run.stdout.strip().splitlines()[-1])
    assert result['logits_dtype'] == "[('bfloat16', '<u2')]"   # FullyConnected ran in bf16
    assert result['weight_dtype'] == "<class 'numpy.float32'>"  # master weights stay float32
    assert (result['loss_scale'], result['skipped']) == (1.0, 0)
    assert result['losses'][-1] < 0.5 * result['losses'][0]
    # gluonbert's kernels stay in the graph and take bfloat16 as AMP leaves it: attention
    # straight from the projection, and the dense layers after a LayerNorm read its bfloat16
    # twin (output 3), never its float32 output through a cast. The encoder's dense layers
    # run on gb_dense where it is built, and compute what FullyConnected computes
    dense = 'gb_dense' if result['dense_kernel'] else 'FullyConnected'
    assert {'gb_attention', 'gb_layer_norm', 'amp_cast', dense} <= set(result['operators'])
    assert result['attention_inputs'] and set(result['attention_inputs']) == {f'{dense}:0'}
    assert result['logits_off_by'] < 0.02
    assert 'gb_layer_norm:3' in result['dense_inputs']
    assert 'gb_layer_norm:0' not in result['dense_inputs']


def test_amp_that_was_not_enabled_before_building_the_model_is_an_error():
    supported, why = cpu_bfloat16_support()
    if not supported:
        pytest.skip(why)
    net, _ = tiny_classifier(hybridize=False)
    with pytest.raises(ValueError, match=r"mixed_precision.enable\('bfloat16'\) before "
                                         r"building the model"):
        BERTTrainer(net, lr=1e-3, amp='bfloat16', quiet=True)


def test_float16_needs_gpu_contexts():
    with pytest.raises(ValueError, match='amp="float16" needs GPU contexts.*use '
                                         'amp="bfloat16" on CPU'):
        check_supported('float16', [mx.cpu()])


def test_unknown_amp_dtypes_are_errors():
    with pytest.raises(ValueError, match="amp='int8'"):
        check_supported('int8', [mx.cpu()])


def test_a_dynamic_loss_scale_halves_on_overflow_and_doubles_after_a_clean_run():
    scaler = LossScaler(1024.0, growth_interval=3)
    scaler.update(False)
    assert scaler.scale == 512.0
    for _ in range(3):
        scaler.update(True)
    assert scaler.scale == 1024.0


def test_bfloat16_and_no_amp_use_a_fixed_scale_of_one():
    for dtype in ('bfloat16', None):
        scaler = LossScaler.for_dtype(dtype)
        scaler.update(False)
        assert scaler.scale == 1.0
    assert LossScaler.for_dtype('float16').scale == 2.0 ** 16


@pytest.mark.parametrize('native, width, expected', [
    (True, 768, 'bf16'), (True, 128, None), (True, None, None), (False, 768, None)])
def test_amp_auto_picks_bfloat16_for_wide_models_on_cpus_with_avx512_bf16(monkeypatch, native,
                                                                         width, expected):
    from gluonbert.train import mixed_precision
    monkeypatch.setattr(mixed_precision, 'cpu_native_bfloat16',
                        lambda: (native, '' if native else 'this CPU lacks AVX-512 BF16'))
    monkeypatch.setattr(mixed_precision, 'cpu_bfloat16_support', lambda: (True, ''))
    value, note = mixed_precision.choose('auto', [mx.cpu()], width)
    assert value == expected
    assert note.startswith('bfloat16 (--amp auto' if expected else 'float32 (--amp auto: ')


@pytest.mark.parametrize('flags, isa, fast', [
    ('avx512bw avx512_bf16', '', True),                       # AVX-512 BF16, no AMX (EPYC)
    ('avx512bw avx512_bf16 amx_bf16', 'AVX512_CORE_AMX', True),  # AMX, let to oneDNN
    ('avx512bw avx512_bf16 amx_bf16', '', False),             # AMX there but not on
    ('avx512bw', '', False)])
def test_bfloat16_counts_as_native_where_it_beats_float32(monkeypatch, tmp_path, flags, isa,
                                                          fast):
    import builtins
    from gluonbert.train import mixed_precision
    cpuinfo = tmp_path / 'cpuinfo'
    cpuinfo.write_text(f'flags\t: sse {flags}\n')
    real_open = builtins.open
    monkeypatch.setattr(builtins, 'open', lambda path, *a, **k: real_open(
        cpuinfo if path == '/proc/cpuinfo' else path, *a, **k))
    monkeypatch.setenv('DNNL_MAX_CPU_ISA', isa)
    assert mixed_precision.cpu_native_bfloat16()[0] is fast


@pytest.mark.parametrize('line, reason', [
    ('AMX off (MXNet imported before gluonbert)', '(MXNet imported before gluonbert)'),
    ('AMX off (Linux refused it)', '(Linux refused it)'),
    ('DNNL_MAX_CPU_ISA=AVX512_CORE (set by the user)', '(DNNL_MAX_CPU_ISA=AVX512_CORE (set')])
def test_amp_auto_says_why_amx_is_off(monkeypatch, line, reason):
    from gluonbert import runtime
    from gluonbert.train import mixed_precision
    monkeypatch.setattr(runtime, 'cpu_flags', lambda: {'avx512bw', 'avx512_bf16', 'amx_bf16'})
    monkeypatch.setattr(runtime, 'AMX', line)
    monkeypatch.delenv('DNNL_MAX_CPU_ISA', raising=False)
    fast, why = mixed_precision.cpu_native_bfloat16()
    assert not fast and why.startswith(f'AMX is not on for oneDNN {reason}'), why


def test_amp_off_and_an_explicit_amp_are_taken_as_given():
    from gluonbert.train import mixed_precision
    assert mixed_precision.choose('off', [mx.cpu()], 768) == (None, 'float32 (--amp off)')
    assert mixed_precision.choose('bf16', [mx.cpu()], 32) == ('bf16', 'bfloat16 (--amp bf16)')
    assert mixed_precision.choose('auto', [mx.gpu(0)], 768)[0] is None
