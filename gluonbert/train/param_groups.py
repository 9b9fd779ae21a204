"""Parameter groups: a learning-rate and a weight-decay multiplier per name pattern, frozen
parameters, no decay for biases and LayerNorm, and the table that shows what each got.

MXNet applies ``Parameter.lr_mult`` / ``wd_mult`` silently and ignores a multiplier put on a
name that does not exist (mxnet #9511, #15718); here a pattern that matches nothing, or a
parameter claimed by two groups, is an error, and ``format_table`` prints every parameter's
effective rate.
"""
import re
from dataclasses import dataclass

from .layerwise import layerwise_multipliers

# BERT decays neither biases nor LayerNorm's gamma and beta
NO_DECAY = r'(^|\.)(bias|beta|gamma)$'
_GROUP_KEYS = ('lr_mult', 'wd_mult')


@dataclass(frozen=True)
class ParamSetting:
    """What one parameter gets: its group's pattern (None when in no group), its depth for
    layer-wise decay (None without it), the multipliers and whether it is frozen."""
    name: str
    shape: tuple
    group: str = None
    depth: int = None
    lr_mult: float = 1.0
    wd_mult: float = 1.0
    frozen: bool = False


def _compile(pattern, argument):
    try:
        return re.compile(pattern)
    except re.error as error:
        raise ValueError(f'{argument}={pattern!r} is not a regular expression: {error}') from None


def _check_groups(groups):
    items = list(groups.items()) if isinstance(groups, dict) else list(groups)
    checked = []
    for item in items:
        if not (isinstance(item, tuple) and len(item) == 2 and isinstance(item[1], dict)):
            raise ValueError(f'groups entry {item!r}; expected pattern -> '
                             f'{{"lr_mult": ..., "wd_mult": ...}}')
        pattern, options = item
        unknown = set(options) - set(_GROUP_KEYS)
        if unknown:
            raise ValueError(f'groups[{pattern!r}] has unknown keys {sorted(unknown)}; '
                             f'expected {list(_GROUP_KEYS)}')
        lr_mult = options.get('lr_mult', 1.0)
        if not lr_mult > 0:
            raise ValueError(f'groups[{pattern!r}]["lr_mult"]={lr_mult}; expected a positive '
                             f'number (freeze parameters with freeze=pattern instead)')
        wd_mult = options.get('wd_mult', 1.0)
        if not wd_mult >= 0:
            raise ValueError(f'groups[{pattern!r}]["wd_mult"]={wd_mult}; expected >= 0')
        checked.append((pattern, _compile(pattern, f'groups[{pattern!r}]'), lr_mult, wd_mult))
    return checked


def _matching(regex, names, argument, pattern):
    matched = [name for name in names if regex.search(name)]
    if not matched:
        shown = ', '.join(list(names)[:6])
        raise ValueError(f'{argument}={pattern!r} matches no parameter; names look like '
                         f'{shown}, ...')
    return matched


def resolve(named, groups=None, *, no_decay=NO_DECAY, layerwise_decay=None, num_layers=None,
            freeze=None):
    """The ``ParamSetting`` of every parameter of ``named`` (``{name: Parameter}``).

    ``groups``: ``{pattern: {'lr_mult': m, 'wd_mult': d}}`` (or a list of pairs); patterns are
    regular expressions searched in structural names (``'encoder|hidden'``, ``'^output\\.'``).
    ``no_decay``: names whose weight decay is 0 whatever their group (None: decay all).
    ``layerwise_decay``: multiply each lr_mult by ``decay ** (num_layers + 2 - depth)``.
    ``freeze``: a pattern; matching parameters get ``grad_req='null'``. Parameters already
    at ``grad_req='null'`` count as frozen too.
    """
    names = list(named)
    group_of, mults = {}, {}
    for pattern, regex, lr_mult, wd_mult in _check_groups(groups or {}):
        for name in _matching(regex, names, 'groups pattern', pattern):
            if name in group_of:
                raise ValueError(f'parameter {name!r} matches two groups, {group_of[name]!r} '
                                 f'and {pattern!r}; expected each parameter in one group')
            group_of[name], mults[name] = pattern, (lr_mult, wd_mult)
    frozen = {name for name, param in named.items() if param.grad_req == 'null'}
    if freeze is not None:
        frozen.update(_matching(_compile(freeze, 'freeze'), names, 'freeze', freeze))
    no_decay_regex = None if no_decay is None else _compile(no_decay, 'no_decay')
    layers = (layerwise_multipliers(names, layerwise_decay, num_layers)
              if layerwise_decay is not None else {})
    settings = []
    for name, param in named.items():
        lr_mult, wd_mult = mults.get(name, (1.0, 1.0))
        depth, layer_mult = layers.get(name, (None, 1.0))
        if no_decay_regex is not None and no_decay_regex.search(name):
            wd_mult = 0.0
        settings.append(ParamSetting(name, tuple(param.shape), group_of.get(name), depth,
                                     lr_mult * layer_mult, wd_mult, name in frozen))
    return settings


def apply(named, settings):
    """Set ``lr_mult``, ``wd_mult`` and, for frozen parameters, ``grad_req='null'``."""
    for setting in settings:
        param = named[setting.name]
        param.lr_mult, param.wd_mult = setting.lr_mult, setting.wd_mult
        if setting.frozen:
            param.grad_req = 'null'


def format_table(settings, lr, wd):
    """A text table of every parameter's group, depth, effective lr and wd.

    ``lr`` is the learning rate at the schedule's peak (the schedule scales it every update).
    """
    rows = [('parameter', 'shape', 'group', 'depth', 'lr', 'wd')]
    for s in settings:
        rows.append((s.name, 'x'.join(map(str, s.shape)), s.group or '-',
                     '-' if s.depth is None else str(s.depth),
                     'frozen' if s.frozen else f'{lr * s.lr_mult:.3g}',
                     '-' if s.frozen else f'{wd * s.wd_mult:.3g}'))
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    lines = ['  '.join(cell.ljust(width) for cell, width in zip(row, widths)).rstrip()
             for row in rows]
    lines.insert(1, '  '.join('-' * width for width in widths))
    trainable = sum(not s.frozen for s in settings)
    lines.append(f'{trainable} trainable, {len(settings) - trainable} frozen; lr is the peak '
                 f'of the schedule (base lr {lr:.3g}), wd the decoupled or L2 coefficient '
                 f'(base {wd:.3g})')
    return '\n'.join(lines)
