"""The training engine: the one step and the one loop that every job drives.

A step, whatever the job (pretraining, fine-tuning, one device, several, several workers)::

    global batch -> this worker's slice (kv.rank) -> balanced shards on its contexts
      -> objective(shard): the shard's summed loss and statistics
      -> trainer.backward (loss scale) -> idle contexts zeroed -> trainer.step(global batch)

The trainer divides the summed gradient by the global batch's sample count, so any number of
contexts and workers, uneven shards and idle devices included, gives the update of one
device on the whole batch (d2l sums per-device means instead). The trainer is a
``BERTTrainer`` (accumulation, clipping, schedule, stale policy, non-finite guard,
checkpoints) or a plain ``gluon.Trainer``, as d2l's loops take.

Across workers the global batch comes one of two ways. Usually every worker draws the same
global batch (``EpochBatches``: a seeded order) and keeps its slice, so each knows the
batch's totals (its sample count, its masked positions) without talking to the others. A
corpus too large for every worker to read is split instead: each worker reads only its own
shards and draws its own share of every global batch (``batches.num_workers`` > 1, see
``corpus_pretraining.ShardBatches``); the step then trains on the whole share, and the
totals are summed over the workers through the KVStore (``WorkerSums``), one small
push and pull per step, so the update is still that of one process on the union of the
shares. With a spike guard, the loss it judges is summed over the workers the same way, so
that every worker skips or rolls back the same steps.

The loop (``fit``) runs epochs of an ``EpochBatches`` (resumable at any batch) or of any
iterable (d2l's ``train_iter``), counts updates, and calls the callbacks (``callbacks.py``:
progress bar, evaluation, metrics log, checkpoints). Statistics add up on the devices and
reach the host only when logged, one log interval late, so Python never waits for the step
it has just queued.
"""
import time
import warnings
from dataclasses import dataclass, field

import mxnet as mx
import numpy as np
from mxnet import autograd

from .. import compat
from ..devices import check_contexts
from ..distributed.kvstore import WorkerSums
from .sharding import shard_batch, worker_slice
from .trainer import BERTTrainer, StepOutcome


class IdleDevicesWarning(UserWarning):
    """A batch had fewer samples than contexts (or workers): some got no data this step."""


class Objective:
    """What a job trains: the loss of one shard and the statistics it reports.

    ``totals(batch)``: host values of the whole global batch that every shard's loss needs
    (e.g. its number of masked positions), each a sum over the batch's samples, so that the
    totals of the workers' shares add up to the global batch's; ``__call__(shard, totals)``
    runs under ``autograd.record`` and returns ``(loss, stats)``: ``loss`` an array whose sum
    is the shard's loss summed over its samples (the trainer divides by the global batch's
    samples), ``stats`` one scalar per ``stat_names`` (arrays or numbers), summed over shards
    and steps; ``summarize(sums)`` turns those sums into the metrics to log.
    """
    stat_names = ()

    def totals(self, batch):
        return {}

    def __call__(self, shard, totals):
        raise NotImplementedError

    def summarize(self, sums):
        return dict(sums)


class Plain:
    """Ordinary training: one forward and one backward pass per shard."""

    def backward(self, compute, shards, trainer):
        with autograd.record():
            results = [compute(shard) for shard in shards]
        trainer.backward([loss for loss, _ in results])
        return results


class GluonTrainer:
    """A plain ``gluon.Trainer`` behind ``BERTTrainer``'s ``backward``/``step`` interface, for
    the d2l loops that take one (``train_bert``, ``train_classifier``)."""

    def __init__(self, trainer):
        self.trainer = trainer
        self.kvstore = compat.trainer_kvstore(trainer)
        # On the servers the gradient's scale is fixed at the first step: there the loss is
        # divided by the batch instead (see Engine.step)
        self.divides_by_batch = not compat.updates_on_servers(trainer)
        self.num_updates = 0

    def backward(self, losses):
        autograd.backward(losses)

    def step(self, batch_size, loss=None):
        if self.num_updates == 0:
            compat.initialise_store(self.trainer)
        self.trainer.step(batch_size if self.divides_by_batch else 1)
        self.num_updates += 1
        return StepOutcome('applied', lr=self.trainer.learning_rate)


def trainer_parameters(trainer):
    """The parameters a ``BERTTrainer`` (or a ``GluonTrainer``) updates."""
    trainable = getattr(trainer, 'trainable', None)
    return list(trainable.values()) if trainable is not None else \
        compat.trainer_parameters(trainer.trainer)


