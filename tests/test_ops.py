"""gluonbert's CPU kernels (gluonbert.ops): built by setup.sh, equal to MXNet's operators."""
import mxnet as mx
import numpy as np
import pytest
from mxnet import autograd

import gluonbert
from gluonbert import ops
from tiny_bert import random_batch, tiny_classifier


def test_the_kernel_library_is_built_and_loaded():
    # setup.sh builds it; a failed build would silently cost the speed
    assert ops.enabled(), ops.status()


def test_loading_the_library_leaves_denormal_floats_alone():
    # A library linked with -ffast-math would flush them to zero in the whole process
    assert (np.array([1e-40], np.float32) * np.float32(1.0))[0] > 0


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


def _softmax_ce_and_grad(op, logits, labels, dloss):
    logits.attach_grad()
    with autograd.record():
        loss = op(logits, labels)
    loss.backward(dloss)
    return loss.asnumpy(), logits.grad.asnumpy()


def test_softmax_ce_kernel_equals_log_softmax_and_pick():
    rng = np.random.RandomState(0)
    logits = mx.nd.array(rng.randn(33, 1000) * 4)
    labels = mx.nd.array(rng.randint(0, 1000, 33))
    dloss = mx.nd.array(rng.rand(33))
    want = _softmax_ce_and_grad(
        lambda z, y: -mx.nd.pick(mx.nd.log_softmax(z), y), logits.copy(), labels, dloss)
    got = _softmax_ce_and_grad(lambda z, y: mx.nd.gb_softmax_ce(z, y)[0],
                               logits.copy(), labels, dloss)
    np.testing.assert_allclose(got[0], want[0], rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(got[1], want[1], rtol=1e-4, atol=1e-6)


@pytest.mark.parametrize('label', [1000, -1, 2.5])
def test_softmax_ce_kernel_refuses_labels_outside_the_classes(label):
    labels = mx.nd.array([3, label])
    with pytest.raises(mx.base.MXNetError, match='is not a class id in'):
        mx.nd.gb_softmax_ce(mx.nd.zeros((2, 1000)), labels)[0].asnumpy()


def _objective_graph(net, loss):
    from gluonbert.train.pretrain import PretrainingObjective
    objective = PretrainingObjective(net, loss, 50)
    objective.hybridize()
    rng = np.random.RandomState(0)
    batch = [mx.nd.array(rng.randint(5, 50, (3, 8))), mx.nd.zeros((3, 8)), mx.nd.array([8, 5, 3]),
             mx.nd.array(rng.randint(0, 3, (3, 2))), mx.nd.ones((3, 2)),
             mx.nd.array(rng.randint(0, 50, (3, 2))), mx.nd.array([0, 1, 1])]
    sums = objective(*batch)
    return objective._cached_graph[1].tojson(), [float(s.asscalar()) for s in sums]


def test_pretraining_loss_runs_fused_for_a_plain_softmax_ce_loss_only():
    net = gluonbert.BERTModel(50, 16, 32, 2, 1, 0.0, max_len=8)
    net.initialize()
    fused, fused_sums = _objective_graph(net, mx.gluon.loss.SoftmaxCELoss())
    with ops.disabled():
        plain, plain_sums = _objective_graph(net, mx.gluon.loss.SoftmaxCELoss())
    assert 'gb_softmax_ce' in fused and 'gb_softmax_ce' not in plain
    np.testing.assert_allclose(fused_sums, plain_sums, rtol=1e-5)
    # A loss configured otherwise keeps its own computation
    other, _ = _objective_graph(net, mx.gluon.loss.SoftmaxCELoss(weight=2.0))
    assert 'gb_softmax_ce' not in other
