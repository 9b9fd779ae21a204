"""Guards against bad steps: a loss or gradient that is not finite, and a loss spike.

Large pretraining runs skip such a step, count it, lower the mixed-precision loss scale
(the usual cause of a non-finite step is a float16 overflow), and after several in a row roll
back to the last checkpoint rather than keep training on a model that has diverged; after
spikes they also skip the data that led to them.
"""
import math

SKIP, ROLLBACK, APPLY = 'skip', 'rollback', 'apply'


class _Streak:
    """What both guards count: bad steps since the start (``total``) and in a row, and the
    rollbacks that ``patience`` bad steps in a row trigger. ``_TOTAL`` names ``total`` in the
    state dict (as checkpoints hold it)."""
    _TOTAL = None

    def __init__(self, patience):
        self.patience = patience
        self.total = 0          # bad steps since the start
        self.in_a_row = 0       # bad steps since the last applied one
        self.rollbacks = 0

    def _good(self):
        self.in_a_row = 0
        return APPLY

    def _bad(self):
        """``SKIP``, or ``ROLLBACK`` when this makes ``patience`` bad steps in a row (the
        count then starts again)."""
        self.total += 1
        self.in_a_row += 1
        if self.in_a_row >= self.patience:
            self.in_a_row = 0
            self.rollbacks += 1
            return ROLLBACK
        return SKIP

    def state_dict(self):
        return {self._TOTAL: self.total, 'in_a_row': self.in_a_row, 'rollbacks': self.rollbacks}

    def load_state_dict(self, state):
        self.total, self.in_a_row = state[self._TOTAL], state['in_a_row']
        self.rollbacks = state['rollbacks']


class NonFiniteGuard(_Streak):
    """Counts non-finite steps; ``observe`` says whether to apply, skip or roll back.

    ``patience``: the number of non-finite steps in a row that triggers a rollback.
    """
    _TOTAL = 'skipped'

    def __init__(self, patience=5):
        if not (isinstance(patience, int) and patience >= 1):
            raise ValueError(f'guard_patience={patience!r}; expected an integer >= 1')
        super().__init__(patience)

    @property
    def skipped(self):
        """Non-finite steps since the start."""
        return self.total

    def observe(self, *values):
        """``APPLY`` when every value is finite; otherwise ``SKIP``, or ``ROLLBACK`` when this
        makes ``patience`` non-finite steps in a row (the count then starts again)."""
        if all(math.isfinite(v) for v in values):
            return self._good()
        return self._bad()


class SpikeGuard(_Streak):
    """Loss spikes: a finite loss above ``factor`` times the median of the last ``window``
    applied losses is not applied (large runs skip the batches of a spike or restart before
    it; a spike can leave a diverging model behind). ``observe`` says apply, skip, or, after
    ``patience`` spikes in a row, roll back. Nothing is judged before ``min_history`` losses
    have been applied, while the loss still falls fast.
    """
    _TOTAL = 'spikes'

    def __init__(self, factor, window=100, patience=3, min_history=20):
        if not (isinstance(factor, (int, float)) and factor > 1):
            raise ValueError(f'spike_factor={factor!r}; expected a number > 1 (a loss that '
                             f'many times the running median is a spike)')
        for name, value in (('spike_window', window), ('spike_patience', patience),
                            ('spike_min_history', min_history)):
            if not (isinstance(value, int) and value >= 1):
                raise ValueError(f'{name}={value!r}; expected an integer >= 1')
        super().__init__(patience)
        self.factor, self.window = factor, window
        self.min_history = min(min_history, window)
        self.history = []       # the last `window` applied losses

    @property
    def spikes(self):
        """Spikes since the start."""
        return self.total

    def median(self):
        ordered = sorted(self.history)
        middle = len(ordered) // 2
        return (ordered[middle] if len(ordered) % 2
                else (ordered[middle - 1] + ordered[middle]) / 2)

    def observe(self, loss):
        """``APPLY`` and remember ``loss``; ``SKIP`` for a spike; ``ROLLBACK`` when it makes
        ``patience`` spikes in a row (the count then starts again)."""
        if len(self.history) >= self.min_history and loss > self.factor * self.median():
            return self._bad()
        self.history = (self.history + [loss])[-self.window:]
        return self._good()

    def state_dict(self):
        return dict(super().state_dict(), history=list(self.history))

    def load_state_dict(self, state):
        super().load_state_dict(state)
        self.history = list(state['history'])
