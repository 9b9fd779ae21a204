"""``BERTTrainer``: the fine-tuning knobs d2l hides, composed over ``gluon.Trainer``.

Parameter groups and layer-wise decay (``param_groups``, ``layerwise``), BERT's Adam
variants (``gluonbert.optimizer``), one schedule owner (``schedules``), stale-gradient
reports (``stale``), global-norm clipping (``clipping``), gradient accumulation
(``accumulate`` micro-batches an update), mixed precision (``mixed_precision``), the
non-finite guard (``guard``) and exact checkpoints (``state``). Underneath is a
``gluon.Trainer`` with the KVStore of your choice (``device``, ``local``, ``dist_sync``...),
updating on the workers so that the reduced gradient can be checked and clipped before the
update.

The loop::

    trainer = BERTTrainer(net, 'adamw', lr=2e-5, schedule='linear', warmup_steps=10,
                          num_training_steps=100, groups={'^output\\.': {'lr_mult': 10}})
    for X, y in batches:
        with autograd.record():
            loss = loss_fn(net(X), y).sum()   # a sum: the trainer divides by the samples
        trainer.backward(loss)                # applies the loss scale under AMP
        trainer.step(len(y), loss=loss)       # one update every `accumulate` calls
"""
import re
from dataclasses import dataclass

import mxnet as mx
import numpy as np
from mxnet import autograd, gluon

from .. import compat
from ..optimizer import OPTIMIZERS  # importing it registers the gb_* optimizers
from . import mixed_precision, state
from .clipping import clip_factor, global_norm
from .guard import APPLY, ROLLBACK, NonFiniteGuard, SpikeGuard
from .named_params import named_parameters
from .param_groups import NO_DECAY, apply, format_table, resolve
from .schedules import Schedule
from .stale import UNUSED, StalePolicy, mark_all_stale


class NonFiniteError(RuntimeError):
    """Too many non-finite steps (or loss spikes) in a row, and no checkpoint to roll back
    to."""


@dataclass(frozen=True)
class StepOutcome:
    """What a ``step`` call did: ``applied``, ``accumulating`` (waiting for more
    micro-batches), ``skipped`` or ``rolled back`` (to ``checkpoint``), and for the last two
    the ``reason``: ``'non-finite'`` or ``'loss spike'``. ``lr`` is the learning rate of the
    update, ``grad_norm`` the true global gradient norm before clipping (None while
    accumulating), ``stale`` the names skipped as stale, ``loss`` the update's mean loss
    (when given). A rollback gives the checkpoint's ``data_position``; after loss spikes also
    ``skip_batches``: the micro-batches read since that checkpoint, the data window that led
    to the spikes, which the caller skips when it reads on from ``data_position`` (after
    non-finite steps the data is read again, with the lowered loss scale)."""
    action: str
    lr: float = None
    grad_norm: float = None
    stale: tuple = ()
    checkpoint: str = None
    data_position: dict = None
    reason: str = None
    loss: float = None
    skip_batches: int = None

    def __str__(self):
        text = self.action if self.reason is None else f'{self.action} ({self.reason})'
        if self.loss is not None:
            text += f', loss {self.loss:.4g}'
        if self.action == 'rolled back':
            text += f' to {self.checkpoint} (data position {self.data_position})'
        if self.skip_batches:
            text += f'; the {self.skip_batches} batches after it are skipped'
        return text


def _seed_for(seed, updates):
    """MXNet's seed after ``updates`` updates: a function of two integers only."""
    return int(np.random.SeedSequence([seed, updates]).generate_state(1)[0] % (2 ** 31))


def _host_total(loss):
    """The sum of ``loss`` (an array, a number, or a list of them, one per device)."""
    arrays = loss if isinstance(loss, (list, tuple)) else [loss]
    total = 0.0
    for array in arrays:
        total += float(array.asnumpy().sum()) if hasattr(array, 'asnumpy') else float(array)
    return total


