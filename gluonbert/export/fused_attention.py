"""Attention traced for export with the fused Q/K/V weight as a constant.

``MultiHeadAttention`` keeps d2l's separate ``W_q``, ``W_k``, ``W_v`` (so d2l checkpoints
load) and interleaves the three weights per head inside its graph, at every call, for one
Q/K/V product. In the exported graph that interleaved weight is computed once here and stored
as one initializer: no weight reshuffling at run time, and a constant weight that int8
quantization can take. Only the traced graph changes; verification still compares it with the
model's own forward.
"""
import contextlib
import types

import mxnet as mx
import numpy as np

from .. import compat
from ..model.attention import MultiHeadAttention, attend


@contextlib.contextmanager
def fused_qkv_projections(model):
    """While tracing inside the block, every ``MultiHeadAttention`` of ``model`` projects
    Q, K and V with one dense layer; yields the dict of the fused weights (by symbol name),
    which the caller adds to the exported parameters."""
    fused = {}
    blocks = [block for block in _walk(model) if isinstance(block, MultiHeadAttention)]
    try:
        for block in blocks:
            fused.update(_fused_parameters(block))
            block.hybrid_forward = types.MethodType(_fused_forward, block)
        yield fused
    finally:
        for block in blocks:
            block.__dict__.pop('hybrid_forward', None)


def _walk(block):
    yield block
    for child in compat.child_blocks(block).values():
        yield from _walk(child)


def _names(block):
    return f'{block.prefix}qkv_weight', f'{block.prefix}qkv_bias'


def _fused_parameters(block):
    """The Q, K, V weights (and biases) interleaved per head: rows q_0, k_0, v_0, q_1, ..."""
    heads, projections = block.num_heads, (block.W_q, block.W_k, block.W_v)
    weight = np.stack([_value(p.weight) for p in projections])         # (3, units, in)
    units, in_units = weight.shape[1:]
    weight = weight.reshape(3, heads, units // heads, in_units).transpose(1, 0, 2, 3)
    weight_name, bias_name = _names(block)
    fused = {weight_name: mx.nd.array(weight.reshape(3 * units, in_units))}
    if block.W_q.bias is not None:
        bias = np.stack([_value(p.bias) for p in projections])         # (3, units)
        bias = bias.reshape(3, heads, units // heads).transpose(1, 0, 2)
        fused[bias_name] = mx.nd.array(bias.reshape(3 * units))
    return fused


def _value(param):
    return param.data(param.list_ctx()[0]).asnumpy()


def _fused_forward(self, F, X, mask=None, rows=None):
    """``MultiHeadAttention.hybrid_forward`` with the fused weight as a constant."""
    weight_name, bias_name = _names(self)
    units = compat.dense_units(self.W_q)[0]
    has_bias = self.W_q.bias is not None
    qkv = F.FullyConnected(X, F.var(weight_name), F.var(bias_name) if has_bias else None,
                           num_hidden=3 * units, no_bias=not has_bias, flatten=False)
    return self.W_o(attend(F, qkv, mask, self.num_heads, self.dropout, rows=rows))
