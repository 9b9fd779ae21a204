"""Multi-head self-attention with d2l's parameters and MXNet's fused attention kernels.

d2l's ``MultiHeadAttention`` owns ``W_q``, ``W_k``, ``W_v``, ``W_o``; we keep them, so d2l
checkpoints load, but compute in the sequence-first layout (seq_len, batch, hidden) that
``interleaved_matmul_selfatt_*`` expect: the three weights are interleaved per head inside
the graph (a copy of the weights, not of the activations) for one Q/K/V product, one kernel
computes Q.K^T with the 1/sqrt(d) scaling and one weights.V, and all of it exports to ONNX.
On CPU (in float32, or bfloat16 under AMP) one gluonbert kernel, ``gb_attention`` (see
``gluonbert.ops``), computes all of it after the projection instead: scores, mask, softmax,
dropout and weighted sum, threaded over sequences and heads, where MXNet 1.9.1 runs its fused
operators on one core.
"""
from mxnet.gluon import nn

from .. import ops
from .. import compat
from . import dense
from .dropout import training_flag
from .legacy import LegacyHybridBlock, bfloat16_twin, param_value

# Added to the scores of padding keys; d2l's masked_softmax writes -1e6 there. Either way
# exp() underflows to exactly 0, so padding gets no weight.
MASK_VALUE = -1e6