class BERTTrainer:
    """Updates the parameters of ``params`` (a Block, a list of Blocks, or name -> Parameter).

    optimizer: ``'adamw'`` (default: fine-tuning is more stable with bias correction),
        ``'bertadam'``, ``'adam'`` (see ``gluonbert.optimizer``), or another registered MXNet
        optimizer name; ``optimizer_params`` go to its constructor (``beta1``, ``epsilon``...).
    lr, wd: the peak learning rate and the weight decay (decoupled for adamw/bertadam).
    schedule, warmup_steps, num_training_steps, min_lr: a ``schedules.SCHEDULES`` name, or a
        ``Schedule``; ``num_training_steps`` counts updates, not micro-batches; ``min_lr``
        is the floor of a linear or cosine decay.
    groups, no_decay, layerwise_decay, num_layers, freeze: see ``param_groups.resolve``.
    clip: the maximum global gradient norm (None: no clipping).
    accumulate: micro-batches per update (``step`` is called after each).
    stale: ``'error'``, ``'warn'`` or ``'skip'``; ``expect_stale``: a pattern of names that
        may be stale silently (e.g. ``'^(mlm|nsp)\\.'``).
    amp: None, ``'bfloat16'`` (CPU) or ``'float16'`` (GPU); call
        ``mixed_precision.enable(amp)`` before building the model. ``loss_scale``: None
        (dynamic for float16, 1 for bfloat16), ``'dynamic'``, or a fixed number.
    guard_patience: non-finite steps in a row before rolling back to the last checkpoint.
    spike_factor: a finite loss above this many times the median of the last
        ``spike_window`` applied losses is a spike and skips its update; ``spike_patience``
        spikes in a row roll back (None: no spike guard). Needs ``loss=`` in ``step``; in a
        multi-worker run, pass the global batch's loss so that every worker agrees (the
        engine sums it over the workers).
    checkpoint_dir, keep_last: where ``save`` writes, and how many checkpoints stay.
    seed: MXNet's generator is reseeded from ``(seed, updates)`` after each update, which
        makes resumes exact (None: leave MXNet's generator alone).
    kvstore: passed to ``gluon.Trainer``; ``dist_async`` is refused (it updates on the
        servers, before the gradient can be checked).
    quiet: do not print the table of every parameter's lr and wd.
    """

    def __init__(self, params, optimizer='adamw', *, lr, wd=0.01, schedule='constant',
                 warmup_steps=0, num_training_steps=None, min_lr=0.0, groups=None,
                 no_decay=NO_DECAY, layerwise_decay=None, num_layers=None, freeze=None,
                 clip=None, accumulate=1, stale='error', expect_stale=None, amp=None,
                 loss_scale=None, guard_patience=5, spike_factor=None, spike_window=100,
                 spike_patience=3, checkpoint_dir=None, keep_last=3, seed=0, kvstore='device',
                 optimizer_params=None, quiet=False):
        if not lr > 0:
            raise ValueError(f'lr={lr}; expected a positive learning rate')
        if not wd >= 0:
            raise ValueError(f'wd={wd}; expected a weight decay >= 0')
        if clip is not None and not clip > 0:
            raise ValueError(f'clip={clip}; expected a positive maximum norm or None')
        if not (isinstance(accumulate, int) and accumulate >= 1):
            raise ValueError(f'accumulate={accumulate!r}; expected an integer >= 1')
        if isinstance(kvstore, str) and 'async' in kvstore:
            raise ValueError(f'kvstore={kvstore!r} updates on the servers, where the gradient '
                             f'cannot be checked or clipped; use dist_sync or device')
        self.kvstore = kvstore
        self._store_ready = False
        self.named = named_parameters(params)
        self.settings = resolve(self.named, groups, no_decay=no_decay,
                                layerwise_decay=layerwise_decay, num_layers=num_layers,
                                freeze=freeze)
        apply(self.named, self.settings)
        self.trainable = {s.name: self.named[s.name] for s in self.settings if not s.frozen}
        if not self.trainable:
            raise ValueError('every parameter is frozen; nothing to train')
        if accumulate > 1:
            for param in self.trainable.values():
                param.grad_req = 'add'
        self.schedule = schedule if isinstance(schedule, Schedule) else Schedule(
            schedule, lr, warmup_steps, num_training_steps, min_lr=min_lr)
        self.lr, self.wd, self.clip, self.accumulate = lr, wd, clip, accumulate
        registered = OPTIMIZERS.get(optimizer, optimizer)
        if registered.lower() not in mx.optimizer.Optimizer.opt_registry:
            raise ValueError(f'optimizer={optimizer!r} is not known; expected one of '
                             f'{sorted(OPTIMIZERS)} or a registered MXNet optimizer')
        self.trainer = gluon.Trainer(
            list(self.trainable.values()), registered,
            dict(optimizer_params or {}, learning_rate=lr, wd=wd), kvstore=kvstore,
            update_on_kvstore=False)
        contexts = next(iter(self.trainable.values())).list_ctx()
        self.amp = amp
        if amp is not None:
            mixed_precision.check_supported(amp, contexts)
            if mixed_precision.enabled_dtype() not in (amp, 'unknown'):
                raise ValueError(f'amp={amp!r}, but AMP was not enabled for it: call '
                                 f'gluonbert.train.mixed_precision.enable({amp!r}) before '
                                 f'building the model')
        if loss_scale is None:
            self.loss_scaler = mixed_precision.LossScaler.for_dtype(amp)
        elif loss_scale == 'dynamic':
            self.loss_scaler = mixed_precision.LossScaler()
        else:
            self.loss_scaler = mixed_precision.LossScaler(loss_scale, dynamic=False)
        expected = None
        if expect_stale is not None:
            expected = re.compile(expect_stale)
            if not any(expected.search(name) for name in self.trainable):
                raise ValueError(f'expect_stale={expect_stale!r} matches no trainable parameter')
        self.stale_policy = StalePolicy(stale, expected)
        self.guard = NonFiniteGuard(guard_patience)
        self.spike_guard = (SpikeGuard(spike_factor, spike_window, spike_patience)
                            if spike_factor is not None else None)
        self.checkpoints = (state.CheckpointManager(checkpoint_dir, keep_last)
                            if checkpoint_dir is not None else None)
        self.seed = seed
        self.num_updates = 0
        self.micro_batches = 0  # step() calls since the start, for the data window to skip
        self._rolled_back_at = None  # num_updates after the last non-finite rollback
        self._continues = False  # saved or loaded a checkpoint: the folder holds this run's
        self._reset_pending()
        if seed is not None:
            mx.random.seed(_seed_for(seed, 0))
        if not quiet:
            print(self.describe())

    def describe(self):
        """The table of every parameter's group, depth, lr and wd."""
        return format_table(self.settings, self.lr, self.wd)

    @property
    def pending_micro_batches(self):
        """Micro-batches counted since the last update (0 at an update boundary)."""
        return self._pending_micro

    @property
    def loss_scale(self):
        return self.loss_scaler.scale

    def backward(self, loss):
        """``autograd.backward`` of ``loss`` (an array or a list, one per device) times the
        loss scale; call it where you would call ``loss.backward()``."""
        losses = list(loss) if isinstance(loss, (list, tuple)) else [loss]
        scale = self.loss_scaler.scale
        if scale != 1:
            with autograd.record():
                losses = [l * scale for l in losses]
        autograd.backward(losses)

    def step(self, batch_size, loss=None):
        """Count a micro-batch of ``batch_size`` samples; every ``accumulate`` calls, update.

        The gradient is divided by the samples of all accumulated micro-batches (and by the
        loss scale): compute losses as sums over samples. Pass ``loss`` to have a non-finite
        loss skip the update too. Returns a ``StepOutcome``.
        """
        if not batch_size > 0:
            raise ValueError(f'batch_size={batch_size}; expected a positive number of samples')
        self.micro_batches += 1
        self._pending_micro += 1
        self._pending_samples += batch_size
        if loss is not None:
            self._pending_loss = (self._pending_loss or 0.0) + _host_total(loss)
        if self._pending_micro < self.accumulate:
            return StepOutcome('accumulating')
        samples, loss_total = self._pending_samples, self._pending_loss
        self._reset_pending()
        return self._update(samples, loss_total)

    def _reset_pending(self):
        self._pending_micro, self._pending_samples, self._pending_loss = 0, 0, None

    def _update(self, samples, loss_total):
        if not self._store_ready:
            compat.initialise_store(self.trainer)
            self._store_ready = True
        loss = None if loss_total is None else loss_total / samples
        loss_finite = loss is None or bool(np.isfinite(loss))
        stale = self.stale_policy.check(self.trainable)
        unused = {entry.name for entry in stale if entry.reason == UNUSED}
        self.trainer.allreduce_grads()
        updating = [p for name, p in self.trainable.items() if name not in unused]
        scale = self.loss_scaler.scale
        norm = global_norm(updating, 1.0 / (samples * scale))
        decision = self.guard.observe(norm, 0.0 if loss_finite else float('nan'))
        if decision != APPLY:
            self.loss_scaler.update(False)
            self._discard_gradients()
            if decision == ROLLBACK:
                return self._roll_back(norm, 'non-finite', loss)
            return StepOutcome('skipped', grad_norm=norm, stale=tuple(sorted(unused)),
                               reason='non-finite', loss=loss)
        if self.spike_guard is not None and loss is not None:
            decision = self.spike_guard.observe(loss)
            if decision != APPLY:
                self._discard_gradients()
                if decision == ROLLBACK:
                    return self._roll_back(norm, 'loss spike', loss)
                return StepOutcome('skipped', grad_norm=norm, stale=tuple(sorted(unused)),
                                   reason='loss spike', loss=loss)
        lr = self.schedule(self.num_updates + 1)
        self.trainer.set_learning_rate(lr)
        # The optimizer multiplies the gradient by 1 / (samples * scale / factor)
        self.trainer.update(samples * scale / clip_factor(norm, self.clip),
                            ignore_stale_grad=True)
        if self.accumulate > 1:
            for param in self.trainable.values():
                param.zero_grad()
        self.loss_scaler.update(True)
        self.num_updates += 1
        if self.seed is not None:
            mx.random.seed(_seed_for(self.seed, self.num_updates))
        return StepOutcome('applied', lr=lr, grad_norm=norm, stale=tuple(sorted(unused)),
                           loss=loss)

    def _discard_gradients(self):
        mark_all_stale(self.trainable)
        if self.accumulate > 1:
            for param in self.trainable.values():
                param.zero_grad()

    def _roll_back(self, norm, reason, loss):
        # Never forward: a later step in the folder is an earlier run's
        latest = (self.checkpoints.load_latest(max_step=self.num_updates)
                  if self.checkpoints is not None else None)
        if latest is None:
            if reason == 'loss spike':
                raise NonFiniteError(f'{self.spike_guard.patience} loss spikes in a row (last '
                                     f'loss {loss:.4g}, running median '
                                     f'{self.spike_guard.median():.4g}) and no checkpoint to '
                                     f'roll back to; pass checkpoint_dir= and call save()')
            raise NonFiniteError(f'{self.guard.patience} non-finite steps in a row (last '
                                 f'gradient norm {norm}) and no checkpoint to roll back to; '
                                 f'pass checkpoint_dir= and call save()')
        path, arrays, meta = latest
        if reason == 'non-finite' and self._rolled_back_at == self.num_updates:
            # No update applied since the last rollback: rolling back again would repeat it
            raise NonFiniteError(f'{self.guard.patience} non-finite steps in a row (last '
                                 f'gradient norm {norm}) again after rolling back to {path}, '
                                 f'with no update applied since: the model there gives '
                                 f'non-finite steps too')
        guards = self.guard.state_dict(), self._spike_state()
        scale = self.loss_scaler.state_dict()
        micro_batches = self.micro_batches
        position = self._restore(arrays, meta)
        if reason == 'non-finite':
            self._rolled_back_at = self.num_updates
        # Keep counting across the rollback, and keep the lowered loss scale
        self.guard.load_state_dict(guards[0])
        if self.spike_guard is not None:
            self.spike_guard.load_state_dict(guards[1])
        self.loss_scaler.load_state_dict(scale)
        return StepOutcome('rolled back', grad_norm=norm, checkpoint=path,
                           data_position=position, reason=reason, loss=loss,
                           skip_batches=(micro_batches - self.micro_batches
                                         if reason == 'loss spike' else None))

    def _spike_state(self):
        return None if self.spike_guard is None else self.spike_guard.state_dict()

    # ---- checkpoints ----------------------------------------------------------------------

    def save(self, data_position=None):
        """Write a checkpoint of everything needed to resume exactly; returns its path.

        ``data_position``: JSON values locating the data loader (e.g. ``{'epoch': 2,
        'batch': 17}``), handed back by ``load``.
        """
        if self.checkpoints is None:
            raise ValueError('save() needs checkpoint_dir= when the trainer is created')
        if self._pending_micro:
            raise ValueError(f'save() in the middle of an accumulation ({self._pending_micro} '
                             f'of {self.accumulate} micro-batches); save after an update')
        optimizer_arrays, optimizer_meta = state.capture_optimizer(self.trainer, self.trainable)
        meta = {'num_updates': self.num_updates, 'optimizer': optimizer_meta,
                'loss_scale': self.loss_scaler.state_dict(), 'guard': self.guard.state_dict(),
                'spike_guard': self._spike_state(), 'micro_batches': self.micro_batches,
                'seed': self.seed, 'rng': state.capture_rng(),
                'data_position': {} if data_position is None else data_position}
        path = self.checkpoints.save(
            self.num_updates, {state.PARAMS: state.capture_params(self.named),
                               state.OPTIMIZER: optimizer_arrays}, meta,
            replace_all=not self._continues)
        self._continues = True
        return path

    def load(self, path=None, required=False):
        """Restore the checkpoint at ``path`` (default: the newest good one in
        ``checkpoint_dir``); returns its data position, or None when there is no checkpoint
        yet (a fresh start). ``required=True`` (a resume) makes no checkpoint an error.

        The whole checkpoint is checked against the model and this trainer (parameters,
        optimizer, frozen parameters) before anything is changed: a load that fails
        (``CheckpointError``) leaves the model and the trainer as they were."""
        if path is not None:
            arrays, meta = state.read_checkpoint(path)
        else:
            if self.checkpoints is None:
                raise ValueError('load() without a path needs checkpoint_dir=')
            latest = self.checkpoints.load_latest()
            if latest is None:
                if required:
                    raise state.CheckpointError(self.checkpoints.why_empty())
                return None
            _, arrays, meta = latest
        position = self._restore(arrays, meta)
        self._continues = True
        return position

    def _restore(self, arrays, meta):
        try:
            state.check_params(self.named, arrays[state.PARAMS])
            state.check_optimizer(self.trainer, self.trainable, arrays.get(state.OPTIMIZER, {}),
                                  meta['optimizer'])
        except (KeyError, TypeError, AttributeError) as error:
            raise state.CheckpointError(f'the checkpoint is malformed: {error!r}') from None
        state.restore_params(self.named, arrays[state.PARAMS])
        state.restore_optimizer(self.trainer, self.trainable, arrays.get(state.OPTIMIZER, {}),
                                meta['optimizer'])
        self.num_updates = meta['num_updates']
        self.loss_scaler.load_state_dict(meta['loss_scale'])
        self.guard.load_state_dict(meta['guard'])
        if self.spike_guard is not None and meta.get('spike_guard') is not None:
            self.spike_guard.load_state_dict(meta['spike_guard'])
        # Checkpoints written before the count existed: the updates are the best estimate
        self.micro_batches = meta.get('micro_batches', meta['num_updates'] * self.accumulate)
        state.restore_rng(meta['rng'])
        if self.seed is not None:
            mx.random.seed(_seed_for(self.seed, self.num_updates))
        self._reset_pending()
        mark_all_stale(self.trainable)
        return meta['data_position']
