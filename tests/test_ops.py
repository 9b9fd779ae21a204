"""gluonbert's CPU kernels (gluonbert.ops): built by setup.sh, equal to MXNet's operators."""
import os

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
    assert 'gb_' not in symbol.tojson() and 'LayerNorm' in symbol.tojson()
    assert 'interleaved_matmul_selfatt_qk' in symbol.tojson()


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


def _attention_and_grad(qkv, mask, heads, rate, kernel, dy, seed=0):
    from gluonbert.model.attention import attend
    qkv = qkv.copy()
    qkv.attach_grad()
    mx.random.seed(seed)
    with autograd.record():
        out = attend(mx.nd, qkv, mask, heads, mx.gluon.nn.Dropout(rate), kernel=kernel)
    out.backward(dy)
    return out.asnumpy(), qkv.grad.asnumpy()


# (seq_len, batch, heads, head_dim): odd sizes reach the kernel's edge loops (its products
# take 32 columns at a time on AVX-512, then 16, then one by one; 8 rows, then 4, then 1)
SHAPES = [(7, 3, 2, 16), (37, 2, 3, 24), (64, 2, 2, 64), (53, 2, 2, 48)]


@pytest.mark.parametrize('masking', ['none', 'lengths', 'additive'])
@pytest.mark.parametrize('shape', SHAPES)
def test_attention_kernel_equals_mxnet_forward_and_backward(shape, masking):
    from gluonbert.model.attention import attention_mask
    seq, batch, heads, dim = shape
    rng = np.random.RandomState(0)
    qkv = mx.nd.array(rng.randn(seq, batch, 3 * heads * dim) * 2)
    dy = mx.nd.array(rng.randn(seq, batch, heads * dim))
    lengths = mx.nd.array(np.maximum(1, rng.randint(1, seq + 1, batch)))  # uneven, some 1
    full = attention_mask(mx.nd, lengths, mx.nd.zeros((seq, batch)), heads)
    want = _attention_and_grad(qkv, None if masking == 'none' else full, heads, 0.0, False, dy)
    kernel_mask = {'none': None, 'lengths': lengths, 'additive': full}[masking]
    got = _attention_and_grad(qkv, kernel_mask, heads, 0.0, True, dy)
    np.testing.assert_allclose(got[0], want[0], rtol=1e-4, atol=1e-5, err_msg='out')
    np.testing.assert_allclose(got[1], want[1], rtol=1e-4, atol=1e-4, err_msg='qkv grad')


def test_attention_dropout_is_reproducible_by_seed_and_off_at_inference():
    rng = np.random.RandomState(0)
    qkv = mx.nd.array(rng.randn(16, 4, 3 * 2 * 16))
    dy = mx.nd.array(rng.randn(16, 4, 32))
    lengths = mx.nd.array([16, 9, 3, 12])
    first = _attention_and_grad(qkv, lengths, 2, 0.3, True, dy, seed=7)
    again = _attention_and_grad(qkv, lengths, 2, 0.3, True, dy, seed=7)
    other = _attention_and_grad(qkv, lengths, 2, 0.3, True, dy, seed=8)
    undropped = _attention_and_grad(qkv, lengths, 2, 0.0, True, dy)
    for a, b in zip(first, again):
        np.testing.assert_array_equal(a, b)
    assert np.abs(first[0] - other[0]).max() > 0.1
    assert np.abs(first[0] - undropped[0]).max() > 0.1
    from gluonbert.model.attention import attend
    inference = attend(mx.nd, qkv, lengths, 2, mx.gluon.nn.Dropout(0.3), kernel=True)
    np.testing.assert_allclose(inference.asnumpy(), undropped[0], rtol=1e-6, atol=1e-6)