@dataclass
class FitState:
    """Where a ``fit`` is: the epoch and the next batch to read in it, updates applied,
    samples seen and the logged metrics so far."""
    epoch: int = 0
    batch: int = 0
    updates: int = 0
    samples: int = 0
    elapsed: float = 0.0
    logs: list = field(default_factory=list)
    stop_reason: str = None  # set by a callback (early stopping) to end the fit

    def position(self, callbacks=()):
        """The JSON data position a checkpoint stores: where to continue, and the state of
        every callback that has one."""
        return {'epoch': self.epoch, 'batch': self.batch,
                'callbacks': {_key(cb): cb.state_dict() for cb in callbacks
                              if hasattr(cb, 'state_dict')}}


def _key(callback):
    """The name of a callback's state in a checkpoint."""
    return getattr(callback, 'state_key', type(callback).__name__)


def _as_device_array(array):
    """NDArrays (and ``mx.np`` arrays) as they are; NumPy arrays as NDArrays of the same kind
    of dtype (64-bit narrowed to 32: MXNet's operators take 32-bit inputs)."""
    if isinstance(array, mx.nd.NDArray):
        return array
    array = np.asarray(array)
    dtype = {np.dtype('float64'): 'float32', np.dtype('int64'): 'int32'}.get(array.dtype,
                                                                            array.dtype)
    return mx.nd.array(array, dtype=dtype)


def _worker(store):
    """``(rank, num_workers, kvstore type)`` of a trainer's KVStore (a name or an object)."""
    if isinstance(store, mx.kv.KVStore):
        return store.rank, store.num_workers, store.type
    if isinstance(store, str) and store.startswith('dist'):
        raise ValueError(f'kvstore={store!r} given by name; create it with '
                         f'gluonbert.distributed.create_kvstore and pass the store, so that '
                         f'its settings are checked and every worker knows its rank')
    return 0, 1, store


