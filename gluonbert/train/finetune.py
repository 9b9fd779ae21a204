"""Fine-tuning a classifier, mirroring d2l's ``train_ch13`` as used by the NLI chapter.

d2l's loop, on balanced shards (see ``sharding.py``), with a hybridized static graph, and with
evaluation that also returns the predictions for a confusion matrix.
"""
import time

import numpy as np
from .sharding import shard_batch
from .strategies import Plain


def _flat(batch):
    """``((tokens, segments, valid_lens), labels)`` -> ``[tokens, segments, valid_lens, labels]``."""
    features, labels = batch
    return [*features, labels]


def predict(net, data_iter, devices):
    """Labels and predicted class ids (numpy) of every example of ``data_iter``."""
    labels, predictions = [], []
    for batch in data_iter:
        for *features, y in shard_batch(_flat(batch), devices):
            predictions.append(net(tuple(features)).argmax(axis=1).asnumpy())
            labels.append(y.asnumpy())
    return np.concatenate(labels).astype(np.int64), np.concatenate(predictions).astype(np.int64)


def evaluate_accuracy(net, data_iter, devices):
    labels, predictions = predict(net, data_iter, devices)
    return float((labels == predictions).mean())


def train_classifier(net, train_iter, test_iter, loss, trainer, num_epochs, devices, *,
                     strategy=None, hybridize=True, on_epoch=None, quiet=False):
    """Train ``net`` (called as ``net((tokens, segments, valid_lens))``) for ``num_epochs``.

    Each update uses the mean loss over the batch's samples, whatever the sharding (d2l's
    ``trainer.step(batch_size)`` on summed losses). ``strategy`` (see ``strategies.py``:
    ``RDrop``, ``FGM``) changes how a batch's gradient is computed; default plain. ``on_epoch(epoch, train_loss, train_acc,
    test_acc)`` is called after each epoch. Returns a dict with the final metrics, examples
    per second and the per-epoch history.
    """
    if num_epochs < 1:
        raise ValueError(f'num_epochs={num_epochs}; expected at least 1')
    devices = list(devices)
    strategy = strategy or Plain()
    if hybridize:
        net.hybridize(static_alloc=True, static_shape=True)
    history, examples, elapsed = [], 0, 0.0
    for epoch in range(1, num_epochs + 1):
        loss_sum, correct, count = 0.0, 0, 0
        start = time.perf_counter()
        for batch in train_iter:
            shards = shard_batch(_flat(batch), devices)
            losses, outputs = strategy.backward(net, shards, loss)
            batch_size = sum(shard[-1].shape[0] for shard in shards)
            trainer.step(batch_size)
            loss_sum += sum(float(l.sum().asnumpy()) for l in losses)
            correct += sum(int((out.argmax(axis=1).asnumpy().astype(np.int64)
                                == shard[-1].asnumpy().astype(np.int64)).sum())
                           for out, shard in zip(outputs, shards))
            count += batch_size
        elapsed += time.perf_counter() - start
        examples += count
        test_acc = evaluate_accuracy(net, test_iter, devices)
        history.append((epoch, loss_sum / count, correct / count, test_acc))
        if on_epoch is not None:
            on_epoch(*history[-1])
    _, train_loss, train_acc, test_acc = history[-1]
    result = dict(train_loss=train_loss, train_acc=train_acc, test_acc=test_acc,
                  examples_per_sec=examples / elapsed, history=history)
    if not quiet:
        print(f'loss {train_loss:.3f}, train acc {train_acc:.3f}, test acc {test_acc:.3f}')
        print(f'{result["examples_per_sec"]:.1f} examples/sec on {devices}')
    return result