def test_attention_dropout_drops_its_rate_and_scales_the_rest():
    # Q = K = 0 makes every weight 1 / seq; V = identity copies the dropped weights out
    seq, pairs, rate = 16, 600, 0.25
    qkv = np.zeros((seq, pairs, 3 * seq), np.float32)
    qkv[:, :, 2 * seq:] = np.eye(seq)[:, None, :]
    from gluonbert.model.attention import attend
    with autograd.train_mode():
        out = attend(mx.nd, mx.nd.array(qkv), None, 1, mx.gluon.nn.Dropout(rate),
                     kernel=True).asnumpy()
    kept = out != 0
    assert abs(1 - kept.mean() - rate) < 0.01
    np.testing.assert_allclose(out[kept], 1 / seq / (1 - rate), rtol=1e-6)


def test_attention_dropout_backward_uses_the_forward_mask():
    # The gradient must be the derivative of the forward that ran: a central difference of
    # the same seeded forward along a random direction agrees with it
    rng = np.random.RandomState(1)
    qkv = mx.nd.array(rng.randn(12, 3, 3 * 2 * 8))
    dy = mx.nd.array(rng.randn(12, 3, 16))
    lengths = mx.nd.array([12, 7, 4])
    _, grad = _attention_and_grad(qkv, lengths, 2, 0.4, True, dy, seed=3)
    direction, eps = rng.randn(*qkv.shape).astype(np.float32), 1e-2

    def objective(x):
        out, _ = _attention_and_grad(mx.nd.array(x), lengths, 2, 0.4, True, dy, seed=3)
        return float((out.astype(np.float64) * dy.asnumpy()).sum())
    x = qkv.asnumpy()
    numeric = (objective(x + eps * direction) - objective(x - eps * direction)) / (2 * eps)
    np.testing.assert_allclose((grad * direction).sum(), numeric, rtol=2e-3)


def _dropout_and_grad(x, rate, dy, seed):
    from gluonbert.model.dropout import training_flag
    x = x.copy()
    x.attach_grad()
    mx.random.seed(seed)
    with autograd.record():
        y = mx.nd.gb_dropout(x, training_flag(mx.nd, x), p=rate)[0]
    y.backward(dy)
    return y.asnumpy(), x.grad.asnumpy()


def test_dropout_kernel_statistics_reproducibility_and_backward_mask():
    rate, x = 0.3, mx.nd.ones((300, 1000))
    dy = mx.nd.array(np.random.RandomState(0).rand(300, 1000) + 0.5)
    y, dx = _dropout_and_grad(x, rate, dy, seed=1)
    kept = y != 0
    assert abs(1 - kept.mean() - rate) < 0.005
    np.testing.assert_allclose(y[kept], 1 / (1 - rate), rtol=1e-6)
    # The backward drops exactly what the forward dropped, with the same scale
    np.testing.assert_allclose(dx, np.where(kept, dy.asnumpy() / (1 - rate), 0), rtol=1e-6)
    again, _ = _dropout_and_grad(x, rate, dy, seed=1)
    other, _ = _dropout_and_grad(x, rate, dy, seed=2)
    np.testing.assert_array_equal(again, y)
    assert 0.5 < ((other != 0) != kept).mean() / (2 * rate * (1 - rate)) < 1.5
    # Neighbouring elements are independent: the kept pairs follow (1 - rate)^2
    pairs = (kept[:, :-1] & kept[:, 1:]).mean()
    assert abs(pairs - (1 - rate) ** 2) < 0.005


def test_dropout_kernel_is_the_identity_at_inference():
    from gluonbert.model.dropout import training_flag
    x = mx.nd.array(np.random.RandomState(0).randn(5, 7))
    y = mx.nd.gb_dropout(x, training_flag(mx.nd, x), p=0.5)[0]
    np.testing.assert_array_equal(y.asnumpy(), x.asnumpy())


