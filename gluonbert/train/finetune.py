"""Fine-tuning a classifier, mirroring d2l's ``train_ch13`` as used by the NLI chapter.

d2l's loop on the training engine (``engine.py``): balanced shards, a hybridized static
graph, the loss and accuracy summed on the devices and read once per epoch, and evaluation
that also returns the predictions for a confusion matrix.
"""
import numpy as np

from .callbacks import Callback, Evaluation
from .engine import Engine, Objective
from .sharding import shard_batch


def _flat(batch):
    """``((tokens, segments, valid_lens), labels)`` -> ``[tokens, segments, valid_lens, labels]``;
    a flat batch stays as it is."""
    if len(batch) == 2 and isinstance(batch[0], (tuple, list)):
        features, labels = batch
        return [*features, labels]
    return list(batch)


class ClassificationLoss(Objective):
    """The engine's fine-tuning objective: ``net((tokens, segments, valid_lens))`` scored by
    ``loss`` (d2l's ``SoftmaxCrossEntropyLoss``) against the labels, the last array of the
    batch. Logged: ``loss`` (mean per example) and ``accuracy``."""
    stat_names = ('loss_sum', 'correct', 'count')

    def __init__(self, net, loss):
        self.net, self.loss = net, loss

    def __call__(self, shard, totals):
        *features, labels = shard
        outputs = self.net(tuple(features))
        return self.scored(self.loss(outputs, labels), outputs, labels)

    @staticmethod
    def scored(losses, outputs, labels):
        """``(loss, stats)`` of per-example ``losses`` and the ``outputs`` they came from."""
        correct = (outputs.argmax(axis=1).astype('float32') == labels.astype('float32')).sum()
        return losses, (losses.sum(), correct, labels.shape[0])

    def summarize(self, sums):
        count = max(sums['count'], 1)
        return {'loss': sums['loss_sum'] / count, 'accuracy': sums['correct'] / count}


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


class _FlatBatches:
    """d2l's ``((tokens, segments, valid_lens), labels)`` batches as flat ones; resumable
    sources (``EpochBatches``) pass through."""

    def __init__(self, batches):
        self.batches = batches

    def __iter__(self):
        return (_flat(batch) for batch in self.batches)

    def __len__(self):
        return len(self.batches)


def train_classifier(net, train_iter, test_iter, loss, trainer, num_epochs, devices, *,
                     strategy=None, objective=None, hybridize=True, on_epoch=None,
                     quiet=False):
    """Train ``net`` (called as ``net((tokens, segments, valid_lens))``) for ``num_epochs``.

    Each update uses the mean loss over the batch's samples, whatever the sharding (d2l's
    ``trainer.step(batch_size)`` on summed losses). ``trainer``: a ``gluon.Trainer`` or a
    ``BERTTrainer``. ``strategy`` (``strategies.FGM``) changes how a batch's gradient is
    computed, ``objective`` the loss (``strategies.RDrop``; default ``ClassificationLoss``).
    ``on_epoch(epoch, train_loss, train_acc, test_acc)`` is called after each epoch. Returns
    a dict with the final metrics, examples per second and the per-epoch history.
    """
    if not (isinstance(num_epochs, int) and num_epochs >= 1):
        raise ValueError(f'num_epochs={num_epochs}; expected at least 1')
    devices = list(devices)
    if hybridize:
        net.hybridize(static_alloc=True, static_shape=True)
    history = _History(on_epoch)
    evaluation = Evaluation(lambda: {'test_acc': evaluate_accuracy(net, test_iter, devices)})
    engine = Engine(objective or ClassificationLoss(net, loss), trainer, devices,
                    strategy=strategy)
    state = engine.fit(_FlatBatches(train_iter), epochs=num_epochs,
                       callbacks=[history, evaluation])
    _, train_loss, train_acc, test_acc = history.rows[-1]
    result = dict(train_loss=train_loss, train_acc=train_acc, test_acc=test_acc,
                  examples_per_sec=state.samples / state.elapsed, history=history.rows)
    if not quiet:
        print(f'loss {train_loss:.3f}, train acc {train_acc:.3f}, test acc {test_acc:.3f}')
        print(f'{result["examples_per_sec"]:.1f} examples/sec on {devices}')
    return result


class _History(Callback):
    """``(epoch, train_loss, train_acc, test_acc)`` rows, as ``train_classifier`` returns."""

    def __init__(self, on_epoch):
        self.on_epoch, self.rows, self._train = on_epoch, [], None

    def on_log(self, engine, state, metrics):
        self._train = metrics

    def on_evaluate(self, engine, state, metrics):
        row = (state.epoch, self._train['loss'], self._train['accuracy'], metrics['test_acc'])
        self.rows.append(row)
        if self.on_epoch is not None:
            self.on_epoch(*row)
