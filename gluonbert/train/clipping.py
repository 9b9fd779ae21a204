"""Global gradient norm across devices, for clipping and for the non-finite guard.

After the reduction across devices every device holds the same summed gradient, so the norm
counts each parameter once, on its first device (``clip_global_norm`` over every device's
copy overcounts, mxnet #12859). Gradients are still multiplied by the loss scale and not yet
divided by the batch size; ``rescale`` (``1 / (batch_size * loss_scale)``) turns the norm
into the true one before it is compared with the threshold (mxnet #15738).
"""
import math

import mxnet as mx
import numpy as np

from .. import ops


def _legacy(array):
    return array.as_nd_ndarray() if isinstance(array, mx.np.ndarray) else array


def global_norm(params, rescale=1.0):
    """The L2 norm of the gradients of ``params`` (first device's copy), times ``rescale``.

    Returns a Python float: ``inf`` or ``nan`` when a gradient is not finite.
    """
    grads = [_legacy(p.list_grad()[0]) for p in params]
    if not grads:
        return 0.0
    if _kernel_applies(grads):
        # One threaded pass over every gradient, summed in double (gluonbert.ops); MXNet's
        # multi_sum_sq sums each array on one core, in float32
        total = mx.nd.gb_sum_sq(*grads, num_arrays=len(grads))
        return math.sqrt(float(total.asscalar())) * rescale
    squares = []
    for begin in range(0, len(grads), 64):  # multi_sum_sq takes a bounded number of inputs
        chunk = grads[begin:begin + 64]
        squares.append(mx.nd.multi_sum_sq(*chunk, num_arrays=len(chunk)).sum())
    total = squares[0] if len(squares) == 1 else mx.nd.add_n(*squares)
    return math.sqrt(float(total.asscalar())) * rescale


def _kernel_applies(grads):
    """Whether ``gb_sum_sq`` can sum ``grads``: dense float32 arrays on one CPU device."""
    return ops.enabled('gb_sum_sq') and all(
        g.context == grads[0].context and g.context.device_type == 'cpu'
        and g.dtype == np.float32 and g.stype == 'default' for g in grads)


def clip_factor(norm, max_norm):
    """The factor that brings a gradient of norm ``norm`` down to ``max_norm`` (1 if below)."""
    if max_norm is None or norm <= max_norm:
        return 1.0
    return max_norm / norm