def _classifier_outputs_and_grads(batch, train):
    net, _ = tiny_classifier(dropout=0.0)
    tokens, segments, valid_lens, labels = batch
    with autograd.record(train_mode=train):
        loss = mx.gluon.loss.SoftmaxCELoss()(net((tokens, segments, valid_lens)), labels)
    loss.backward()
    # By position: the two models' parameter names differ in their prefixes only
    grads = [(name, p.grad().asnumpy()) for name, p in net.collect_params().items()
             if p.grad_req != 'null']
    return loss.asnumpy(), grads, net._cached_graph[1].tojson()


@pytest.mark.parametrize('train', [True, False])
def test_models_compute_the_same_with_the_attention_and_dropout_kernels(train):
    batch = random_batch(np.random.RandomState(0), 6)
    loss, grads, graph = _classifier_outputs_and_grads(batch, train)
    with ops.disabled():
        want_loss, want_grads, plain = _classifier_outputs_and_grads(batch, train)
    assert 'gb_attention' in graph and 'gb_attention' not in plain
    assert 'interleaved_matmul_selfatt_qk' in plain
    np.testing.assert_allclose(loss, want_loss, rtol=1e-5, atol=1e-6)
    assert len(grads) == len(want_grads)
    for (name, grad), (_, want) in zip(grads, want_grads):
        np.testing.assert_allclose(grad, want, rtol=1e-3, atol=1e-5, err_msg=name)


def test_a_model_traced_in_training_drops_out_in_training_only():
    # Gluon traces a hybridized block once for both modes: the kernels must read the mode
    # from the running graph, not from the trace
    net, _ = tiny_classifier(dropout=0.3, embedding_layer_norm=True)
    X = tuple(random_batch(np.random.RandomState(0), 4)[:3])
    with autograd.record():
        trained = net(X).asnumpy()
    graph = net._cached_graph[1].tojson()
    # One flag for the whole graph, MXNet's Dropout of a one: the only Dropout left in it
    assert '"gb_dropout"' in graph and graph.count('"op": "Dropout"') == 1
    inference = net(X).asnumpy()
    np.testing.assert_array_equal(net(X).asnumpy(), inference)
    assert np.abs(trained - inference).max() > 1e-3
    with ops.disabled():
        plain, _ = tiny_classifier(dropout=0.3, embedding_layer_norm=True)
        np.testing.assert_allclose(plain(X).asnumpy(), inference, rtol=1e-5, atol=1e-6)


def test_gradients_accumulate_under_grad_req_add_with_dropout():
    net, _ = tiny_classifier(dropout=0.3, embedding_layer_norm=True)
    batch = random_batch(np.random.RandomState(0), 4)
    tokens, segments, valid_lens, labels = batch
    params = {n: p for n, p in net.collect_params().items() if p.grad_req != 'null'}

    def backward():
        mx.random.seed(11)  # the same dropout masks each time
        with autograd.record():
            mx.gluon.loss.SoftmaxCELoss()(net((tokens, segments, valid_lens)), labels).backward()
    backward()
    once = {n: p.grad().asnumpy().copy() for n, p in params.items()}
    net.collect_params().setattr('grad_req', 'add')
    net.collect_params().zero_grad()
    backward()
    backward()
    for name, grad in once.items():
        np.testing.assert_allclose(params[name].grad().asnumpy(), 2 * grad, rtol=1e-4,
                                   atol=1e-6, err_msg=name)


def test_kernels_switch_off_one_by_one_and_unknown_names_are_refused():
    net, _ = tiny_classifier(dropout=0.2)
    X = tuple(random_batch(np.random.RandomState(0), 4)[:3])
    with ops.disabled('gb_attention'):
        assert ops.enabled('gb_layer_norm') and not ops.enabled('gb_attention')
        assert not ops.enabled()
        net(X)
    graph = net._cached_graph[1].tojson()
    assert 'gb_layer_norm' in graph and 'gb_attention' not in graph
    assert 'interleaved_matmul_selfatt_qk' in graph
    with pytest.raises(ValueError, match=r"kernels=\['gb_softmax'\] are not gluonbert"):
        ops.disabled('gb_softmax')


