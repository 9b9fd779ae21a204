"""The non-finite guard: a step whose loss or gradient is not finite is not applied.

Large pretraining runs skip such a step, count it, lower the mixed-precision loss scale
(the usual cause is a float16 overflow), and after several in a row roll back to the last
checkpoint rather than keep training on a model that has diverged.
"""
import math

SKIP, ROLLBACK, APPLY = 'skip', 'rollback', 'apply'


class NonFiniteGuard:
    """Counts non-finite steps; ``observe`` says whether to apply, skip or roll back.

    ``patience``: the number of non-finite steps in a row that triggers a rollback.
    """

    def __init__(self, patience=5):
        if not (isinstance(patience, int) and patience >= 1):
            raise ValueError(f'guard_patience={patience!r}; expected an integer >= 1')
        self.patience = patience
        self.skipped = 0        # non-finite steps since the start
        self.in_a_row = 0       # non-finite steps since the last applied one
        self.rollbacks = 0

    def observe(self, *values):
        """``APPLY`` when every value is finite; otherwise ``SKIP``, or ``ROLLBACK`` when this
        makes ``patience`` non-finite steps in a row (the count then starts again)."""
        if all(math.isfinite(v) for v in values):
            self.in_a_row = 0
            return APPLY
        self.skipped += 1
        self.in_a_row += 1
        if self.in_a_row >= self.patience:
            self.in_a_row = 0
            self.rollbacks += 1
            return ROLLBACK
        return SKIP

    def state_dict(self):
        return {'skipped': self.skipped, 'in_a_row': self.in_a_row, 'rollbacks': self.rollbacks}

    def load_state_dict(self, state):
        self.skipped, self.in_a_row = state['skipped'], state['in_a_row']
        self.rollbacks = state['rollbacks']
