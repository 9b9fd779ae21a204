"""Dropout on gluonbert's counter-based kernel where it can run, else MXNet's own operator.

``gb_dropout`` (see ``gluonbert.ops``) draws its mask from a hash of (key, offset) and
recomputes it in the backward instead of storing it. MXNet 1.9.1's extension API (``lib_api.h``)
passes an operator no train/inference flag (MXNet's own operators get ``OpContext.is_train`` at
run time), and Gluon traces a hybridized block once, into one ``CachedOp`` that serves both
modes, so choosing the operator by ``autograd.is_training()`` at trace time would bake one mode
in. Instead the graph computes the mode as it runs: ``training_flag`` is MXNet's own Dropout
applied to a one, which is 1 at inference and 0 or 2 in training, and the kernels take it as an
input (the key of the mask comes from MXNet's seeded random states, so ``mx.random.seed``
reproduces it).
"""

from .. import compat, ops
from .legacy import once_per_call


def training_flag(F, like):
    """A (1,) array, 1 at inference and 0 or 2 in training (MXNet's Dropout of a one at rate
    0.5): the mode as the graph runs, for kernels that lib_api does not tell; one per model
    call, shared by its blocks. ``like`` gives the device when computing imperatively."""
    def make():
        # A one made from ``like``'s first element: on its device, and no operator without
        # inputs, which MXNet 1.9.1's AMP cannot wrap in a symbol (F.ones fails under AMP)
        first = F.slice_axis(F.reshape(like, shape=(-1,)), axis=0, begin=0, end=1)
        return F.Dropout(F.ones_like(first), p=0.5)
    return once_per_call(F, 'training_flag', make)


def kernel_applies(block, param):
    """Whether ``block`` (an ``nn.Dropout``) may run on ``gb_dropout`` in a graph computing
    with ``param``: the kernels are usable there (CPU, not exporting) and the block
    drops whole elements (no ``axes``) at a rate in (0, 1)."""
    rate, axes = compat.dropout_options(block)
    return 0 < rate < 1 and not axes and ops.usable_for(param, 'gb_dropout')


def dropout(F, block, X, param):
    """``block(X)`` for an ``nn.Dropout`` ``block`` inside a block that owns ``param``."""
    if not kernel_applies(block, param):
        return block(X)
    # The kernel takes X as AMP leaves it, float32 or bfloat16, and answers in float32
    return F.gb_dropout(X, training_flag(F, X), p=compat.dropout_options(block)[0])[0]
