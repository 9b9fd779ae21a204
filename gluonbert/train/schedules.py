"""Learning-rate schedules with HuggingFace's names and curves.

``Schedule(name, lr, warmup_steps, num_training_steps)`` gives the learning rate of update
``t`` (1-based). The curves are HF's ``get_*_schedule_with_warmup`` lambdas:

=========================  =============================================================
name                       lr(t) / lr   (W = warmup_steps, T = num_training_steps)
=========================  =============================================================
``constant``               1
``constant_with_warmup``   t / W while t <= W, then 1
``linear``                 t / W while t <= W, then (T - d) / (T - W)
``cosine``                 t / W while t <= W, then (1 + cos(pi * 2 c p)) / 2, c = 0.5
``cosine_with_restarts``   t / W while t <= W, then (1 + cos(pi * ((c p) mod 1))) / 2, c = 1
``polynomial``             t / W while t <= W, then ((lr - lr_end) (1 - p)**power + lr_end) / lr
=========================  =============================================================

with ``d = t - 1`` (the updates done before update ``t``) and ``p = (d - W) / (T - W)``.
The decay is HF's exactly: HF reads its lambda at the updates done, so update ``t`` gets the
curve at ``d``, the last update ``T`` gets ``lr / (T - W)`` for ``linear`` and the curve
reaches its end value (0) just after it; in particular update 1 of a schedule without warmup
gets the full ``lr``, so a one-update run does update the weights. The warmup is read at
``t`` instead (HF's first warmup update has lr 0, HF #34754): update 1 gets ``lr / W`` and
the peak comes at update ``W``. With ``min_lr`` the decaying curves (``linear``, ``cosine``,
``cosine_with_restarts``) fall towards that floor instead of 0, as large pretraining runs do
(after warmup, lr(t) = min_lr + (lr - min_lr) x the curve).

One owner: the trainer reads the schedule once per update and sets the optimizer's lr, so
the schedule advances once per update whatever the number of devices (mxnet #12713) and is
never applied twice (HF #195).
"""
import math

SCHEDULES = ('constant', 'constant_with_warmup', 'linear', 'cosine', 'cosine_with_restarts',
             'polynomial')
_NEED_TOTAL = ('linear', 'cosine', 'cosine_with_restarts', 'polynomial')
_TAKE_FLOOR = ('linear', 'cosine', 'cosine_with_restarts')


def default_schedule(warmup_steps):
    """The schedule of a run that names none: ``constant``, or ``constant_with_warmup`` when
    it asks for a warm-up."""
    return 'constant_with_warmup' if warmup_steps else 'constant'


class Schedule:
    """The learning rate of each update: ``schedule(t)`` for ``t`` in 1..num_training_steps.

    ``num_cycles`` applies to the cosines (HF's defaults: 0.5 for ``cosine``, 1 for
    ``cosine_with_restarts``); ``lr_end`` (1e-7) and ``power`` (1.0) to ``polynomial``;
    ``min_lr`` (0) is the floor the linear and cosine decays end at.
    """

    def __init__(self, name, lr, warmup_steps=0, num_training_steps=None, *, num_cycles=None,
                 lr_end=1e-7, power=1.0, min_lr=0.0):
        if name not in SCHEDULES:
            raise ValueError(f'schedule={name!r}; expected one of {SCHEDULES}')
        if not lr > 0:
            raise ValueError(f'lr={lr}; expected a positive learning rate')
        if not (isinstance(warmup_steps, int) and warmup_steps >= 0):
            raise ValueError(f'warmup_steps={warmup_steps!r}; expected an integer >= 0')
        if name == 'constant' and warmup_steps:
            raise ValueError(f'schedule="constant" has no warmup (warmup_steps={warmup_steps}); '
                             f'use "constant_with_warmup"')
        if num_training_steps is None:
            if name in _NEED_TOTAL:
                raise ValueError(f'schedule={name!r} decays over the training; pass '
                                 f'num_training_steps')
        elif not (isinstance(num_training_steps, int) and num_training_steps > 0):
            raise ValueError(f'num_training_steps={num_training_steps!r}; expected a positive '
                             f'integer')
        elif warmup_steps > num_training_steps:
            raise ValueError(f'warmup_steps={warmup_steps} is longer than the training '
                             f'(num_training_steps={num_training_steps}); expected '
                             f'warmup_steps <= num_training_steps')
        if min_lr and name not in _TAKE_FLOOR:
            raise ValueError(f'min_lr={min_lr} with schedule={name!r}; a floor applies to '
                             f'{", ".join(_TAKE_FLOOR)} (polynomial has lr_end)')
        if not 0 <= min_lr < lr:
            raise ValueError(f'min_lr={min_lr}; expected 0 <= min_lr < lr={lr}')
        if name == 'polynomial' and not lr_end < lr:
            raise ValueError(f'lr_end={lr_end} must be smaller than lr={lr}')
        if num_cycles is None:
            num_cycles = 1.0 if name == 'cosine_with_restarts' else 0.5
        self.name, self.lr = name, lr
        self.warmup_steps, self.num_training_steps = warmup_steps, num_training_steps
        self.num_cycles, self.lr_end, self.power = num_cycles, lr_end, power
        self.min_lr = min_lr

    def factor(self, t):
        """``lr(t) / lr``: the curve's value at update ``t``."""
        if not (isinstance(t, int) and t >= 1):
            raise ValueError(f'update {t!r}; updates are counted from 1')
        total, warmup = self.num_training_steps, self.warmup_steps
        if total is not None and t > total:
            raise ValueError(f'update {t} is past num_training_steps={total} of the '
                             f'{self.name!r} schedule')
        if self.name == 'constant':
            return 1.0
        if t <= warmup:
            return t / warmup
        if self.name == 'constant_with_warmup':
            return 1.0
        done = t - 1
        progress = (done - warmup) / max(1, total - warmup)
        if self.name == 'linear':
            return max(0.0, (total - done) / max(1, total - warmup))
        if self.name == 'cosine':
            return max(0.0, 0.5 * (1.0 + math.cos(math.pi * self.num_cycles * 2.0 * progress)))
        if self.name == 'cosine_with_restarts':
            if progress >= 1.0:
                return 0.0
            return max(0.0, 0.5 * (1.0 + math.cos(math.pi * ((self.num_cycles * progress) % 1.0))))
        decayed = (self.lr - self.lr_end) * (1 - progress) ** self.power + self.lr_end
        return decayed / self.lr

    def __call__(self, t):
        """The learning rate of update ``t``."""
        factor = self.factor(t)
        if self.min_lr and t > self.warmup_steps:
            return self.min_lr + (self.lr - self.min_lr) * factor
        return self.lr * factor

    def __repr__(self):
        return (f'Schedule({self.name!r}, lr={self.lr}, warmup_steps={self.warmup_steps}, '
                f'num_training_steps={self.num_training_steps})')
