"""The Transformer encoder block of d2l (post-LayerNorm), in the sequence-first layout."""
from mxnet.gluon import nn

from . import dense
from .attention import MultiHeadAttention, uses_kernel
from .dropout import dropout
from .layer_norm import layer_norm
from .legacy import LegacyHybridBlock

ACTIVATIONS = ('relu', 'gelu')


def activate(F, X, activation):
    """ReLU (d2l) or the exact, erf-based GELU (BERT)."""
    if activation == 'relu':
        return F.Activation(X, act_type='relu')  # oneDNN's, faster than F.relu
    return F.LeakyReLU(X, act_type='gelu')


def check_activation(activation):
    if activation not in ACTIVATIONS:
        raise ValueError(f'activation={activation!r} is not supported; expected one of '
                         f'{ACTIVATIONS}')


class PositionWiseFFN(LegacyHybridBlock):
    """Two dense layers applied at every position, as d2l's (``dense1``, ``dense2``)."""

    def __init__(self, ffn_num_hiddens, ffn_num_outputs, activation='relu', **kwargs):
        super().__init__(**kwargs)
        check_activation(activation)
        self.activation = activation
        with self.name_scope():
            self.dense1 = nn.Dense(ffn_num_hiddens, flatten=False, in_units=ffn_num_outputs)
            self.dense2 = nn.Dense(ffn_num_outputs, flatten=False, in_units=ffn_num_hiddens)

    def hybrid_forward(self, F, X):
        hidden = activate(F, dense.apply(F, self.dense1, X), self.activation)
        return dense.apply(F, self.dense2, hidden)


class AddNorm(LegacyHybridBlock):
    """Residual connection followed by layer normalization: ``ln(dropout(Y) + X)``."""

    def __init__(self, dropout, num_hiddens=0, layer_norm_eps=1e-5, **kwargs):
        super().__init__(**kwargs)
        with self.name_scope():
            self.dropout = nn.Dropout(dropout)
            self.ln = nn.LayerNorm(epsilon=layer_norm_eps, in_channels=num_hiddens)

    def hybrid_forward(self, F, X, Y):
        # The output feeds the next dense layer and a residual: a bfloat16 twin for the former
        return layer_norm(F, self.ln, dropout(F, self.dropout, Y, self.ln.gamma) + X, twin=True)


class TransformerEncoderBlock(LegacyHybridBlock):
    """d2l's encoder block: attention, add & norm, feed-forward, add & norm.

    Input and output have shape (seq_len, batch, num_hiddens); ``mask`` comes from
    ``attention.attention_mask``. With ``rows`` (see ``MultiHeadAttention``), they are packed
    tokens (tokens, num_hiddens) instead.
    """

    def __init__(self, num_hiddens, ffn_num_hiddens, num_heads, dropout, use_bias=False,
                 activation='relu', layer_norm_eps=1e-5, **kwargs):
        super().__init__(**kwargs)
        with self.name_scope():
            self.attention = MultiHeadAttention(num_hiddens, num_heads, dropout, use_bias)
            self.addnorm1 = AddNorm(dropout, num_hiddens, layer_norm_eps)
            self.ffn = PositionWiseFFN(ffn_num_hiddens, num_hiddens, activation)
            self.addnorm2 = AddNorm(dropout, num_hiddens, layer_norm_eps)

    def hybrid_forward(self, F, X, mask=None, rows=None):
        Y = self.addnorm1(X, self.attention(X, mask, rows))
        return self.addnorm2(Y, self.ffn(Y))

    def first_tokens(self, F, X, mask=None, rows=None):
        """The block's output at each sequence's first token only, (batch, num_hiddens), for
        a parent's ``hybrid_forward``: the attention reads every position, and on
        ``gb_attention`` only the first ones query; the residuals, LayerNorms and feed-forward
        compute at the first tokens."""
        if rows is None:  # (seq_len, batch, hidden): position 0 of every sequence
            def first(Z):
                return F.reshape(F.slice_axis(Z, axis=0, begin=0, end=1), shape=(-3, 0))
        else:  # packed: the rows of the sequences' first tokens
            def first(Z):
                return F.take(Z, F.reshape(F.slice_axis(rows, axis=1, begin=0, end=1),
                                           shape=(-1,)))
        attended = (self.attention.first_queries(F, X, mask, rows)
                    if uses_kernel(self.attention) else first(self.attention(X, mask, rows)))
        Y = self.addnorm1(first(X), attended)
        return self.addnorm2(Y, self.ffn(Y))
