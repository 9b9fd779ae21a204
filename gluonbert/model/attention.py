"""Multi-head self-attention with d2l's parameters and MXNet's fused attention kernels.

d2l's ``MultiHeadAttention`` owns ``W_q``, ``W_k``, ``W_v``, ``W_o``; we keep them, so d2l
checkpoints load, but compute in the sequence-first layout (seq_len, batch, hidden) that
``interleaved_matmul_selfatt_*`` expect: no per-head transposes, one kernel for Q.K^T (with
the 1/sqrt(d) scaling) and one for weights.V, and both export to ONNX.
"""
from mxnet.gluon import nn

from .legacy import LegacyHybridBlock


class MultiHeadAttention(LegacyHybridBlock):
    """Self-attention over ``X`` of shape (seq_len, batch, num_hiddens).

    ``lengths`` has shape (batch * num_heads, seq_len), int32: the number of keys each query
    may attend to (see ``attention_lengths``), or None to attend to every key.
    """

    def __init__(self, num_hiddens, num_heads, dropout, use_bias=False, **kwargs):
        super().__init__(**kwargs)
        if num_hiddens % num_heads:
            raise ValueError(f'num_hiddens={num_hiddens} must be divisible by '
                             f'num_heads={num_heads}')
        self.num_heads = num_heads
        with self.name_scope():
            for name in ('W_q', 'W_k', 'W_v', 'W_o'):
                setattr(self, name, nn.Dense(num_hiddens, use_bias=use_bias, flatten=False,
                                             in_units=num_hiddens))
            self.dropout = nn.Dropout(dropout)

    def hybrid_forward(self, F, X, lengths=None):
        heads = self.num_heads
        # Interleave per head: [q_0, k_0, v_0, q_1, k_1, v_1, ...], the layout of the fused ops
        q, k, v = (F.reshape(proj(X), shape=(0, 0, heads, 1, -1))
                   for proj in (self.W_q, self.W_k, self.W_v))
        qkv = F.reshape(F.concat(q, k, v, dim=3), shape=(0, 0, -1))
        scores = F.contrib.interleaved_matmul_selfatt_qk(qkv, heads=heads)
        if lengths is None:
            weights = F.softmax(scores, axis=-1)
        else:
            weights = F.softmax(scores, lengths, axis=-1, use_length=True)
        context = F.contrib.interleaved_matmul_selfatt_valatt(
            qkv, self.dropout(weights), heads=heads)
        return self.W_o(context)


def attention_lengths(F, valid_lens, seq_first, num_heads):
    """Expand ``valid_lens`` (batch,) to the (batch * num_heads, seq_len) int32 softmax lengths.

    Row ``b * num_heads + h`` belongs to head ``h`` of sequence ``b``, the order of the fused
    kernels (and of d2l's ``valid_lens.repeat(num_heads, axis=0)``).
    """
    per_head = F.reshape(F.tile(F.reshape(valid_lens, shape=(-1, 1)), reps=(1, num_heads)),
                         shape=(-1, 1))
    # seq_first[:, :1] has one row per position; its transpose gives the (1, seq_len) shape
    like = F.transpose(F.slice_axis(seq_first, axis=1, begin=0, end=1))
    return F.cast(F.broadcast_like(per_head, like, lhs_axes=(1,), rhs_axes=(1,)), 'int32')
