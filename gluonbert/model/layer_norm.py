"""LayerNorm on gluonbert's fast kernel where it can run, else MXNet's own operator.

The block stays an ``nn.LayerNorm`` (its ``gamma`` and ``beta`` keep d2l's names); only the
operator changes: ``gb_layer_norm`` (see ``gluonbert.ops``) on CPU, computing in float32 (on
float32 or bfloat16 data), with a backward ~10x faster than MXNet 1.9.1's. Elsewhere (GPU,
ONNX export, library not built) the block computes as usual, with the same numbers.
"""
from .. import compat, ops
from .legacy import in_call, param_value, share_bfloat16_twin


def layer_norm(F, ln, X, twin=False):
    """``ln(X)`` for an ``nn.LayerNorm`` ``ln`` normalizing the last axis. With ``twin``,
    under bfloat16 AMP, the kernel also rounds the result to bfloat16 for the dense layers
    that read it (``legacy.bfloat16_twin``), in place of AMP's cast."""
    if not _fast_kernel_applies(ln):
        return ln(X)
    # Through identity, whose backward honours grad_req='add' (gradient accumulation): an
    # extension library's operator always overwrites its outputs
    gamma, beta = (F.identity(param_value(F, p, X)) for p in (ln.gamma, ln.beta))
    eps = compat.layer_norm_options(ln)['eps']
    # X as AMP leaves it, float32 or bfloat16: the kernel widens it
    if not (twin and compat.amp_initialized() and in_call()):
        return F.gb_layer_norm(X, gamma, beta, eps=eps)[0]
    outputs = F.gb_layer_norm(X, gamma, beta, eps=eps, twin=1)
    out = outputs[0]  # one object: each indexing of a symbol's outputs makes a new one
    share_bfloat16_twin(out, outputs[3])
    return out


def _fast_kernel_applies(ln):
    kwargs = compat.layer_norm_options(ln)
    return (kwargs['axis'] == -1 and kwargs['center'] and kwargs['scale']
            and ops.usable_for(ln.gamma, 'gb_layer_norm'))
