"""BERT pretraining on MLM + NSP, mirroring the d2l chapter's ``train_bert``.

The chapter's loop on the training engine (``engine.py``), made fast and correct on several
devices: the model and both losses run as one static graph per device
(``PretrainingObjective``), and the gradient is that of the whole batch whatever the sharding
(``PretrainingLoss``; d2l sums per-shard means).
"""
import numpy as np
from mxnet import gluon

from .. import compat, ops
from ..model.legacy import LegacyHybridBlock
from ..model.packing import batch_packing, encoder_inputs
from .callbacks import Callback
from .engine import Engine, Objective


def _host_sum(array):
    return float((array.asnumpy() if hasattr(array, 'asnumpy') else np.asarray(array)).sum())


class PretrainingObjective(LegacyHybridBlock):
    """BERT plus its two losses, as one hybridizable block.

    ``forward(tokens, segments, valid_lens, pred_positions, mlm_weights, mlm_labels,
    nsp_labels)`` (a batch of ``load_data_wiki``) returns the sums ``(mlm_loss_sum,
    mlm_weight_sum, nsp_loss_sum)``: sums, not means, so that shards add up exactly. The
    encoder computes on the valid tokens only where it can (``model.packing``).
    """

    def __init__(self, net, loss, vocab_size, **kwargs):
        super().__init__(**kwargs)
        self.vocab_size = vocab_size
        with self.name_scope():
            self.net = net
            self.loss = loss

    def _check_inputs(self, tokens, segments, valid_lens, pred_positions, *labels):
        self.net._check_inputs(tokens, segments, valid_lens.reshape(-1), pred_positions)

    def _graph_inputs(self, tokens, segments, valid_lens, *rest):
        return (tokens, segments, valid_lens, *rest) + batch_packing(
            self, self.net.encoder, valid_lens.reshape(-1), tokens.shape[-1])

    def hybrid_forward(self, F, tokens, segments, valid_lens, pred_positions, mlm_weights,
                       mlm_labels, nsp_labels, packed=None, rows=None):
        _, mlm_Y_hat, nsp_Y_hat = self.net(tokens, segments, F.reshape(valid_lens, shape=(-1,)),
                                           pred_positions, *encoder_inputs(packed, rows))
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
        # The logits as AMP leaves them, float32 or bfloat16: the kernel widens them
        loss = F.gb_softmax_ce(logits, F.cast(labels, 'float32'))[0]
        return loss if weights is None else loss * weights

    def _fused_loss_applies(self):
        loss = self.loss
        return (type(loss) is gluon.loss.SoftmaxCrossEntropyLoss
                and compat.softmax_ce_options(loss) == (-1, True, False, None)
                and ops.usable_for(next(iter(self.net.collect_params().values())),
                                   'gb_softmax_ce'))


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


class PretrainingLoss(Objective):
    """The engine's pretraining objective: d2l's loss of the whole batch (its mean MLM loss
    over the predicted positions plus its mean NSP loss), as each shard's share.

    ``objective`` is a ``PretrainingObjective``. A shard's loss is its summed MLM loss times
    ``pairs / positions`` of the global batch plus its summed NSP loss, so that the trainer's
    division by the batch's pairs gives d2l's two means. Logged: ``mlm_loss`` and
    ``nsp_loss``, means over the logged steps' positions and pairs.
    """
    stat_names = ('mlm_sum', 'mlm_weights', 'nsp_sum', 'pairs')

    def __init__(self, objective):
        self.objective = objective

    def totals(self, batch):
        return {'pairs': batch[0].shape[0], 'positions': _host_sum(batch[4])}

    def __call__(self, shard, totals):
        mlm_sum, weight_sum, nsp_sum = self.objective(*shard)
        # + 1e-8 as d2l, for a batch without predictions
        loss = mlm_sum * (totals['pairs'] / (totals['positions'] + 1e-8)) + nsp_sum
        return loss, (mlm_sum, weight_sum, nsp_sum, shard[0].shape[0])

    def summarize(self, sums):
        return {'mlm_loss': sums['mlm_sum'] / (sums['mlm_weights'] + 1e-8),
                'nsp_loss': sums['nsp_sum'] / max(sums['pairs'], 1)}


def train_bert(train_iter, net, loss, vocab_size, devices, num_steps, *, trainer=None,
               hybridize=True, on_step=None, quiet=False):
    """Pretrain ``net`` for ``num_steps`` updates, as d2l's ``train_bert``.

    The objective is the batch's mean MLM loss over predicted positions plus its mean NSP
    loss, exactly as on one device whatever the number of ``devices``. ``trainer`` (a
    ``gluon.Trainer`` or a ``BERTTrainer``) defaults to d2l's Adam with learning rate 0.01.
    ``on_step(step, mlm_loss, nsp_loss)`` is called after each step with that step's losses
    (read back one step late). Throughput is measured on the wall clock, data loading and the
    first step's graph construction included. Returns a dict of the mean losses, the number
    of sentence pairs per second and the per-step history.
    """
    if not (isinstance(num_steps, int) and num_steps >= 1):
        raise ValueError(f'num_steps={num_steps}; expected a positive number of steps')
    if trainer is None:
        trainer = gluon.Trainer(net.collect_params(), 'adam', {'learning_rate': 0.01})
    objective = PretrainingObjective(net, loss, vocab_size)
    if hybridize:
        objective.hybridize(static_alloc=True, static_shape=True)
    callbacks = [] if on_step is None else [_OnStep(on_step)]
    state = Engine(PretrainingLoss(objective), trainer, devices).fit(
        train_iter, num_updates=num_steps, log_every=1, callbacks=callbacks)
    history = [(log['update'], log['mlm_loss'], log['nsp_loss']) for log in state.logs]
    window = history[-max(1, len(history) // 10):]  # report the last tenth, as losses move
    result = {'mlm_loss': sum(h[1] for h in history) / len(history),
              'nsp_loss': sum(h[2] for h in history) / len(history),
              'final_mlm_loss': sum(h[1] for h in window) / len(window),
              'final_nsp_loss': sum(h[2] for h in window) / len(window),
              'pairs_per_sec': state.samples / state.elapsed, 'history': history}
    if not quiet:
        print(f'MLM loss {result["mlm_loss"]:.3f}, NSP loss {result["nsp_loss"]:.3f}')
        print(f'{result["pairs_per_sec"]:.1f} sentence pairs/sec on {list(devices)}')
    return result


class _OnStep(Callback):
    """``train_bert``'s ``on_step(step, mlm_loss, nsp_loss)`` as an engine callback."""

    def __init__(self, on_step):
        self.on_step = on_step

    def on_log(self, engine, state, metrics):
        self.on_step(metrics['update'], metrics['mlm_loss'], metrics['nsp_loss'])
