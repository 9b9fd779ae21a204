"""hybridize_for_inference: oneDNN-fused graphs give the eager outputs and refuse training."""
import mxnet as mx
import numpy as np
import pytest
from mxnet import autograd

import gluonbert
from tiny_bert import random_batch, tiny_classifier


def test_fused_graph_matches_eager_outputs_for_several_shapes():
    net, _ = tiny_classifier()
    batches = [tuple(random_batch(np.random.RandomState(seed), size)[:3])
               for seed, size in ((0, 8), (1, 3))]
    expected = [net(X).asnumpy() for X in batches]
    gluonbert.hybridize_for_inference(net)
    for X, want in zip(batches, expected):
        np.testing.assert_allclose(net(X).asnumpy(), want, rtol=1e-5, atol=1e-5)
    graph = net._cached_graph[1].tojson()
    assert '_sg_mkldnn_fully_connected' in graph and '_sg_mkldnn_selfatt_qk' in graph


def test_training_a_fused_graph_is_refused_until_hybridized_again():
    net, _ = tiny_classifier()
    X = tuple(random_batch(np.random.RandomState(0), 4)[:3])
    gluonbert.hybridize_for_inference(net)
    net(X)
    with pytest.raises(RuntimeError, match='hybridized for inference .* net.hybridize()'):
        with autograd.record():
            net(X)
    net.hybridize()
    with autograd.record():
        loss = net(X).sum()
    loss.backward()
    assert float(net.output.weight.grad().abs().sum().asscalar()) > 0


def test_no_fusion_backend_off_cpu():
    assert gluonbert.model.inference.inference_backend([mx.cpu(0), mx.cpu(1)]) == 'MKLDNN'
    assert gluonbert.model.inference.inference_backend([mx.gpu(0)]) is None


@pytest.mark.parametrize('numpy', [False, True])
def test_a_fused_bert_takes_pred_positions_without_valid_lens(numpy, request):
    _, bert = tiny_classifier()
    tokens, segments, _, _ = random_batch(np.random.RandomState(0), 4)
    positions = mx.nd.array([[1, 3, 5]] * 4)
    expected = [y.asnumpy() for y in bert(tokens, segments, None, positions)]
    gluonbert.hybridize_for_inference(bert)
    if numpy:  # as a d2l reader calls it, after npx.set_np()
        request.getfixturevalue('np_mode')
        tokens, segments, positions = (a.as_np_ndarray() for a in (tokens, segments, positions))
    for want, y in zip(expected, bert(tokens, segments, None, positions)):
        np.testing.assert_allclose(y.asnumpy(), want, rtol=1e-5, atol=1e-5)
