"""Validation metrics of pretraining: MLM loss, perplexity, MLM and NSP accuracy, computed on
the held-out examples' fixed masks, batched and sharded without changing the numbers."""
import math

import mxnet as mx
import numpy as np
import pytest
from mxnet import init

from gluonbert import BERTModel
from gluonbert.data import embedded_slice_dir, load_wiki_dataset
from gluonbert.train.pretrain_validation import evaluate_pretraining


@pytest.fixture(scope='module')
def dataset():
    data = load_wiki_dataset(24, embedded_slice_dir(), seed=0, use_cache=False)
    return data.from_arrays(tuple(a[:60] for a in data.arrays), data.vocab)


@pytest.fixture(scope='module')
def net(dataset):
    mx.random.seed(0)
    bert = BERTModel(len(dataset.vocab), 16, 32, 2, 1, 0.5, max_len=24)
    bert.initialize(init.Xavier())
    return bert


def reference(net, dataset):
    """The metrics from one forward pass over everything, in NumPy."""
    tokens, segments, valid_lens, positions, weights, labels, nsp = (mx.nd.array(a) for a in
                                                                     dataset.arrays)
    _, mlm, nsp_logits = net(tokens, segments, valid_lens, positions)
    mlm, nsp_logits = mlm.asnumpy().astype(np.float64), nsp_logits.asnumpy().astype(np.float64)
    weights, labels, nsp = dataset.all_mlm_weights, dataset.all_mlm_labels, dataset.nsp_labels
    log_probs = mlm - np.log(np.exp(mlm).sum(-1, keepdims=True))
    ce = -np.take_along_axis(log_probs, labels[..., None], -1)[..., 0]
    nsp_log_probs = nsp_logits - np.log(np.exp(nsp_logits).sum(-1, keepdims=True))
    return {'mlm_loss': (ce * weights).sum() / weights.sum(),
            'mlm_accuracy': ((mlm.argmax(-1) == labels) * weights).sum() / weights.sum(),
            'nsp_loss': -nsp_log_probs[np.arange(len(nsp)), nsp.astype(int)].mean(),
            'nsp_accuracy': (nsp_logits.argmax(-1) == nsp).mean()}


def test_metrics_equal_a_one_pass_numpy_computation_over_predicted_positions_only(net,
                                                                                  dataset):
    assert (dataset.all_mlm_weights == 0).any()  # padded prediction slots must not count
    metrics = evaluate_pretraining(net, dataset, [mx.cpu()], batch_size=7)
    expected = reference(net, dataset)
    for name, value in expected.items():
        assert metrics[name] == pytest.approx(value, rel=1e-5), name
    assert metrics['perplexity'] == pytest.approx(math.exp(metrics['mlm_loss']))
    assert metrics['predictions'] == dataset.all_mlm_weights.sum()
    assert metrics['examples'] == 60
    # An untrained model is near chance: perplexity near the vocabulary size, not 1
    assert len(dataset.vocab) / 4 < metrics['perplexity'] < len(dataset.vocab) * 4


def test_metrics_do_not_depend_on_batching_devices_or_repetition(net, dataset):
    one = evaluate_pretraining(net, dataset, [mx.cpu()], batch_size=60)
    net.collect_params().reset_ctx([mx.cpu(0), mx.cpu(1)])
    sharded = evaluate_pretraining(net, dataset, [mx.cpu(0), mx.cpu(1)], batch_size=16)
    for name in one:
        assert sharded[name] == pytest.approx(one[name], rel=1e-5), name
    assert evaluate_pretraining(net, dataset, [mx.cpu()], batch_size=60) == one


def test_an_empty_validation_set_is_refused(net, dataset):
    empty = dataset.from_arrays(tuple(a[:0] for a in dataset.arrays), dataset.vocab)
    with pytest.raises(ValueError, match='the validation set is empty'):
        evaluate_pretraining(net, empty, [mx.cpu()])
