"""hybridize_for_inference: gluonbert's kernels where built, else oneDNN-fused graphs (which
refuse training); either gives the eager outputs."""
import contextlib

import mxnet as mx
import numpy as np
import pytest
from mxnet import autograd

import gluonbert
from gluonbert import ops
from tiny_bert import random_batch, tiny_classifier


@pytest.mark.parametrize('kernels', [True, False])
def test_inference_graph_matches_eager_outputs_for_several_shapes(kernels):
    """With the kernels: the training graph's kernels, no oneDNN partition; without them
    (``ops.disabled``): oneDNN's fused operators."""
    net, _ = tiny_classifier()
    batches = [tuple(random_batch(np.random.RandomState(seed), size)[:3])
               for seed, size in ((0, 8), (1, 3))]
    expected = [net(X).asnumpy() for X in batches]
    with contextlib.nullcontext() if kernels else ops.disabled():
        gluonbert.hybridize_for_inference(net)
    for X, want in zip(batches, expected):
        np.testing.assert_allclose(net(X).asnumpy(), want, rtol=1e-5, atol=1e-5)
    graph = net._cached_graph[1].tojson()
    fused = '_sg_mkldnn_fully_connected' in graph and '_sg_mkldnn_selfatt_qk' in graph
    assert fused == (not kernels)
    assert ('gb_attention' in graph) == kernels


def test_training_a_fused_graph_is_refused_until_hybridized_again():
    net, _ = tiny_classifier()
    X = tuple(random_batch(np.random.RandomState(0), 4)[:3])
    with ops.disabled():
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


def test_the_fusion_backend_only_on_cpu_without_the_kernels():
    backend = gluonbert.model.inference.inference_backend
    assert backend([mx.cpu(0), mx.cpu(1)]) is None  # the kernels are built for the tests
    with ops.disabled():
        assert backend([mx.cpu(0), mx.cpu(1)]) == 'MKLDNN'
        assert backend([mx.gpu(0)]) is None


@pytest.mark.parametrize('kernels', [True, False])
@pytest.mark.parametrize('numpy', [False, True])
def test_an_inference_bert_takes_pred_positions_without_valid_lens(numpy, kernels, request):
    _, bert = tiny_classifier()
    tokens, segments, _, _ = random_batch(np.random.RandomState(0), 4)
    positions = mx.nd.array([[1, 3, 5]] * 4)
    expected = [y.asnumpy() for y in bert(tokens, segments, None, positions)]
    with contextlib.nullcontext() if kernels else ops.disabled():
        gluonbert.hybridize_for_inference(bert)
    if numpy:  # as a d2l reader calls it, after npx.set_np()
        request.getfixturevalue('np_mode')
        tokens, segments, positions = (a.as_np_ndarray() for a in (tokens, segments, positions))
    for want, y in zip(expected, bert(tokens, segments, None, positions)):
        np.testing.assert_allclose(y.asnumpy(), want, rtol=1e-5, atol=1e-5)