def test_without_the_library_models_build_mxnet_operators(monkeypatch):
    # As when no compiler built it: the same model, on MXNet's operators only
    monkeypatch.setitem(ops._state, 'loaded', False)
    net, _ = tiny_classifier(dropout=0.2, embedding_layer_norm=True)
    X = tuple(random_batch(np.random.RandomState(0), 4)[:3])
    with autograd.record():
        net(X)
    graph = net._cached_graph[1].tojson()
    assert 'gb_' not in graph and 'Dropout' in graph and 'interleaved_matmul_selfatt_qk' in graph


@pytest.mark.parametrize('clip', [-1.0, 0.3])
@pytest.mark.parametrize('decay,wd', [(1 - 1e-3, 0.0), (1.0, 0.1)], ids=['decoupled', 'l2'])
def test_adam_update_kernel_is_mxnet_adam_update_bit_for_bit(clip, decay, wd):
    # Shapes that reach the vector loop and its remainder, split over the threads
    rng = np.random.RandomState(0)
    for shape in [(7,), (301, 37)]:
        w, g, m = (rng.randn(*shape).astype(np.float32) for _ in range(3))
        v = np.abs(rng.randn(*shape)).astype(np.float32)
        options = dict(lr=0.01, beta1=0.9, beta2=0.999, epsilon=1e-6, rescale_grad=0.25,
                       clip_gradient=clip)
        theirs = [mx.nd.array(a) for a in (w * np.float32(decay), g, m, v)]
        mx.nd.adam_update(*theirs, wd=wd, out=theirs[0], **options)
        ours = [mx.nd.array(a) for a in (w, g, m, v)]
        mx.nd.gb_adam_update(*ours, wd=wd, decay=decay, out=ours[0], **options)
        for name, a, b in zip(('weight', 'grad', 'mean', 'var'), ours, theirs):
            np.testing.assert_array_equal(a.asnumpy(), b.asnumpy(), err_msg=name)
        assert not np.array_equal(ours[2].asnumpy(), m)  # the moments moved, in place


def test_sum_sq_kernel_sums_every_square_and_keeps_non_finite_values():
    rng = np.random.RandomState(0)
    arrays = [rng.randn(*s).astype(np.float32) for s in [(1,), (300001,), (17, 3)]]
    total = mx.nd.gb_sum_sq(*map(mx.nd.array, arrays), num_arrays=3).asnumpy()
    want = sum((a.astype(np.float64) ** 2).sum() for a in arrays)
    np.testing.assert_allclose(total, [want], rtol=1e-6)
    for bad in (np.inf, np.nan):
        arrays[1][12345] = bad
        total = mx.nd.gb_sum_sq(*map(mx.nd.array, arrays), num_arrays=3).asscalar()
        assert not np.isfinite(total)


