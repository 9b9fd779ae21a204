"""The encoder's dense layers, on gluonbert's ``gb_dense`` kernel under bfloat16 AMP on CPUs.

AMP runs a dense layer as MXNet's ``FullyConnected`` on bfloat16 inputs, which MXNet 1.9.1
computes with oneDNN 2.4's inner product; ``gb_dense`` computes the same product on oneDNN 3's
matmul, whose AMX kernels run BERT-base's dense layers 1.3-1.5x faster, forward and backward
(``gluonbert.ops``). In float32, or without the kernel, they stay ``FullyConnected``: the
parameters and the graph ONNX export sees are d2l's.
"""
import numpy as np

from .. import compat, ops
from .legacy import bfloat16_twin, param_value

# MXNet's name for bfloat16 (``mxnet.contrib.amp.amp.bfloat16``): numpy has none
BFLOAT16 = np.dtype([('bfloat16', np.uint16)])


def uses_kernel(dense):
    """Whether an ``nn.Dense`` computes on ``gb_dense`` in graphs built now: bfloat16 AMP is on
    (on CPUs AMP means bfloat16) and the kernel is usable for its weight."""
    return compat.amp_initialized() and ops.usable_for(dense.weight, 'gb_dense')


def apply(F, dense, X):
    """``dense(X)`` for an ``nn.Dense`` without activation and with ``flatten=False``, inside
    a parent's ``hybrid_forward``: on ``gb_dense`` where ``uses_kernel(dense)``."""
    if not uses_kernel(dense):
        return dense(bfloat16_twin(X))
    bias = None if dense.bias is None else param_value(F, dense.bias, X)
    return product(F, X, param_value(F, dense.weight, X), bias)


def product(F, X, weight, bias):
    """``X . weight^T + bias`` over ``X``'s last axis on ``gb_dense``, in bfloat16 as AMP
    would cast ``FullyConnected``'s inputs (``X``'s bfloat16 twin where one is kept)."""
    twin = bfloat16_twin(X)
    inputs = [twin if twin is not X else F.amp_cast(X, dtype=BFLOAT16),
              F.amp_cast(weight, dtype=BFLOAT16)]
    if bias is not None:
        inputs.append(F.amp_cast(bias, dtype=BFLOAT16))
    return F.gb_dense(*inputs, no_bias=bias is None)
