"""Put a checkpoint's named tensors into a gluonbert ``BERTModel``, checking every shape.

The format readers (``hf``, ``gluonnlp_params``) turn a file into ``{name: numpy array}`` and
say which checkpoint name holds each gluonbert parameter; this module does the rest, the same
way for both: shape and dtype checks that name the tensor, tied weights that must agree,
fresh initialization of the heads a checkpoint may lack (as HF does), and a ``LoadReport``.
"""
import dataclasses
import warnings

import numpy as np
from mxnet import cpu, init

from .. import compat
from .mapping import checkpoint_shape

# HF initializes BERT's weights from N(0, 0.02); heads missing from a checkpoint start there
HEAD_INIT = init.Normal(0.02)


@dataclasses.dataclass
class LoadReport:
    """What an import did, by name.

    ``loaded``: gluonbert parameters taken from the checkpoint; ``missing``: gluonbert
    parameters the checkpoint lacks, initialized afresh (only heads may be missing);
    ``unexpected``: checkpoint tensors gluonbert has no place for, left unused.
    """
    loaded: list
    missing: list
    unexpected: list

    def __str__(self):
        lines = [f'{len(self.loaded)} parameters loaded']
        if self.missing:
            lines.append(f'missing from the checkpoint, initialized afresh: '
                         f'{", ".join(self.missing)}')
        if self.unexpected:
            lines.append(f'in the checkpoint but unused: {", ".join(self.unexpected)}')
        return '; '.join(lines)

    def summary(self):
        """One short line: how many tensors loaded, which parts start afresh (by part:
        pooler, MLM head, NSP head) and which checkpoint tensors go unused."""
        parts = [f'{len(self.loaded)} parameters loaded']
        fresh = sorted({_PARTS.get(name.split('.')[0], name) for name in self.missing},
                       key=list(_PARTS.values()).index)
        if fresh:
            parts.append(f'initialized afresh (not in the checkpoint): {", ".join(fresh)}')
        if self.unexpected:
            groups = {}
            for name in self.unexpected:
                groups.setdefault(name.rsplit('.', 1)[0], []).append(name)
            unused = (self.unexpected if len(self.unexpected) <= _LISTED else
                      [f'{group}.* ({len(names)})' for group, names in groups.items()])
            parts.append(f'unused checkpoint tensors: {", ".join(unused)}')
        return '; '.join(parts)

    def warn(self, source):
        """A ``UserWarning`` with the summary when anything was missing or unused."""
        if self.missing or self.unexpected:
            warnings.warn(f'{source}: {self.summary()}', stacklevel=3)


# gluonbert's top-level parameter prefixes that a checkpoint may lack, by what they are
_PARTS = {'hidden': 'pooler', 'mlm': 'MLM head', 'nsp': 'NSP head'}
_LISTED = 4  # unused tensors named one by one up to this many, else by layer


class _FromArray(init.Initializer):
    """Initialize a parameter with a given array: no random fill first, no copy after."""

    def __init__(self, array):
        super().__init__()
        self._array = array

    def _init_weight(self, _, arr):
        arr[:] = self._array


def _tied_groups(net):
    """The parameters of ``net`` as ``(parameter, [gluonbert names])``: a tied parameter
    (the MLM decoder sharing the token embedding) has several names."""
    groups = {}
    for name, param in compat.structural_parameters(net).items():
        groups.setdefault(id(param), (param, []))[1].append(name)
    return list(groups.values())


def _as_float32(source_name, array):
    if not np.issubdtype(array.dtype, np.floating):
        raise ValueError(f'tensor {source_name!r} has dtype {array.dtype}; expected a '
                         f'floating-point tensor')
    return array.astype(np.float32, copy=False)


def _checked(name, param_shape, source_name, array):
    expected = checkpoint_shape(name, param_shape)
    if tuple(array.shape) != tuple(expected):
        raise ValueError(f'tensor {source_name!r} has shape {tuple(array.shape)}, but '
                         f'gluonbert\'s {name!r} needs {tuple(expected)}: the checkpoint '
                         f'does not match its configuration')
    array = _as_float32(source_name, array)
    if not np.isfinite(array).all():
        raise ValueError(f'tensor {source_name!r} holds NaN or infinite values: a damaged '
                         f'checkpoint, which gluonbert does not load')
    return array.reshape(param_shape)


def load_tensors(net, tensors, source_name_of, *, may_miss, devices=None, ignored=()):
    """Initialize ``net`` with ``tensors`` (checkpoint name -> numpy array).

    ``source_name_of(name)`` gives the checkpoint name of gluonbert parameter ``name`` (None
    if the checkpoint has none); ``may_miss(name)`` says whether the checkpoint may lack it
    (it is then initialized from ``HEAD_INIT``); tensors named in ``ignored`` are used by
    nothing and not reported; ``devices`` get the parameters (default CPU).
    Returns a ``LoadReport``; ValueError naming the tensor for a wrong shape or dtype, or
    NaN or infinite values.
    """
    devices = devices or cpu()
    loaded, missing, used = [], [], set(ignored)
    for param, names in _tied_groups(net):
        found = [(name, source_name_of(name)) for name in names]
        found = [(name, source) for name, source in found if source in tensors]
        if not found:
            missing.extend(names)
            param.initialize(default_init=HEAD_INIT, ctx=devices)
            continue
        arrays = [_checked(name, param.shape, source, tensors[source]) for name, source in found]
        for (_, source), array in zip(found[1:], arrays[1:]):
            if not np.array_equal(array, arrays[0]):
                raise ValueError(f'tensors {found[0][1]!r} and {source!r} are tied in gluonbert '
                                 f'(one parameter) but differ in the checkpoint')
        param.initialize(init=_FromArray(arrays[0]), ctx=devices)
        loaded.extend(names)
        used.update(source for _, source in found)
    required = [name for name in missing if not may_miss(name)]
    if required:
        raise ValueError(f'the checkpoint lacks {len(required)} tensors that gluonbert\'s '
                         f'encoder needs, for: {", ".join(required)}')
    return LoadReport(loaded, missing, sorted(set(tensors) - used))
