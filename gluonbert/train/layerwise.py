"""Layer-wise learning-rate decay: a parameter at ``depth`` learns at
``lr * decay ** (num_layers + 2 - depth)``.

Depths count from the input, as in ELECTRA (Clark et al. 2020), over d2l's BERT names
(n = num_layers):

    depth 0      encoder.token_embedding, segment_embedding, pos_embedding, embedding_ln
                 -> decay ** (n + 2)
    depth i + 1  encoder.blks.i (block i, from 0)                -> decay ** (n + 1 - i)
    depth n + 1  hidden (the pooler: the tanh layer on <cls>)    -> decay
    depth n + 2  everything else: the task heads (output, mlm, nsp) -> 1

so the new output layer learns at the full rate, the pooler one step below it, and the top
block two steps below (ELECTRA #51: with the pooler removed but its depth kept, ELECTRA's top
block got ``decay**2`` where ``decay`` was meant; here the pooler exists, so ``decay**2`` is
right for the top block).
"""
import re

_EMBEDDING = re.compile(r'(^|\.)encoder\.((token_embedding|segment_embedding|embedding_ln)\.'
                        r'|pos_embedding$)')
_BLOCK = re.compile(r'(^|\.)encoder\.blks\.(\d+)\.')
_POOLER = re.compile(r'(^|\.)hidden\.')
_ENCODER = re.compile(r'(^|\.)encoder\.')


def count_layers(names):
    """The number of Transformer blocks among ``names`` (highest ``encoder.blks.<i>`` + 1)."""
    return max((int(m.group(2)) for name in names if (m := _BLOCK.search(name))),
               default=-1) + 1


def layer_depths(names, num_layers=None):
    """``{name: depth}`` for structural parameter names (see the module's table).

    ``num_layers`` defaults to ``count_layers(names)``.
    """
    found = count_layers(names)
    if num_layers is None:
        num_layers = found
    elif num_layers < found:
        raise ValueError(f'num_layers={num_layers}, but parameters of encoder block '
                         f'{found - 1} exist; expected num_layers >= {found}')
    depths = {}
    for name in names:
        if (block := _BLOCK.search(name)):
            depths[name] = int(block.group(2)) + 1
        elif _EMBEDDING.search(name):
            depths[name] = 0
        elif _POOLER.search(name):
            depths[name] = num_layers + 1
        elif _ENCODER.search(name):
            raise ValueError(f'parameter {name!r} is in the encoder but neither an embedding '
                             f'nor in a block encoder.blks.<i>; cannot give it a depth')
        else:
            depths[name] = num_layers + 2
    return depths


def layerwise_multipliers(names, decay, num_layers=None):
    """``{name: (depth, lr multiplier)}``, the multiplier ``decay ** (num_layers + 2 - depth)``."""
    if not 0 < decay <= 1:
        raise ValueError(f'layerwise_decay={decay}; expected a value in (0, 1]')
    if num_layers is None:
        num_layers = count_layers(names)
    depths = layer_depths(names, num_layers)
    return {name: (depth, decay ** (num_layers + 2 - depth)) for name, depth in depths.items()}
