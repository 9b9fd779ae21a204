"""gluonbert's CPU kernels (gluonbert.ops): built by setup.sh, equal to MXNet's operators."""
import mxnet as mx
import numpy as np
from mxnet import autograd

import gluonbert
from gluonbert import ops
from tiny_bert import random_batch, tiny_classifier


def test_the_kernel_library_is_built_and_loaded():
    # setup.sh builds it; a failed build would silently cost the speed
    assert ops.enabled(), ops.status()


def _layer_norm_and_grads(op, x, gamma, beta, dy):
    for a in (x, gamma, beta):
        a.attach_grad()
    with autograd.record():
        y = op(x, gamma, beta)
    y.backward(dy)
    return [a.asnumpy() for a in (y, x.grad, gamma.grad, beta.grad)]


def test_layer_norm_kernel_equals_mxnet_forward_and_backward():
    rng = np.random.RandomState(0)
    x, dy = (mx.nd.array(rng.randn(7, 5, 48) * 3 + 1) for _ in range(2))
    gamma, beta = (mx.nd.array(rng.randn(48)) for _ in range(2))
    want = _layer_norm_and_grads(lambda *a: mx.nd.LayerNorm(*a, eps=1e-5),
                                 x.copy(), gamma.copy(), beta.copy(), dy)
    got = _layer_norm_and_grads(lambda *a: mx.nd.gb_layer_norm(*a, eps=1e-5)[0],
                                x.copy(), gamma.copy(), beta.copy(), dy)
    for name, w, g in zip(('out', 'data grad', 'gamma grad', 'beta grad'), want, got):
        np.testing.assert_allclose(g, w, rtol=1e-4, atol=1e-5, err_msg=name)


def test_models_use_the_kernel_on_cpu_and_not_when_exporting():
    net, _ = tiny_classifier()
    X = tuple(random_batch(np.random.RandomState(0), 4)[:3])
    eager = net(X).asnumpy()
    net.hybridize()
    np.testing.assert_allclose(net(X).asnumpy(), eager, rtol=1e-5, atol=1e-6)
    assert 'gb_layer_norm' in net._cached_graph[1].tojson()
    with ops.disabled():
        symbol = net(tuple(mx.sym.var(n) for n in ('tokens', 'segments', 'valid_lens')))
    assert 'gb_layer_norm' not in symbol.tojson() and 'LayerNorm' in symbol.tojson()
