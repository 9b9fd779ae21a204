"""BERT pretraining on MLM + NSP, mirroring the d2l chapter's ``train_bert``.

The chapter's loop, made fast and correct on several devices: the model and both losses run
as one static graph per device, the gradient is that of the whole batch whatever the
sharding (d2l sums per-shard means), and the loop reads losses back one step late so that
Python never waits on the step it has just queued.
"""
import time

import mxnet as mx
from mxnet import autograd, gluon

from .. import compat, ops
from ..model.legacy import LegacyHybridBlock
from .sharding import shard_batch


def _host(array):
    return array.asnumpy() if hasattr(array, 'asnumpy') else array


def _scalar(array):
    return float(_host(array))


class PretrainingObjective(LegacyHybridBlock):
    """BERT plus its two losses, as one hybridizable block.

    ``forward(tokens, segments, valid_lens, pred_positions, mlm_weights, mlm_labels,
    nsp_labels)`` (a batch of ``load_data_wiki``) returns the sums ``(mlm_loss_sum,
    mlm_weight_sum, nsp_loss_sum)``: sums, not means, so that shards add up exactly.
    """

    def __init__(self, net, loss, vocab_size, **kwargs):
        super().__init__(**kwargs)
        self.vocab_size = vocab_size
        with self.name_scope():
            self.net = net
            self.loss = loss

    def _check_inputs(self, tokens, segments, valid_lens, pred_positions, *labels):
        self.net._check_inputs(tokens, segments, valid_lens.reshape(-1), pred_positions)

    def hybrid_forward(self, F, tokens, segments, valid_lens, pred_positions, mlm_weights,
                       mlm_labels, nsp_labels):
        _, mlm_Y_hat, nsp_Y_hat = self.net(tokens, segments, F.reshape(valid_lens, shape=(-1,)),
                                           pred_positions)
        mlm_l = self._loss(F, F.reshape(mlm_Y_hat, shape=(-1, self.vocab_size)),
                           F.reshape(mlm_labels, shape=(-1,)),
                           F.reshape(mlm_weights, shape=(-1,)))
        nsp_l = self._loss(F, nsp_Y_hat, nsp_labels)
        return F.sum(mlm_l), F.sum(mlm_weights), F.sum(nsp_l)

    def _loss(self, F, logits, labels, weights=None):
        """``self.loss`` per row; a plain ``SoftmaxCELoss`` runs as gluonbert's fused kernel
        (see ``gluonbert.ops``), whose backward is one pass over the logits."""
        if not self._fused_loss_applies():
            return self.loss(logits, labels, None if weights is None
                             else F.reshape(weights, shape=(-1, 1)))
        loss = F.gb_softmax_ce(logits, F.cast(labels, 'float32'))[0]
        return loss if weights is None else loss * weights

    def _fused_loss_applies(self):
        loss = self.loss
        return (type(loss) is gluon.loss.SoftmaxCrossEntropyLoss
                and compat.softmax_ce_options(loss) == (-1, True, False, None)
                and ops.usable_for(next(iter(self.net.collect_params().values()))))


def _get_batch_loss_bert(net, loss, vocab_size, tokens_X_shards, segments_X_shards,
                         valid_lens_x_shards, pred_positions_X_shards, mlm_weights_X_shards,
                         mlm_Y_shards, nsp_y_shards):
    """d2l's per-shard losses: lists of MLM means, NSP means and their sums, one per shard."""
    objective = PretrainingObjective(net, loss, vocab_size)
    mlm_ls, nsp_ls, ls = [], [], []
    for shard in zip(tokens_X_shards, segments_X_shards, valid_lens_x_shards,
                     pred_positions_X_shards, mlm_weights_X_shards, mlm_Y_shards, nsp_y_shards):
        mlm_sum, weight_sum, nsp_sum = objective(*shard)
        mlm_l = mlm_sum / (weight_sum + 1e-8)
        nsp_l = nsp_sum / shard[0].shape[0]
        mlm_ls.append(mlm_l)
        nsp_ls.append(nsp_l)
        ls.append(mlm_l + nsp_l)
    return mlm_ls, nsp_ls, ls


def train_bert(train_iter, net, loss, vocab_size, devices, num_steps, *, trainer=None,
               hybridize=True, on_step=None, quiet=False):
    """Pretrain ``net`` for ``num_steps`` updates, as d2l's ``train_bert``.

    The objective is the batch's mean MLM loss over predicted positions plus its mean NSP
    loss, exactly as on one device whatever the number of ``devices``. ``trainer`` defaults
    to d2l's Adam with learning rate 0.01. ``on_step(step, mlm_loss, nsp_loss)`` is called
    after each step with that step's losses. Throughput is measured on the wall clock, data
    loading and the first step's graph construction included. Returns a dict of the mean
    losses, the number of sentence pairs per second and the per-step history.
    """
    if num_steps < 1:
        raise ValueError(f'num_steps={num_steps}; expected a positive number of steps')
    devices = list(devices)
    if trainer is None:
        trainer = gluon.Trainer(net.collect_params(), 'adam', {'learning_rate': 0.01})
    objective = PretrainingObjective(net, loss, vocab_size)
    if hybridize:
        objective.hybridize(static_alloc=True, static_shape=True)
    history, pending = [], None
    samples, step = 0, 0
    start = time.perf_counter()

    def read_back(queued):
        step_id, mlm_sum, weight_sum, nsp_sum, batch_size = queued
        mlm_l = sum(map(_scalar, mlm_sum)) / (sum(map(_scalar, weight_sum)) + 1e-8)
        nsp_l = sum(map(_scalar, nsp_sum)) / batch_size
        history.append((step_id, mlm_l, nsp_l))
        if on_step is not None:
            on_step(step_id, mlm_l, nsp_l)

    while step < num_steps:
        for batch in train_iter:
            batch_size = batch[0].shape[0]
            shards = shard_batch(batch, devices)
            weight_total = float(_host(batch[4]).sum()) + 1e-8
            with autograd.record():
                outputs = [objective(*shard) for shard in shards]
                # Normalise by the whole batch, so any sharding gives one device's gradient
                losses = [mlm / weight_total + nsp / batch_size for mlm, _, nsp in outputs]
            autograd.backward(losses)
            trainer.step(1)
            step += 1
            if pending is not None:
                read_back(pending)
            pending = (step, *zip(*outputs), batch_size)
            samples += batch_size
            if step == num_steps:
                break
    read_back(pending)
    mx.nd.waitall()
    elapsed = time.perf_counter() - start  # wall clock, data loading included
    window = history[-max(1, len(history) // 10):]  # report the last tenth, as losses move
    result = {'mlm_loss': sum(h[1] for h in history) / len(history),
              'nsp_loss': sum(h[2] for h in history) / len(history),
              'final_mlm_loss': sum(h[1] for h in window) / len(window),
              'final_nsp_loss': sum(h[2] for h in window) / len(window),
              'pairs_per_sec': samples / elapsed, 'history': history}
    if not quiet:
        print(f'MLM loss {result["mlm_loss"]:.3f}, NSP loss {result["nsp_loss"]:.3f}')
        print(f'{result["pairs_per_sec"]:.1f} sentence pairs/sec on {devices}')
    return result
