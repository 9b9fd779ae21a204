"""AMX for bfloat16 (gluonbert/runtime.py): on a CPU with AMX, gluonbert asks Linux for it and
lets oneDNN use it; a child process that inherits ``DNNL_MAX_CPU_ISA`` asks again (without the
permission, AMX instructions kill it with SIGILL)."""
import json
import os
import subprocess
import sys

import numpy as np
import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _has_amx():
    try:
        with open('/proc/cpuinfo', encoding='utf-8') as f:
            return 'amx_bf16' in f.read()
    except OSError:
        return False


pytestmark = pytest.mark.skipif(not _has_amx(), reason='this CPU has no AMX (amx_bf16)')

# One bfloat16 dense layer forward and backward, as --amp bf16 runs the model's
BF16_DENSE = '''
import json
import gluonbert, mxnet as mx
from gluonbert.train import mixed_precision
mixed_precision.enable('bfloat16')
from mxnet.gluon import nn
mx.random.seed(0)
net = nn.Dense(64, flatten=False, in_units=64)
net.initialize(mx.init.Uniform(0.1))
x = mx.nd.random.uniform(shape=(8, 16, 64))
x.attach_grad()
with mx.autograd.record():
    y = net(x)
y.backward()
print(json.dumps(dict(amx=gluonbert.runtime.AMX, y=y.astype('float32').asnumpy().ravel().tolist(),
                      grad=x.grad.asnumpy().ravel().tolist())))
'''


def _run(isa):
    env = dict(os.environ, PYTHONPATH=ROOT)
    env.pop('DNNL_MAX_CPU_ISA', None)
    if isa:
        env['DNNL_MAX_CPU_ISA'] = isa
    done = subprocess.run([sys.executable, '-c', BF16_DENSE], env=env, capture_output=True,
                          text=True, timeout=120)
    assert done.returncode == 0, (done.returncode, done.stderr[-2000:])
    return json.loads(done.stdout.strip().splitlines()[-1])


def test_gluonbert_turns_amx_on_where_the_user_did_not_choose():
    assert _run(None)['amx'] == 'AMX on for bfloat16'


def test_a_child_that_inherits_the_variable_still_gets_the_permission():
    # the parent's DNNL_MAX_CPU_ISA=AVX512_CORE_AMX, as a bench or launcher child sees it
    out = _run('AVX512_CORE_AMX')
    assert 'set by the user or a parent process' in out['amx']


def test_amx_computes_what_avx512_bf16_computes():
    amx, avx = _run(None), _run('AVX512_CORE_BF16')
    np.testing.assert_allclose(amx['y'], avx['y'], rtol=2e-2, atol=2e-2)
    np.testing.assert_allclose(amx['grad'], avx['grad'], rtol=2e-2, atol=2e-2)
