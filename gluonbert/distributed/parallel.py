"""One data-parallel training step over any list of contexts and, with a ``dist`` KVStore,
over several workers.

The data flows: global batch -> this worker's slice (``batches.worker_slice``, by
``kv.rank``) -> balanced shards on its contexts (``train.sharding``) -> per-shard losses, each
normalised by the whole global batch -> backward -> the KVStore sums the gradients of every
context and every worker -> one update. Every loss is divided by the global batch's totals
and the sums are exact, so any number of contexts and workers gives the update of one
context on the whole batch, to float rounding (d2l sums per-device means instead).

Idle devices: a batch smaller than the number of contexts (or workers) leaves the last
contexts without data for that step. They run nothing, their gradients are set to zero (MXNet
would otherwise add their previous step's gradient again), a warning names them the first
time, and the step's report lists them. In ``dist_sync`` an idle worker still pushes its zero
gradients, since the servers wait for every worker; in ``dist_async`` it skips the step.
"""
import warnings
from dataclasses import dataclass

import mxnet as mx
import numpy as np
from mxnet import autograd, gluon

from .. import compat
from ..train.named_params import named_parameters
from ..train.sharding import shard_batch
from .batches import worker_slice
from .kvstore import (DEFAULT_CONNECT_TIMEOUT, check_contexts, check_kvstore_type,
                      create_kvstore, is_distributed, resolve_update_on_kvstore)


class IdleDevicesWarning(UserWarning):
    """A batch had fewer samples than contexts (or workers): some got no data this step."""


@dataclass(frozen=True)
class StepReport:
    """What one step did on this worker.

    ``terms``: for each shard, the tuple of loss terms (NDArrays) ``loss_fn`` returned, each
    already divided by the global batch; ``samples``: this worker's samples; ``batch_size``:
    the global batch's; ``idle``: this worker's contexts that got no data; ``applied``: False
    only for an idle ``dist_async`` worker, which skips the step.
    """
    terms: list
    samples: int
    batch_size: int
    idle: tuple
    applied: bool

    def local_sums(self):
        """This worker's share of each loss term, as floats (waits for the step)."""
        if not self.terms:
            return []
        return [sum(float(t.asnumpy().sum()) for t in column) for column in zip(*self.terms)]


def _host_sum(array):
    return float((array.asnumpy() if hasattr(array, 'asnumpy') else np.asarray(array)).sum())


def _as_nd(array):
    """NumPy arrays become NDArrays of the same dtype (``mx.nd.array`` would make float32)."""
    if isinstance(array, mx.nd.NDArray):
        return array
    array = np.asarray(array)
    return mx.nd.array(array, dtype=array.dtype)


class PretrainingLoss:
    """d2l's pretraining loss of one shard as two terms of the global batch's loss: the
    shard's summed MLM loss over the global batch's predicted positions, and its summed NSP
    loss over the global batch's sentence pairs. ``objective`` is a
    ``train.pretrain.PretrainingObjective``."""

    def __init__(self, objective):
        self.objective = objective

    def __call__(self, shard, batch):
        mlm_sum, _, nsp_sum = self.objective(*shard)
        # + 1e-8 as d2l and train_bert, for a batch without predictions
        return mlm_sum / (_host_sum(batch[4]) + 1e-8), nsp_sum / batch[0].shape[0]


class ClassificationLoss:
    """The fine-tuning loss of one shard, summed over its examples and divided by the global
    batch's: ``net((tokens, segments, valid_lens))`` scored by ``loss`` (d2l's
    ``SoftmaxCrossEntropyLoss``) against the labels, the last array of the batch."""

    def __init__(self, net, loss):
        self.net, self.loss = net, loss

    def __call__(self, shard, batch):
        *features, labels = shard
        return (self.loss(self.net(tuple(features)), labels).sum() / batch[-1].shape[0],)