@pytest.mark.parametrize('packed', [False, True], ids=['padded', 'packed'])
def test_attention_first_position_queries_give_the_full_calls_first_rows(packed):
    # Dropout on: the first-position call draws the full call's mask at those positions
    from gluonbert.model.packing import packing_of
    seq, batch, heads, dim = 9, 3, 2, 8
    rng = np.random.RandomState(0)
    lengths = np.array([9, 2, 5], np.float32)
    padded_qkv = rng.randn(seq, batch, 3 * heads * dim).astype(np.float32)
    grad_first = mx.nd.array(rng.randn(batch, heads * dim))
    if packed:
        rows_of, rows = packing_of(lengths, seq, multiple=4)
        qkv = mx.nd.array(padded_qkv.transpose(1, 0, 2).reshape(batch * seq, -1)[
            rows_of.astype(int)])
        extra, options = (mx.nd.array(rows),), dict(packed=1)
        firsts = rows[:, 0].astype(int)
    else:
        qkv, extra, options, firsts = mx.nd.array(padded_qkv), (), {}, None

    def call(first):
        mx.random.seed(7)
        x = qkv.copy()
        x.attach_grad()
        with autograd.record():
            out = mx.nd.gb_attention(x, mx.nd.array([2.0]), mx.nd.array(lengths), *extra,
                                     heads=heads, dropout=0.3, masked=1, first=int(first),
                                     mask_value=-1e6, **options)[0]
        if first:
            out.backward(grad_first)
            return out.asnumpy(), x.grad.asnumpy()
        dy = np.zeros(out.shape, np.float32)
        if packed:
            dy[firsts] = grad_first.asnumpy()
            first_rows = out.asnumpy()[firsts]
        else:
            dy[0] = grad_first.asnumpy()
            first_rows = out.asnumpy()[0]
        out.backward(mx.nd.array(dy))
        return first_rows, x.grad.asnumpy()

    (full_out, full_grad), (out, grad) = call(False), call(True)
    assert out.shape == (batch, heads * dim)
    np.testing.assert_allclose(out, full_out, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(grad, full_grad, rtol=1e-4, atol=1e-5)
    assert np.abs(grad).sum() > 0


BFLOAT16 = np.dtype([('bfloat16', np.uint16)])


def _bfloat16(x):
    return mx.nd.amp_cast(x, dtype=BFLOAT16)


def _float32(x):
    return mx.nd.amp_cast(x, dtype='float32')


def _assert_widens_bfloat16_as_a_cast(forward, data, dy, train_mode=True):
    """``forward(x)`` on bfloat16 ``data`` gives, bit for bit, the float32 output of
    ``forward`` on ``data`` cast to float32, and ``data``'s gradient that call's gradient
    rounded as amp_cast rounds; returns the output."""
    def call(x):
        x.attach_grad()
        with autograd.record(train_mode=train_mode):
            out = forward(x)
        out.backward(dy)
        return out, x.grad

    out16, grad16 = call(data.copy())
    out32, grad32 = call(_float32(data))
    assert out16.dtype == np.float32 and grad16.dtype == BFLOAT16
    np.testing.assert_array_equal(out16.asnumpy(), out32.asnumpy())
    np.testing.assert_array_equal(_float32(grad16).asnumpy(),
                                  _float32(_bfloat16(grad32)).asnumpy())
    return out16


@pytest.mark.parametrize('dropout', [0.0, 0.3])
@pytest.mark.parametrize('first', [0, 1])
@pytest.mark.parametrize('packed', [False, True], ids=['padded', 'packed'])
def test_attention_kernel_in_bfloat16_is_the_float32_call_between_amp_casts(packed, first,
                                                                           dropout):
    # Bit for bit: bfloat16 qkv widens exactly, and the kernel rounds its output and qkv's
    # gradient as amp_cast does; the shape reaches the 32-, 16- and one-column loops
    from gluonbert.model.packing import packing_of
    seq, batch, heads, dim = 37, 3, 2, 24
    rng = np.random.RandomState(0)
    lengths = np.array([37, 5, 20], np.float32)
    qkv = rng.randn(seq, batch, 3 * heads * dim).astype(np.float32) * 2
    extra, options = (), {}
    if packed:
        rows_of, rows = packing_of(lengths, seq, multiple=4)
        qkv = qkv.transpose(1, 0, 2).reshape(batch * seq, -1)[rows_of.astype(int)]
        extra, options = (mx.nd.array(rows),), dict(packed=1)
    qkv = _float32(_bfloat16(mx.nd.array(qkv)))  # values that bfloat16 holds exactly

    def call(x, cast):
        x = cast(x)
        x.attach_grad()
        mx.random.seed(7)
        with autograd.record():
            out = mx.nd.gb_attention(x, mx.nd.array([2.0]), mx.nd.array(lengths), *extra,
                                     heads=heads, dropout=dropout, masked=1, first=first,
                                     mask_value=-1e6, **options)[0]
        out.backward(cast(_bfloat16(mx.nd.array(np.random.RandomState(1).randn(*out.shape)))))
        return out, x.grad

    out32, grad32 = call(qkv, _float32)
    out16, grad16 = call(qkv, _bfloat16)
    assert out16.dtype == BFLOAT16 and grad16.dtype == BFLOAT16
    for got, want in ((out16, out32), (grad16, grad32)):
        np.testing.assert_array_equal(_float32(got).asnumpy(),
                                      _float32(_bfloat16(want)).asnumpy())
    assert np.abs(_float32(grad16).asnumpy()).sum() > 0


@pytest.mark.parametrize('train', [True, False])
def test_dropout_kernel_widens_bfloat16_data_as_a_cast_before_it_would(train):
    # The output is float32; the data's gradient is rounded to bfloat16 as amp_cast rounds
    rng = np.random.RandomState(0)
    data = _bfloat16(mx.nd.array(rng.randn(70, 131)))  # odd sizes: the loops' remainders
    dy = mx.nd.array(rng.randn(70, 131))

    def forward(x):
        mx.random.seed(3)
        flag = mx.nd.Dropout(mx.nd.ones((1,)), p=0.5)
        return mx.nd.gb_dropout(x, flag, p=0.3)[0]

    out = _assert_widens_bfloat16_as_a_cast(forward, data, dy, train_mode=train)
    assert (out.asnumpy() == 0).any() == train


def test_layer_norm_kernel_on_bfloat16_data_is_the_float32_call_after_a_cast():
    rng = np.random.RandomState(0)
    data = _bfloat16(mx.nd.array(rng.randn(37, 5, 24) * 3 + 1))
    gamma, beta = mx.nd.array(rng.rand(24) + 0.5), mx.nd.array(rng.randn(24))
    dy = mx.nd.array(rng.randn(37, 5, 24))
    _assert_widens_bfloat16_as_a_cast(
        lambda x: mx.nd.gb_layer_norm(x, gamma, beta, eps=1e-5)[0], data, dy)


def test_layer_norm_twin_is_the_output_in_bfloat16_and_its_gradient_adds_up():
    # What AMP would do with a cast: the twin rounds as amp_cast does, and the gradients of
    # the output and of the twin (widened) add up before the LayerNorm's backward
    rng = np.random.RandomState(1)
    data = mx.nd.array(rng.randn(70, 40))  # 40: a vector and a remainder of the row loops
    gamma, beta = mx.nd.array(rng.rand(40) + 0.5), mx.nd.array(rng.randn(40))
    dy, dtwin = mx.nd.array(rng.randn(70, 40)), _bfloat16(mx.nd.array(rng.randn(70, 40)))

    def call(twin):
        x = data.copy()
        x.attach_grad()
        with autograd.record():
            outputs = mx.nd.gb_layer_norm(x, gamma, beta, eps=1e-5, twin=int(twin))
        if twin:
            autograd.backward([outputs[0], outputs[3]], [dy, dtwin])
        else:
            outputs[0].backward(dy + _float32(dtwin))
        return outputs, x.grad.asnumpy()

    (with_twin, grad), (plain, want) = call(True), call(False)
    assert len(with_twin) == 4 and with_twin[3].dtype == BFLOAT16
    np.testing.assert_array_equal(with_twin[0].asnumpy(), plain[0].asnumpy())
    np.testing.assert_array_equal(_float32(with_twin[3]).asnumpy(),
                                  _float32(_bfloat16(plain[0])).asnumpy())
    np.testing.assert_array_equal(grad, want)


def test_softmax_ce_kernel_on_bfloat16_logits_is_the_float32_call_after_a_cast():
    rng = np.random.RandomState(0)
    logits = _bfloat16(mx.nd.array(rng.randn(9, 1003) * 4))  # 1003: the loops' remainders
    labels = mx.nd.array(rng.randint(0, 1003, 9))
    dloss = mx.nd.array(rng.rand(9))
    _assert_widens_bfloat16_as_a_cast(lambda z: mx.nd.gb_softmax_ce(z, labels)[0], logits,
                                      dloss)


def _dense_and_grads(op, x, weight, bias, dy):
    inputs = [x, weight] + ([] if bias is None else [bias])
    for a in inputs:
        a.attach_grad()
    with autograd.record():
        y = op(*inputs)
    y.backward(dy)
    return [_float32(a).asnumpy().astype(np.float64) for a in [y] + [a.grad for a in inputs]]


@pytest.mark.skipif(not ops.enabled('gb_dense'), reason='gb_dense needs oneDNN 3 (the '
                    'onednn-devel-cpu-gomp wheel of requirements.txt); ' + ops.status())
@pytest.mark.parametrize('use_bias', [True, False], ids=['bias', 'no bias'])
def test_dense_kernel_is_the_bfloat16_product_rounded_once(use_bias):
    # Output and gradients are the exact products of the bfloat16 values rounded once to
    # bfloat16 (half a unit in the last of its 8 bits), as FullyConnected's are; 3-d data
    # (dense over the last axis) with sizes that leave remainders in every blocked loop
    rng = np.random.RandomState(0)
    x = _bfloat16(mx.nd.array(rng.randn(37, 3, 40)))
    weight = _bfloat16(mx.nd.array(rng.randn(24, 40) * 0.2))
    bias = _bfloat16(mx.nd.array(rng.randn(24))) if use_bias else None
    dy = _bfloat16(mx.nd.array(rng.randn(37, 3, 24)))
    x64, w64, dy64 = (_float32(a).asnumpy().astype(np.float64) for a in (x, weight, dy))
    want = [x64 @ w64.T + (_float32(bias).asnumpy() if use_bias else 0), dy64 @ w64,
            np.einsum('sbu,sbi->ui', dy64, x64)] + ([dy64.sum(axis=(0, 1))] if use_bias else [])
    got = _dense_and_grads(lambda *a: mx.nd.gb_dense(*a, no_bias=not use_bias),
                           x, weight, bias, dy)
    fully_connected = _dense_and_grads(
        lambda *a: mx.nd.FullyConnected(*a, num_hidden=24, no_bias=not use_bias, flatten=False),
        x.copy(), weight.copy(), None if bias is None else bias.copy(), dy)
    assert got[0].shape == (37, 3, 24)
    for name, g, f, w in zip(('out', 'data grad', 'weight grad', 'bias grad'), got,
                             fully_connected, want):
        scale = np.abs(w).max()
        np.testing.assert_allclose(g, w, rtol=2 ** -8, atol=1e-5 * scale, err_msg=name)
        np.testing.assert_allclose(f, w, rtol=2 ** -8, atol=1e-5 * scale, err_msg=name)


@pytest.mark.skipif(not ops.enabled('gb_dense'), reason='gb_dense is not built: ' + ops.status())
def test_dense_kernel_refuses_float32_and_mismatched_weights():
    x = _bfloat16(mx.nd.ones((4, 8)))
    with pytest.raises(mx.base.MXNetError, match='bfloat16 only'):
        mx.nd.gb_dense(mx.nd.ones((4, 8)), mx.nd.ones((3, 8)), no_bias=True).wait_to_read()
    with pytest.raises(mx.base.MXNetError, match=r'shape \(units, data.shape\[-1\]\)'):
        mx.nd.gb_dense(x, _bfloat16(mx.nd.ones((3, 7))), no_bias=True).wait_to_read()


def test_without_onednn_the_dense_kernel_is_left_out_of_the_build(monkeypatch):
    # An environment without the onednn wheel still builds every other kernel, and installing
    # the wheel later changes the digest, so that the library is rebuilt with gb_dense
    with_onednn = ops._source_digest()
    monkeypatch.setattr(ops, 'ONEDNN_INCLUDE', '/nonexistent/include')
    built = [os.path.basename(path) for path in ops._sources()]
    assert 'dense.cc' not in built and {'attention.cc', 'kernels.cc'} <= set(built)
    assert ops._source_digest() != with_onednn
