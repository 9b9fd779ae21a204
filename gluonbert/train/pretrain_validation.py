"""Validation of a pretraining run: MLM loss, perplexity, MLM accuracy and NSP accuracy.

The held-out examples carry their masks (fixed when they were built, with their own seed),
so every evaluation scores the same positions and two checkpoints compare fairly; masking on
the fly at evaluation time, or not at all, made HF's perplexity meaningless (HF #1633). The
sums stay on the devices and reach the host once, at the end.
"""
import math

import mxnet as mx
import numpy as np
from mxnet import autograd

from .sharding import shard_batch


def evaluate_pretraining(net, dataset, devices, batch_size=256):
    """Metrics of ``net`` (a ``BERTModel``) on ``dataset`` (seven arrays per item, as
    ``WikiTextDataset`` or ``ShardedDataset``; ``dataset[indices]`` gives a batch).

    Returns ``mlm_loss`` (mean cross-entropy over predicted positions), ``perplexity``
    (its exponential), ``mlm_accuracy``, ``nsp_loss``, ``nsp_accuracy``, and the counts of
    ``examples`` and ``predictions``. Dropout is off (no autograd recording).
    """
    devices = list(devices)
    if not len(dataset):
        raise ValueError('the validation set is empty; expected held-out examples (e.g. a '
                         'valid_fraction above 0)')
    sums = [mx.nd.zeros(6, ctx=device) for device in devices]
    with autograd.predict_mode():
        for begin in range(0, len(dataset), batch_size):
            batch = _batch(dataset, begin, min(begin + batch_size, len(dataset)))
            for shard, total in zip(shard_batch(batch, devices, allow_idle=True), sums):
                total += _shard_sums(net, *shard)
    (mlm_loss, predictions, mlm_correct, nsp_loss, nsp_correct, examples) = sum(
        total.asnumpy().astype(np.float64) for total in sums)
    mlm_loss /= predictions
    return {'mlm_loss': mlm_loss, 'perplexity': math.exp(min(mlm_loss, 700.0)),
            'mlm_accuracy': mlm_correct / predictions, 'nsp_loss': nsp_loss / examples,
            'nsp_accuracy': nsp_correct / examples, 'examples': int(examples),
            'predictions': int(predictions)}


def _batch(dataset, begin, end):
    items = dataset[np.arange(begin, end)]
    return tuple(np.asarray(array) for array in items)


def _shard_sums(net, tokens, segments, valid_lens, pred_positions, mlm_weights, mlm_labels,
                nsp_labels):
    """Summed MLM loss, predictions, correct predictions, NSP loss, correct NSP, examples."""
    _, mlm_logits, nsp_logits = net(tokens, segments, valid_lens.reshape(-1), pred_positions)
    mlm_labels, nsp_labels = mlm_labels.astype('float32'), nsp_labels.astype('float32')
    mlm_log_probs = mx.nd.log_softmax(mlm_logits, axis=-1)
    mlm_ce = -mx.nd.pick(mlm_log_probs, mlm_labels, axis=-1) * mlm_weights
    mlm_hit = (mx.nd.argmax(mlm_logits, axis=-1) == mlm_labels) * mlm_weights
    nsp_log_probs = mx.nd.log_softmax(nsp_logits, axis=-1)
    nsp_ce = -mx.nd.pick(nsp_log_probs, nsp_labels, axis=-1)
    nsp_hit = mx.nd.argmax(nsp_logits, axis=-1) == nsp_labels
    examples = mx.nd.full((1,), tokens.shape[0], ctx=tokens.context)
    return mx.nd.concat(mlm_ce.sum(), mlm_weights.sum(), mlm_hit.sum(), nsp_ce.sum(),
                        nsp_hit.sum(), examples, dim=0)
