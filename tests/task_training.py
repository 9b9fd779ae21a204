"""A tiny BERT under a task's head, and short fine-tuning runs on the training engine with
the task's objective, shared by the question-answering and multiple-choice tests."""
import mxnet as mx
from mxnet import gluon, init

import gluonbert
from gluonbert.train.batches import EpochBatches
from gluonbert.train.callbacks import Evaluation
from gluonbert.train.engine import Engine


def tiny_task_head(task, vocab, max_len, *, hidden=32, blocks=2, initializer=None, seed=0):
    """``task.head`` over a fresh ``hidden``-wide BERT of ``blocks`` blocks, initialized."""
    mx.random.seed(seed)
    bert = gluonbert.BERTModel(len(vocab), hidden, 2 * hidden, 2, blocks, 0.0, max_len=max_len)
    bert.initialize(initializer or init.Xavier())
    head = task.head(bert, None)
    head.output.initialize(initializer or init.Xavier())
    return head


def fine_tune(task, head, features, updates, *, lr=1e-3, batch_size=None, examples=None):
    """``(losses, evaluations)``: the objective's loss logged after each of ``updates`` Adam
    updates on shuffled batches of ``features`` (default: all in one batch), and, with
    ``examples`` (those ``features`` encode), the task's metrics on them after every 10."""
    engine = Engine(task.objective(head),
                    gluon.Trainer(head.collect_params(), 'adam', {'learning_rate': lr}),
                    [mx.cpu()])
    callbacks = []
    if examples is not None:
        callbacks.append(Evaluation(
            lambda: task.evaluate(head, features, examples, [mx.cpu()]), every=10,
            metric=task.main_metric, mode='max' if task.greater_is_better else 'min'))
    state = engine.fit(EpochBatches(features.arrays, batch_size or len(features), seed=0),
                       num_updates=updates, log_every=1, callbacks=callbacks)
    return [entry['loss'] for entry in state.logs], (callbacks[0].history if callbacks else [])