class MultiHeadAttention(LegacyHybridBlock):
    """Self-attention over ``X`` of shape (seq_len, batch, num_hiddens).

    ``mask`` has shape (batch * num_heads, seq_len, seq_len): 0 for keys a query may attend
    to, ``MASK_VALUE`` for padding (see ``attention_mask``), or None to attend to every key.
    Where ``uses_kernel(block)``, it may also be the (batch,) valid lengths, which is what
    ``BERTEncoder`` passes then; and with the lengths, ``rows`` (batch, seq_len) may say that
    ``X`` holds packed tokens (tokens, num_hiddens), sequence b's first in row ``rows[b, 0]``
    (see ``packing``).
    """

    def __init__(self, num_hiddens, num_heads, dropout, use_bias=False, **kwargs):
        super().__init__(**kwargs)
        if num_hiddens % num_heads:
            raise ValueError(f'num_hiddens={num_hiddens} is not divisible by num_heads='
                             f'{num_heads}; each head gets num_hiddens / num_heads features')
        self.num_heads = num_heads
        with self.name_scope():
            for name in ('W_q', 'W_k', 'W_v', 'W_o'):
                setattr(self, name, nn.Dense(num_hiddens, use_bias=use_bias, flatten=False,
                                             in_units=num_hiddens))
            self.dropout = nn.Dropout(dropout)

    def hybrid_forward(self, F, X, mask=None, rows=None):
        return dense.apply(F, self.W_o, attend(F, self._qkv(F, X), mask, self.num_heads,
                                               self.dropout, kernel=uses_kernel(self),
                                               rows=rows))

    def first_queries(self, F, X, mask=None, rows=None):
        """``self(X, mask, rows)`` at each sequence's first position, (batch, num_hiddens),
        for a parent's ``hybrid_forward`` where ``uses_kernel(self)``: only those positions
        query, and the output projection computes on them alone."""
        return dense.apply(F, self.W_o, attend(F, self._qkv(F, X), mask, self.num_heads,
                                               self.dropout, kernel=True, rows=rows,
                                               first=True))

    def _qkv(self, F, X):
        """The Q, K, V projection of ``X`` in one product, interleaved per head."""
        weight, bias = self._interleaved_qkv(F, X)
        if dense.uses_kernel(self.W_q):
            return dense.product(F, X, weight, bias)
        return F.FullyConnected(bfloat16_twin(X), weight, bias,
                                num_hidden=3 * compat.dense_units(self.W_q)[0],
                                no_bias=bias is None, flatten=False)

    def _interleaved_qkv(self, F, X):
        """The Q, K, V weights (and biases) interleaved per head, as the fused kernels
        expect: rows q_0, k_0, v_0, q_1, k_1, v_1, ..."""
        heads, (units, in_units) = self.num_heads, compat.dense_units(self.W_q)

        def interleave(name, per_head):
            parts = [F.reshape(param_value(F, getattr(proj, name), X),
                               shape=(heads, 1) + per_head)
                     for proj in (self.W_q, self.W_k, self.W_v)]
            return F.reshape(F.concat(*parts, dim=1), shape=(3 * units,) + per_head[1:])
        weight = interleave('weight', (units // heads, in_units))
        bias = None if self.W_q.bias is None else interleave('bias', (units // heads,))
        return weight, bias


def uses_kernel(block):
    """Whether ``block`` (a ``MultiHeadAttention``) computes on ``gb_attention`` in graphs built
    now: the kernels are usable for its parameters and its dropout drops whole elements."""
    return (not compat.dropout_options(block.dropout)[1]
            and ops.usable_for(block.W_q.weight, 'gb_attention'))


def attend(F, qkv, mask, num_heads, dropout, kernel=False, rows=None, first=False):
    """Scaled dot-product attention over interleaved ``qkv`` (seq_len, batch, 3 * hidden),
    on ``gb_attention`` if ``kernel``, which also takes a (batch,) valid-lengths ``mask``, and
    with it packed tokens: ``qkv`` (tokens, 3 * hidden) and their ``rows``. With ``first``
    (the kernel only), each sequence's first position alone queries: (batch, hidden)."""
    if (rows is not None or first) and not kernel:
        raise ValueError('packed tokens (rows=) and first-position queries need the '
                         'gb_attention kernel; see BERTEncoder.packs')
    # The kernel takes the projection as AMP leaves it, float32 or bfloat16, and answers in kind
    if rows is not None:
        return F.gb_attention(qkv, training_flag(F, qkv), mask, rows,
                              heads=num_heads, dropout=compat.dropout_options(dropout)[0],
                              masked=1, packed=1, first=int(first), mask_value=MASK_VALUE)[0]
    if kernel:
        inputs = (qkv, training_flag(F, qkv)) + (() if mask is None else (mask,))
        return F.gb_attention(*inputs, heads=num_heads, dropout=compat.dropout_options(dropout)[0],
                              masked=int(mask is not None), first=int(first),
                              mask_value=MASK_VALUE)[0]
    if compat.amp_initialized():
        # AMP leaves the projection in float16/bfloat16, but MXNet's fused kernels compute in
        # float32 on CPU, and the float32 mask would widen the scores anyway
        qkv = F.amp_cast(qkv, dtype='float32')
    scores = F.contrib.interleaved_matmul_selfatt_qk(qkv, heads=num_heads)
    if mask is not None:
        scores = scores + mask
    # A plain softmax: MXNet's length-aware softmax is several times slower on CPU
    weights = dropout(F.softmax(scores, axis=-1))
    return F.contrib.interleaved_matmul_selfatt_valatt(qkv, weights, heads=num_heads)


def attention_mask(F, valid_lens, seq_first, num_heads):
    """The additive (batch * num_heads, seq_len, seq_len) mask of ``valid_lens`` (batch,).

    Row ``b * num_heads + h`` belongs to head ``h`` of sequence ``b``, the order of the fused
    kernels (and of d2l's ``valid_lens.repeat(num_heads, axis=0)``). Built once per forward
    and shared by every block.
    """
    positions = F.cast(F.reshape(F.contrib.arange_like(seq_first, axis=0), shape=(1, -1)),
                       'float32')
    lengths = F.cast(F.reshape(valid_lens, shape=(-1, 1)), 'float32')
    padding = F.broadcast_greater_equal(positions, lengths)
    # Row b * num_heads + h: sequence b's (1, keys) row, then the same row for every query
    per_key = F.repeat(F.expand_dims(padding * MASK_VALUE, axis=1), repeats=num_heads, axis=0)
    queries = F.reshape(F.slice_axis(seq_first, axis=1, begin=0, end=1), shape=(1, -1, 1))
    return F.broadcast_like(per_key, queries, lhs_axes=(1,), rhs_axes=(1,))
