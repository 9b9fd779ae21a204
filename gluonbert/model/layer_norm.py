"""LayerNorm on gluonbert's fast kernel where it can run, else MXNet's own operator.

The block stays an ``nn.LayerNorm`` (its ``gamma`` and ``beta`` keep d2l's names); only the
operator changes: ``gb_layer_norm`` (see ``gluonbert.ops``) on CPU in float32 (under bfloat16
AMP too), with a backward ~10x faster than MXNet 1.9.1's. Elsewhere (GPU, ONNX export,
library not built) the block computes as usual, with the same numbers.
"""
from .. import compat, ops
from .legacy import param_value


def layer_norm(F, ln, X):
    """``ln(X)`` for an ``nn.LayerNorm`` ``ln`` normalizing the last axis."""
    if not _fast_kernel_applies(ln):
        return ln(X)
    # Through identity, whose backward honours grad_req='add' (gradient accumulation): an
    # extension library's operator always overwrites its outputs
    gamma, beta = (F.identity(param_value(F, p, X)) for p in (ln.gamma, ln.beta))
    return F.gb_layer_norm(ops.float32(F, X), gamma, beta, eps=compat.layer_norm_options(ln)['eps'])[0]


def _fast_kernel_applies(ln):
    kwargs = compat.layer_norm_options(ln)
    return (kwargs['axis'] == -1 and kwargs['center'] and kwargs['scale']
            and ops.usable_for(ln.gamma, 'gb_layer_norm'))