class DataParallel:
    """Data-parallel steps for the parameters of ``params`` (a Block or name -> Parameter),
    initialised on ``contexts``, with the gradients summed by a KVStore of type ``kvstore``.

    ``update_on_kvstore``: see ``kvstore.resolve_update_on_kvstore``. ``connect_timeout``:
    seconds a ``dist`` worker waits for the rest of the job to join. ``rank`` and
    ``num_workers`` come from the KVStore (0 and 1 on one machine); only the worker with
    ``is_chief`` should write checkpoints and logs.

    Use ``trainer(...)`` for a ``gluon.Trainer`` on this KVStore, or pass ``kvstore`` to
    ``gluonbert.train.BERTTrainer(kvstore=...)``; one trainer per DataParallel.
    """

    def __init__(self, params, contexts, kvstore='device', *, update_on_kvstore=None,
                 connect_timeout=DEFAULT_CONNECT_TIMEOUT):
        self.contexts = check_contexts(contexts)
        self.named = named_parameters(params)
        self._check_placement()
        self.kvstore_type = check_kvstore_type(kvstore)
        self.update_on_kvstore = resolve_update_on_kvstore(kvstore, update_on_kvstore)
        self.kvstore = create_kvstore(kvstore, connect_timeout=connect_timeout)
        self.rank, self.num_workers = self.kvstore.rank, self.kvstore.num_workers
        self._warned_idle = set()
        self._ready_trainers = set()

    @property
    def is_chief(self):
        return self.rank == 0

    def _check_placement(self):
        expected = set(self.contexts)
        for name, param in self.named.items():
            placed = param.list_ctx()
            if set(placed) != expected or len(placed) != len(expected):
                raise ValueError(f'parameter {name!r} is on {placed}, the contexts are '
                                 f'{self.contexts}; initialise the model with ctx=contexts or '
                                 f'call net.collect_params().reset_ctx(contexts)')

    def trainer(self, optimizer='sgd', optimizer_params=None):
        """A ``gluon.Trainer`` over the parameters, on this KVStore."""
        return gluon.Trainer(list(self.named.values()), optimizer, optimizer_params,
                             kvstore=self.kvstore, update_on_kvstore=self.update_on_kvstore)

    def step(self, trainer, batch, loss_fn):
        """One update from the global ``batch`` (a sequence of arrays, samples on axis 0,
        the same on every worker).

        ``loss_fn(shard, batch)`` runs the model on one shard (a tuple of arrays on one
        context) and returns a loss, or a tuple of loss terms, divided by the totals of the
        global ``batch`` (``PretrainingLoss``, ``ClassificationLoss``). ``trainer`` is
        stepped with ``step(1)``: a ``gluon.Trainer`` from ``trainer()`` or a
        ``BERTTrainer`` on ``kvstore``. Returns a ``StepReport``.
        """
        if id(trainer) not in self._ready_trainers:
            self._check_trainer(trainer)
        batch_size = batch[0].shape[0]
        part = worker_slice(batch, self.rank, self.num_workers)
        shards = [] if part is None else shard_batch([_as_nd(a) for a in part], self.contexts,
                                                     allow_idle=True)
        idle = tuple(self.contexts[len(shards):])
        terms = []
        if shards:
            with autograd.record():
                for shard in shards:
                    out = loss_fn(shard, batch)
                    terms.append(tuple(out) if isinstance(out, (tuple, list)) else (out,))
            autograd.backward([term for shard_terms in terms for term in shard_terms])
        samples = 0 if part is None else part[0].shape[0]
        if idle:
            self._warn_idle(idle, batch_size)
        if part is None and self.kvstore_type == 'dist_async':
            return StepReport(terms, samples, batch_size, idle, applied=False)
        if idle:
            self._zero_gradients(idle)
        if id(trainer) not in self._ready_trainers:
            self._initialise_store(trainer)
        trainer.step(1)
        return StepReport(terms, samples, batch_size, idle, applied=True)

    def _check_trainer(self, trainer):
        inner = getattr(trainer, 'trainer', trainer)  # a BERTTrainer wraps a gluon.Trainer
        store = compat.trainer_kvstore(inner)
        if store is not self.kvstore:
            raise ValueError(f'the trainer sums gradients with kvstore={store!r}, not this '
                             f'DataParallel\'s {self.kvstore_type!r} store: create it with '
                             f'DataParallel.trainer() or BERTTrainer(kvstore=parallel.kvstore)'
                             f', or the gradients of other contexts and workers are not added '
                             f'as chosen')

    def _initialise_store(self, trainer):
        """Put rank 0's parameters in the KVStore and on every worker, and wait for all the
        workers, before the first gradient is pushed.

        ``gluon.Trainer`` does this broadcast inside its first ``step``, right before pushing
        the gradients; on ``dist_sync`` MXNet 1.9.1 then sometimes gives a worker the summed
        gradient of a key in place of its initial weights (measured: 3 of 8 two-worker runs of
        one step ended with different parameters on the workers; 0 of 10 with this wait).
        """
        inner = getattr(trainer, 'trainer', trainer)
        compat.initialise_trainer_store(inner)
        mx.nd.waitall()
        if is_distributed(self.kvstore_type):
            compat.barrier(self.kvstore)
        self._ready_trainers.add(id(trainer))

    def _warn_idle(self, idle, batch_size):
        key = (batch_size, idle)
        if key in self._warned_idle:
            return
        self._warned_idle.add(key)
        where = (f' (worker {self.rank} of {self.num_workers})' if self.num_workers > 1 else '')
        warnings.warn(f'a batch of {batch_size} samples left {", ".join(map(str, idle))}'
                      f'{where} without data this step; their gradients count as zero',
                      IdleDevicesWarning, stacklevel=3)

    def _zero_gradients(self, contexts):
        """Zero the gradients of ``contexts`` and mark them fresh, so that the KVStore adds
        nothing for them (the mark is what ``backward`` would have set)."""
        for name, param in self.named.items():
            if param.grad_req == 'null':
                continue
            if compat.is_deferred(param):
                raise ValueError(f'parameter {name!r} has no shape yet (deferred '
                                 f'initialisation) and {contexts} got no data in this first '
                                 f'step; run one forward pass on every worker before '
                                 f'training, or start with a batch of at least '
                                 f'{len(self.contexts) * self.num_workers} samples')
            for context in contexts:
                param.grad(context)[:] = 0
                compat.set_fresh_grad(param.data(context), True)
