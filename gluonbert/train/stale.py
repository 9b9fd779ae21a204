"""Stale gradients: which trainable parameters the last backward did not reach, and why.

MXNet marks a parameter's array "fresh" when ``backward`` writes its gradient, and
``Trainer.step`` refuses a stale one unless ``ignore_stale_grad=True`` (which d2l hard-codes).
That flag hides two different situations, which we name:

- ``unused``: stale on every device. The loss does not depend on the parameter: an unused
  branch, e.g. the MLM and NSP heads of a ``BERTModel`` when a ``BERTClassifier`` built from it
  is fine-tuned. Its gradient array still holds an old gradient; it must not be applied.
- ``idle device``: fresh on some devices, stale on others: those devices got no data (or ran
  no backward) this step. MXNet would sum their old gradients into the update; we zero them
  first, so the update is the gradient of the data actually seen.

Stale is not frozen. A frozen parameter (``grad_req='null'``) has no gradient at all and is
never updated; it is not reported here. A stale parameter is skipped for this update only (no
step, no weight decay, no change to its Adam moments) and is updated again as soon as a
backward reaches it.

Policies: ``error`` (raise, naming the parameters), ``warn`` (warn when the set of stale
parameters changes, then skip them) and ``skip`` (skip silently, MXNet's
``ignore_stale_grad=True``).
"""
import warnings
from dataclasses import dataclass

from .. import compat

POLICIES = ('error', 'warn', 'skip')
UNUSED, IDLE_DEVICE = 'unused', 'idle device'


class StaleGradientError(RuntimeError):
    """A trainable parameter had no fresh gradient under the ``error`` policy."""


@dataclass(frozen=True)
class StaleGradient:
    """One stale parameter: its name, the reason (``unused`` or ``idle device``) and the
    devices whose gradient is stale."""
    name: str
    reason: str
    devices: tuple


def _arrays(param):
    return compat.parameter_arrays(param)


def find_stale(named):
    """The ``StaleGradient`` of every trainable parameter of ``named`` without a fresh gradient."""
    stale = []
    for name, param in named.items():
        if param.grad_req == 'null':
            continue
        arrays = _arrays(param)
        old = tuple(str(a.context) for a in arrays if not compat.has_fresh_grad(a))
        if old:
            stale.append(StaleGradient(name, UNUSED if len(old) == len(arrays) else IDLE_DEVICE,
                                       old))
    return stale


def zero_idle_devices(named, stale):
    """Zero the stale gradient copies of ``idle device`` parameters and mark them fresh, so
    the reduction across devices adds nothing for the devices that saw no data."""
    for entry in stale:
        if entry.reason != IDLE_DEVICE:
            continue
        param = named[entry.name]
        for data, grad in zip(_arrays(param), param.list_grad()):
            if not compat.has_fresh_grad(data):
                grad[:] = 0
                compat.set_fresh_grad(data, True)


def mark_all_stale(named):
    """Mark every gradient as consumed, as MXNet does after an update (used when an update is
    skipped, so that the next step sees only its own backward)."""
    for param in named.values():
        if param.grad_req != 'null':
            for data in _arrays(param):
                compat.set_fresh_grad(data, False)


def describe(stale):
    """A readable report: one line per stale parameter, grouped by reason, with the remedy."""
    lines = [f'{len(stale)} trainable parameter(s) got no gradient from the last backward '
             f'(stale):']
    for entry in stale:
        where = '' if entry.reason == UNUSED else f' on {", ".join(entry.devices)}'
        lines.append(f'  {entry.name}: {entry.reason}{where}')
    if any(e.reason == UNUSED for e in stale):
        lines.append('unused: the loss does not depend on them (an unused branch, such as the '
                     'MLM/NSP heads of a BERTModel when fine-tuning a BERTClassifier).')
    if any(e.reason == IDLE_DEVICE for e in stale):
        lines.append('idle device: these devices got no data or ran no backward this step.')
    lines.append("Stale is not frozen: freeze parameters with freeze=pattern (grad_req='null'); "
                 "leave them out of the trainer; or accept the staleness with "
                 "expect_stale=pattern, stale='skip' or stale='warn'.")
    return '\n'.join(lines)


class StalePolicy:
    """Applies a policy to the stale parameters of each update.

    ``expected``: a compiled pattern of names allowed to be stale silently under any policy.
    """

    def __init__(self, policy='error', expected=None):
        if policy not in POLICIES:
            raise ValueError(f'stale={policy!r}; expected one of {POLICIES}')
        self.policy, self.expected = policy, expected
        self._last_warned = None
        self.last_report = []

    def check(self, named):
        """Find the stale parameters, apply the policy, and zero idle-device gradients.

        Returns the stale entries (all of them, expected or not); raises
        ``StaleGradientError`` under ``error`` for unexpected ones.
        """
        stale = find_stale(named)
        self.last_report = stale
        unexpected = [e for e in stale
                      if self.expected is None or not self.expected.search(e.name)]
        if unexpected and self.policy == 'error':
            raise StaleGradientError(describe(unexpected))
        if unexpected and self.policy == 'warn':
            names = tuple(e.name for e in unexpected)
            if names != self._last_warned:
                warnings.warn(describe(unexpected), stacklevel=4)
                self._last_warned = names
        zero_idle_devices(named, stale)
        return stale
