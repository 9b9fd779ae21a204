"""Parameters by structural name: ``encoder.blks.0.attention.W_q.weight``, not
``bertmodel0_bertencoder0_transformerencoderblock0_multiheadattention0_dense0_weight``.

Structural names follow the attribute path from the block, are the same in every process
and for every instance, and are what ``save_parameters`` writes; parameter groups, layer-wise
decay, staleness reports and checkpoints all speak them.
"""
from mxnet import gluon

from .. import compat


def named_parameters(source):
    """An ordered ``{name: Parameter}`` for a Block, a list of Blocks, or a name->Parameter dict.

    A parameter shared between blocks (the classifier's encoder, a tied decoder) appears once,
    under its first name. For a list of blocks, each block's names are used as they are, so
    ``[classifier, bert]`` gives the classifier's names and then ``mlm.*`` and ``nsp.*`` from
    ``bert``; two different parameters under one name is an error.
    """
    if isinstance(source, gluon.Block):
        items = list(compat.structural_parameters(source).items())
    elif isinstance(source, (list, tuple)) and source and all(
            isinstance(block, gluon.Block) for block in source):
        items = [item for block in source
                 for item in compat.structural_parameters(block).items()]
    elif isinstance(source, (dict, gluon.ParameterDict)):
        items = list(source.items())
    else:
        raise TypeError(f'params is a {type(source).__name__}; expected a Block, a list of '
                        f'Blocks, or a dict of name -> Parameter')
    named, seen = {}, set()
    for name, param in items:
        if not isinstance(param, gluon.Parameter):
            raise TypeError(f'params[{name!r}] is a {type(param).__name__}; expected a '
                            f'gluon.Parameter')
        if id(param) in seen:
            continue
        if name in named:
            raise ValueError(f'two different parameters are named {name!r}; pass blocks '
                             f'whose parameter names do not collide, or a dict')
        named[name] = param
        seen.add(id(param))
    if not named:
        raise ValueError('params holds no parameters')
    return named
