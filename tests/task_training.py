"""A tiny BERT under a task's head, and a few training steps through the task's objective,
shared by the question-answering and multiple-choice tests."""
import mxnet as mx
from mxnet import autograd, gluon, init

import gluonbert


def tiny_task_head(task, vocab, max_len, *, hidden=32, blocks=2, initializer=None, seed=0):
    """``task.head`` over a fresh ``hidden``-wide BERT of ``blocks`` blocks, initialized."""
    mx.random.seed(seed)
    bert = gluonbert.BERTModel(len(vocab), hidden, 2 * hidden, 2, blocks, 0.0, max_len=max_len)
    bert.initialize(initializer or init.Xavier())
    head = task.head(bert, None)
    head.output.initialize(initializer or init.Xavier())
    return head


def objective_losses(task, head, features, steps, lr=1e-3):
    """Mean loss per step of ``steps`` Adam updates on all of ``features`` as one batch,
    through ``task.objective``."""
    objective = task.objective(head)
    trainer = gluon.Trainer(head.collect_params(), 'adam', {'learning_rate': lr})
    batch = [mx.nd.array(a) for a in features.arrays]
    losses = []
    for _ in range(steps):
        with autograd.record():
            loss, (loss_sum, count) = objective(batch, objective.totals(features.arrays))
        loss.backward()
        trainer.step(len(features))
        losses.append(loss_sum.asscalar() / count.asscalar())
    return losses