class Engine:
    """Steps and loops for ``objective`` with ``trainer`` on ``devices``.

    ``trainer``: a ``BERTTrainer`` (or a ``gluon.Trainer``) over parameters initialised on
    ``devices``; its KVStore decides the worker's rank. ``strategy``: how a batch's
    gradient is computed (``Plain``, or ``strategies.FGM``).
    """

    def __init__(self, objective, trainer, devices, *, strategy=None):
        self.objective = objective
        self.trainer = trainer if hasattr(trainer, 'backward') else GluonTrainer(trainer)
        self.devices = check_contexts(devices)
        self._check_placement()
        self.strategy = strategy or Plain()
        self.rank, self.num_workers, self.kvstore_type = _worker(self.trainer.kvstore)
        self._sums, self._host_sums, self._pending = {}, {}, None
        self._logged_until = 0
        self._warned_idle = set()
        self._worker_sums = None
        self.callbacks = []
        self.batch_samples = 0  # the samples of the last step's global batch

    def _check_placement(self):
        expected = set(self.devices)
        for param in trainer_parameters(self.trainer):
            placed = param.list_ctx()
            if set(placed) != expected or len(placed) != len(expected):
                raise ValueError(f'parameter {param.name!r} is on {placed}, the contexts are '
                                 f'{self.devices}; initialise the model with ctx=devices or '
                                 f'call net.collect_params().reset_ctx(devices)')

    @property
    def is_chief(self):
        """Whether this worker logs and writes checkpoints (rank 0)."""
        return self.rank == 0

    # ---- the step --------------------------------------------------------------------------

    def step(self, batch, *, worker_share=False):
        """One micro-batch of the global ``batch`` (arrays, samples on axis 0, the same on
        every worker), or with ``worker_share`` of this worker's own share of it (every
        worker calls ``step`` with its share). Returns the trainer's ``StepOutcome``."""
        if worker_share:
            part = tuple(batch) if batch[0].shape[0] else None
            totals, batch_size = self._global_totals(batch)
        else:
            batch_size = batch[0].shape[0]
            totals = self.objective.totals(batch)
            part = worker_slice(batch, self.rank, self.num_workers)
        self.batch_samples = batch_size
        shards = [] if part is None else shard_batch(
            [_as_device_array(a) for a in part], self.devices, allow_idle=True)
        loss, results = None, []
        if shards:
            results = self.strategy.backward(lambda shard: self._loss(shard, totals, batch_size),
                                             shards, self.trainer)
            self._add_stats(shards, results)
        if getattr(self.trainer, 'spike_guard', None) is not None:
            loss = self._guarded_loss([shard_loss for shard_loss, _ in results])
        idle = tuple(self.devices[len(shards):])
        if idle:
            self._warn_idle(idle, batch_size)
            if part is None and self.kvstore_type == 'dist_async':
                return StepOutcome('skipped')  # the servers update on each push: push nothing
            self._zero_gradients(idle)
        return self.trainer.step(batch_size, loss=loss)

    def _summed_over_workers(self, values):
        if self._worker_sums is None:
            if not getattr(self.trainer, 'divides_by_batch', True):
                raise ValueError(f'kvstore {self.kvstore_type!r} updates on the servers; '
                                 f'summing values over the workers needs the optimizer on '
                                 f'the workers (update_on_kvstore=False)')
            self._worker_sums = WorkerSums(self.trainer.kvstore)
        return self._worker_sums(values)

    def _global_totals(self, share):
        """``(totals, samples)`` of the global batch whose share this worker holds."""
        local = self.objective.totals(share)
        names = sorted(local)
        if self.num_workers == 1:
            return local, share[0].shape[0]
        sums = self._summed_over_workers([share[0].shape[0]] + [local[n] for n in names])
        return dict(zip(names, sums[1:].tolist())), int(round(sums[0]))

    def _guarded_loss(self, shard_losses):
        """The loss the spike guard judges: this worker's shard losses, or on several
        workers their sum over the workers (a number), so that all of them decide alike."""
        if self.num_workers == 1:
            return shard_losses or None
        local = sum(float(loss.sum().asscalar()) for loss in shard_losses)
        return float(self._summed_over_workers([local])[0])

    def _loss(self, shard, totals, batch_size):
        loss, stats = self.objective(shard, totals)
        if not getattr(self.trainer, 'divides_by_batch', True):
            loss = loss / batch_size
        return loss, stats

    def _add_stats(self, shards, results):
        for shard, (_, stats) in zip(shards, results):
            if len(stats) != len(self.objective.stat_names):
                raise ValueError(f'{type(self.objective).__name__} returned {len(stats)} '
                                 f'statistics for stat_names {self.objective.stat_names}')
            for name, value in zip(self.objective.stat_names, stats):
                if isinstance(value, mx.nd.NDArray):
                    key = (name, shard[0].context)
                    self._sums[key] = value.sum() if key not in self._sums \
                        else self._sums[key] + value.sum()
                else:
                    self._host_sums[name] = self._host_sums.get(name, 0.0) + float(value)

    def _warn_idle(self, idle, batch_size):
        key = (batch_size, idle)
        if key in self._warned_idle:
            return
        self._warned_idle.add(key)
        where = f' (worker {self.rank} of {self.num_workers})' if self.num_workers > 1 else ''
        warnings.warn(f'a batch of {batch_size} samples left {", ".join(map(str, idle))}'
                      f'{where} without data this step; their gradients count as zero',
                      IdleDevicesWarning, stacklevel=3)

    def _zero_gradients(self, contexts):
        """Zero the gradients of ``contexts`` and mark them fresh, so that the KVStore adds
        nothing for them (the mark is what ``backward`` would have set)."""
        for param in trainer_parameters(self.trainer):
            if param.grad_req == 'null':
                continue
            if compat.is_deferred(param):
                raise ValueError(f'parameter {param.name!r} has no shape yet (deferred '
                                 f'initialisation) and {contexts} got no data in this first '
                                 f'step; run one forward pass on every context before '
                                 f'training, or start with a batch of at least '
                                 f'{len(self.devices) * self.num_workers} samples')
            for context in contexts:
                if param.grad_req == 'write':
                    param.grad(context)[:] = 0
                compat.set_fresh_grad(param.data(context), True)

    # ---- statistics --------------------------------------------------------------------------

    def _snapshot(self):
        """Hand the running sums over to a pending log entry; start new ones."""
        taken, self._sums = self._sums, {}
        host, self._host_sums = self._host_sums, {}
        return taken, host

    def _summarize(self, snapshot):
        device_sums, host_sums = snapshot
        sums = dict.fromkeys(self.objective.stat_names, 0.0)
        sums.update(host_sums)
        for (name, _), value in device_sums.items():
            sums[name] += float(value.asnumpy())
        return self.objective.summarize(sums)

    # ---- the loop ------------------------------------------------------------------------------

    def fit(self, batches, *, num_updates=None, epochs=None, callbacks=(), log_every=None,
            resume=False):
        """Train on ``batches`` until ``num_updates`` updates or ``epochs`` epochs (whichever
        comes first), or a callback stops it; returns the ``FitState``.

        ``log_every``: updates between logged metrics (default: once per epoch); every log
        entry (the objective's metrics over the last ``updates`` updates, ``update``,
        ``epoch``, ``lr``) goes to the callbacks' ``on_log`` and to ``state.logs``; the last,
        shorter interval is logged at the end. ``resume``: continue from the trainer's newest
        checkpoint (needs ``batches`` to be an ``EpochBatches`` and a ``BERTTrainer`` with a
        ``checkpoint_dir``); no checkpoint there is an error (``CheckpointError``).
        """
        if num_updates is None and epochs is None:
            raise ValueError('fit needs num_updates= or epochs=')
        for name, value in (('num_updates', num_updates), ('epochs', epochs),
                            ('log_every', log_every)):
            if value is not None and not (isinstance(value, int) and value >= 1):
                raise ValueError(f'{name}={value!r}; expected an integer >= 1 or None')
        worker_share = getattr(batches, 'num_workers', 1) > 1
        if worker_share and batches.num_workers != self.num_workers:
            raise ValueError(f'the batches are shares of {batches.num_workers} workers, the '
                             f'KVStore has {self.num_workers}')
        callbacks = self.callbacks = list(callbacks)
        state = FitState(updates=self.trainer.num_updates)
        if resume:
            self._resume(batches, state, callbacks)
        self._logged_until = state.updates
        for cb in callbacks:
            cb.on_start(self, state)
        try:
            self._loop(batches, state, callbacks, num_updates, epochs, log_every, worker_share)
        except BaseException:
            for cb in callbacks:
                cb.on_abort(self, state)
            raise
        for cb in callbacks:
            cb.on_end(self, state)
        return state

    def _loop(self, batches, state, callbacks, num_updates, epochs, log_every, worker_share):
        start = time.perf_counter()

        def done():
            return ((num_updates is not None and state.updates >= num_updates)
                    or (epochs is not None and state.epoch >= epochs)
                    or state.stop_reason is not None)

        while not done():
            finished_epoch = True
            for batch in self._epoch(batches, state.epoch, state.batch):
                outcome = self.step(batch, worker_share=worker_share)
                state.batch += 1
                state.samples += self.batch_samples
                if outcome.reason is not None:  # skipped or rolled back by a guard
                    for cb in callbacks:
                        cb.on_guard(self, state, outcome)
                if outcome.action == 'rolled back':
                    self._restore_position(outcome.data_position, state, callbacks)
                    self._skip(batches, state, outcome.skip_batches or 0)
                    finished_epoch = False
                    break
                if outcome.action != 'applied':
                    continue
                state.updates += 1
                self._resolve_pending(state, callbacks)
                if log_every and state.updates % log_every == 0:
                    self._queue_log(state, outcome.lr)
                for cb in callbacks:
                    cb.on_update(self, state, outcome)
                if done():
                    finished_epoch = state.batch >= self._epoch_length(batches)
                    break
            if finished_epoch:
                self._resolve_pending(state, callbacks)
                if not log_every and (self._sums or self._host_sums):
                    self._queue_log(state)
                    self._resolve_pending(state, callbacks)
                state.epoch, state.batch = state.epoch + 1, 0
                for cb in callbacks:
                    cb.on_epoch_end(self, state)
        self._resolve_pending(state, callbacks)
        if log_every and (self._sums or self._host_sums):  # the last, shorter interval
            self._queue_log(state)
            self._resolve_pending(state, callbacks)
        mx.nd.waitall()
        state.elapsed = time.perf_counter() - start

    def _queue_log(self, state, lr=None):
        """Log the statistics since the last log at the next update (one interval late)."""
        interval = state.updates - self._logged_until
        self._pending = (state.updates, interval, state.epoch, lr, self._snapshot())
        self._logged_until = state.updates

    def _skip(self, batches, state, count):
        """Move the data position ``count`` batches on (the window that led to loss spikes),
        into the next epochs if need be."""
        state.batch += count
        length = self._epoch_length(batches)
        while state.batch >= length:
            state.batch -= length
            state.epoch += 1

    def _resolve_pending(self, state, callbacks):
        if self._pending is None:
            return
        updates, interval, epoch, lr, snapshot = self._pending
        self._pending = None
        metrics = dict(self._summarize(snapshot), update=updates, updates=interval, epoch=epoch)
        if lr is not None:
            metrics['lr'] = lr
        state.logs.append(metrics)
        for cb in callbacks:
            cb.on_log(self, state, metrics)

    def _epoch(self, batches, epoch, start):
        if hasattr(batches, 'epoch'):
            return batches.epoch(epoch, start)
        if start:
            raise ValueError('resuming in the middle of an epoch needs an EpochBatches '
                             '(gluonbert.train.batches), which can start at any batch')
        return iter(batches)

    @staticmethod
    def _epoch_length(batches):
        try:
            return len(batches)
        except TypeError:
            return float('inf')

    def _resume(self, batches, state, callbacks):
        if not isinstance(self.trainer, BERTTrainer):
            raise ValueError('resume=True needs a BERTTrainer with checkpoint_dir=')
        self._restore_position(self.trainer.load(required=True), state, callbacks)

    def _restore_position(self, position, state, callbacks):
        state.epoch, state.batch = position.get('epoch', 0), position.get('batch', 0)
        state.updates = self.trainer.num_updates
        saved = position.get('callbacks', {})
        for cb in callbacks:
            if hasattr(cb, 'load_state_dict') and _key(cb) in saved:
                cb.load_state_dict(saved[_key(cb)])
        self._sums, self._host_sums, self._pending = {}, {}, None
        self._logged_until = state.updates
