"""BERT as in d2l: ``BERTEncoder``, ``MaskLM``, ``NextSentencePred`` and ``BERTModel``.

Constructors, call signatures, return values and parameter names are d2l 1.0.3's, so a
d2l checkpoint loads with ``load_parameters`` and the numbers agree. Beyond d2l, keyword
options give real BERT's choices: GELU, a LayerNorm (and dropout) on the embeddings, the
LayerNorm epsilon, and an MLM decoder tied to the token embedding.
"""
import math
import numbers
import warnings

import mxnet as mx
from mxnet.gluon import nn

from .. import compat
from . import inputs, packing
from .attention import attention_mask, uses_kernel
from .dropout import dropout
from .layer_norm import layer_norm
from .legacy import LegacyHybridBlock, param_value
from .transformer import TransformerEncoderBlock, activate, check_activation


def check_options(vocab_size, num_hiddens, ffn_num_hiddens, num_heads, num_blks, dropout,
                  max_len, layer_norm_eps):
    """Refuse an architecture that would build but compute nonsense (a negative LayerNorm
    epsilon gives NaN everywhere, a dropout of 1 zeros every activation) or fail deep inside
    MXNet; ``config.json`` files reach the model through here too."""
    sizes = dict(vocab_size=vocab_size, num_hiddens=num_hiddens,
                 ffn_num_hiddens=ffn_num_hiddens, num_heads=num_heads, num_blks=num_blks,
                 max_len=max_len)
    for name, value in sizes.items():
        if not isinstance(value, numbers.Integral) or isinstance(value, bool) or value < 1:
            raise ValueError(f'{name}={value!r}; expected an integer >= 1')
    if num_hiddens % num_heads:
        raise ValueError(f'num_hiddens={num_hiddens} is not divisible by num_heads='
                         f'{num_heads}; each head gets num_hiddens / num_heads features')
    if not isinstance(dropout, numbers.Real) or isinstance(dropout, bool) \
            or not 0 <= dropout < 1:
        raise ValueError(f'dropout={dropout!r}; expected a probability in [0, 1)')
    if not isinstance(layer_norm_eps, numbers.Real) or isinstance(layer_norm_eps, bool) \
            or not 0 < layer_norm_eps < math.inf:
        raise ValueError(f'layer_norm_eps={layer_norm_eps!r}; expected a small positive '
                         f'number (1e-5 in d2l, 1e-12 in BERT)')


class BERTEncoder(LegacyHybridBlock):
    """BERT encoder: token + segment + learned position embeddings, then Transformer blocks.

    ``forward(tokens, segments, valid_lens)`` takes (batch, seq_len) ids and segment ids and
    (batch,) valid lengths (or None), and returns (batch, seq_len, num_hiddens). Where
    ``packs()``, it also takes ``forward(tokens, segments, valid_lens, packed, rows)``, the
    arrays of ``packing.packing_of(valid_lens, seq_len)``, and then computes on the valid
    tokens only (see ``packing``), its output zero at padding. Pooling heads call
    ``first_token_encoding`` instead, which computes the last block at ``<cls>`` only.
    """

    def __init__(self, vocab_size, num_hiddens, ffn_num_hiddens, num_heads, num_blks, dropout,
                 max_len=1000, *, activation='relu', embedding_layer_norm=False,
                 layer_norm_eps=1e-5, **kwargs):
        super().__init__(**kwargs)
        check_activation(activation)
        check_options(vocab_size, num_hiddens, ffn_num_hiddens, num_heads, num_blks, dropout,
                      max_len, layer_norm_eps)
        self.vocab_size, self.num_hiddens, self.max_len = vocab_size, num_hiddens, max_len
        self.num_heads = num_heads
        with self.name_scope():
            self.token_embedding = nn.Embedding(vocab_size, num_hiddens)
            self.segment_embedding = nn.Embedding(2, num_hiddens)
            if embedding_layer_norm:
                self.embedding_ln = nn.LayerNorm(epsilon=layer_norm_eps, in_channels=num_hiddens)
                self.embedding_dropout = nn.Dropout(dropout)
            else:
                self.embedding_ln = None
            self.blks = nn.HybridSequential()
            for _ in range(num_blks):
                self.blks.add(TransformerEncoderBlock(
                    num_hiddens, ffn_num_hiddens, num_heads, dropout, True, activation,
                    layer_norm_eps))
            # In BERT, positional embeddings are learnable; one row per position up to max_len
            self.pos_embedding = self.params.get('pos_embedding',
                                                 shape=(1, max_len, num_hiddens))

    def _check_inputs(self, tokens, segments, valid_lens=None, packed=None, rows=None):
        inputs.check_tokens_and_segments(tokens, segments, self.vocab_size, self.max_len)
        inputs.check_valid_lens(valid_lens, *tokens.shape)
        if packed is not None and (valid_lens is None or rows is None or not self.packs()):
            raise ValueError('packed tokens need valid_lens, packed and rows '
                             '(packing.packing_of) and an encoder that packs()')

    def packs(self):
        """Whether graphs built now can take packed tokens: ``gb_attention`` computes every
        block's attention (it reads each sequence's packed rows)."""
        return all(uses_kernel(blk.attention) for blk in self.blks)

    def hybrid_forward(self, F, tokens, segments, valid_lens=None, packed=None, rows=None,
                       pos_embedding=None):
        return self._encode(F, tokens, segments, valid_lens, packed, rows, pos_embedding)

    def first_token_encoding(self, F, tokens, segments, valid_lens=None, packed=None,
                             rows=None):
        """(batch, num_hiddens): ``encoder(...)[:, 0]``, the ``<cls>`` encodings that pooling
        heads read, for a parent's ``hybrid_forward``. The last block's attention reads every
        position's keys and values, but the rest of that block computes at the first tokens
        only (on ``gb_attention``, its queries too): three quarters of the block's dense-layer
        work saved, an eighth of the encoder's on a 6-layer model."""
        return self._encode(F, tokens, segments, valid_lens, packed, rows,
                            param_value(F, self.pos_embedding, tokens), first_only=True)

    def _encode(self, F, tokens, segments, valid_lens, packed, rows, pos_embedding,
                first_only=False):
        if packed is not None:
            return self._packed_encode(F, tokens, segments, valid_lens, packed, rows,
                                       pos_embedding, first_only)
        # Work sequence-first (seq_len, batch, hidden), the layout of the fused attention:
        # transposing the integer inputs is cheaper than transposing activations.
        tokens_t, segments_t = F.transpose(tokens), F.transpose(segments)
        X = self.token_embedding(tokens_t) + self.segment_embedding(segments_t)
        # Positions looked up like tokens: an embedding's backward scatters into the small
        # table, where a broadcast add's backward would reduce over the batch (slow on CPU)
        positions = F.broadcast_like(
            F.reshape(F.contrib.arange_like(tokens_t, axis=0), shape=(-1, 1)), tokens_t)
        X = X + F.Embedding(positions, F.reshape(pos_embedding, shape=(self.max_len, -1)),
                            input_dim=self.max_len, output_dim=self.num_hiddens)
        X = self._embedding_norm(F, X)
        if valid_lens is None:
            mask = None
        else:
            # gluonbert's attention kernel masks by the lengths themselves
            mask = (F.cast(valid_lens, 'float32') if self.packs()
                    else attention_mask(F, valid_lens, tokens_t, self.num_heads))
        X = self._blocks(F, X, mask, None, first_only)
        return X if first_only else F.transpose(X, axes=(1, 0, 2))

    def _packed_encode(self, F, tokens, segments, valid_lens, packed, rows, pos_embedding,
                       first_only):
        """The encoding of the packed valid tokens (see ``packing``), unpacked."""
        positions = F.broadcast_like(
            F.reshape(F.contrib.arange_like(tokens, axis=1), shape=(1, -1)), tokens)
        X = (self.token_embedding(packing.pack(F, tokens, packed))
             + self.segment_embedding(packing.pack(F, segments, packed))
             + F.Embedding(packing.pack(F, positions, packed),
                           F.reshape(pos_embedding, shape=(self.max_len, -1)),
                           input_dim=self.max_len, output_dim=self.num_hiddens))
        X = self._embedding_norm(F, X)
        X = self._blocks(F, X, F.cast(valid_lens, 'float32'), rows, first_only)
        return X if first_only else packing.unpack(F, X, rows)

    def _blocks(self, F, X, mask, rows, first_only):
        """The Transformer blocks over ``X``; with ``first_only``, the last one's output at
        each sequence's first token, (batch, num_hiddens)."""
        blocks = [self.blks[i] for i in range(len(self.blks))]
        last = blocks.pop() if first_only else None
        masking = () if mask is None else (mask,) if rows is None else (mask, rows)
        for blk in blocks:
            X = blk(*(X,) + masking)
        return X if last is None else last.first_tokens(F, X, mask, rows)

    def _embedding_norm(self, F, X):
        if self.embedding_ln is None:
            return X
        return dropout(F, self.embedding_dropout, layer_norm(F, self.embedding_ln, X),
                       self.embedding_ln.gamma)


class MaskLM(LegacyHybridBlock):
    """The masked language model head: an MLP over the encodings at ``pred_positions``.

    ``forward(X, pred_positions)``: X (batch, seq_len, num_hiddens), pred_positions
    (batch, num_preds) -> logits (batch, num_preds, vocab_size). With ``tied_embedding`` (an
    ``nn.Embedding``), the output layer shares its weight, as in HF BERT.
    """

    def __init__(self, vocab_size, num_hiddens, *, activation='relu', layer_norm_eps=1e-5,
                 num_inputs=0, tied_embedding=None, **kwargs):
        super().__init__(**kwargs)
        check_activation(activation)
        self.activation, self.num_hiddens = activation, num_hiddens
        with self.name_scope():
            self.mlp = nn.HybridSequential()
            self.mlp.add(nn.Dense(num_hiddens, flatten=False, in_units=num_inputs),
                         nn.LayerNorm(epsilon=layer_norm_eps, in_channels=num_hiddens),
                         # A tied decoder takes its (vocab_size, num_hiddens) weight from the
                         # embedding's parameters, which hold it under the same name
                         nn.Dense(vocab_size, flatten=False, in_units=num_hiddens,
                                  params=None if tied_embedding is None
                                  else tied_embedding.params))

    def _check_inputs(self, X, pred_positions):
        if X.ndim != 3:
            raise ValueError(f'X must have shape (batch_size, seq_len, num_hiddens), '
                             f'got {X.shape}')
        inputs.check_pred_positions(pred_positions, X.shape[0], X.shape[1])

    def hybrid_forward(self, F, X, pred_positions):
        # Row b of the batch pairs with each of its positions: indices (2, batch, num_preds)
        batch_idx = F.broadcast_like(
            F.reshape(F.contrib.arange_like(pred_positions, axis=0), shape=(-1, 1)),
            pred_positions)
        indices = F.stack(F.cast(batch_idx, 'int32'), F.cast(pred_positions, 'int32'))
        masked_X = F.gather_nd(X, indices)
        dense, ln, decoder = self.mlp[0], self.mlp[1], self.mlp[2]
        return decoder(layer_norm(F, ln, activate(F, dense(masked_X), self.activation)))


class NextSentencePred(LegacyHybridBlock):
    """The next sentence prediction head: a 2-way dense layer on the ``<cls>`` features."""

    def __init__(self, num_inputs=0, **kwargs):
        super().__init__(**kwargs)
        with self.name_scope():
            self.output = nn.Dense(2, in_units=num_inputs)

    def hybrid_forward(self, F, X):
        return self.output(X)


class BERTModel(LegacyHybridBlock):
    """The BERT model: encoder, MLM head and NSP head over a tanh ``hidden`` layer.

    ``forward(tokens, segments, valid_lens=None, pred_positions=None)`` returns
    ``(encoded_X, mlm_Y_hat, nsp_Y_hat)``; ``mlm_Y_hat`` is None without ``pred_positions``.
    ``tie_mlm_decoder=True`` shares the MLM output weight with the token embedding (HF BERT).
    """

    def __init__(self, vocab_size, num_hiddens, ffn_num_hiddens, num_heads, num_blks, dropout,
                 max_len=1000, *, activation='relu', embedding_layer_norm=False,
                 layer_norm_eps=1e-5, tie_mlm_decoder=False, **kwargs):
        super().__init__(**kwargs)
        self.config = dict(vocab_size=vocab_size, num_hiddens=num_hiddens,
                           ffn_num_hiddens=ffn_num_hiddens, num_heads=num_heads,
                           num_blks=num_blks, dropout=dropout, max_len=max_len,
                           activation=activation, embedding_layer_norm=embedding_layer_norm,
                           layer_norm_eps=layer_norm_eps, tie_mlm_decoder=tie_mlm_decoder)
        with self.name_scope():
            self.encoder = BERTEncoder(
                vocab_size, num_hiddens, ffn_num_hiddens, num_heads, num_blks, dropout,
                max_len, activation=activation, embedding_layer_norm=embedding_layer_norm,
                layer_norm_eps=layer_norm_eps)
            self.hidden = nn.Dense(num_hiddens, activation='tanh', in_units=num_hiddens)
            self.mlm = MaskLM(vocab_size, num_hiddens, activation=activation,
                              layer_norm_eps=layer_norm_eps, num_inputs=num_hiddens,
                              tied_embedding=self.encoder.token_embedding
                              if tie_mlm_decoder else None)
            self.nsp = NextSentencePred(num_inputs=num_hiddens)

    def _check_inputs(self, tokens, segments, valid_lens=None, pred_positions=None, packed=None,
                      rows=None):
        self.encoder._check_inputs(tokens, segments, valid_lens, packed, rows)
        if pred_positions is not None:
            inputs.check_pred_positions(pred_positions, *tokens.shape)

    def forward(self, tokens, segments, valid_lens=None, pred_positions=None, packed=None,
                rows=None):
        if valid_lens is None and pred_positions is not None and self._backend \
                and tokens.ndim == 2:
            # MXNet 1.9.1 gives a backend (hybridize_for_inference) the inputs' shapes by
            # position, a None valid_lens shifting pred_positions out: every token is valid
            valid_lens = mx.nd.full((tokens.shape[0],), tokens.shape[1], ctx=tokens.context)
        compat.trace_for(self, (valid_lens is None, pred_positions is None, packed is None))
        packing_inputs = packing.encoder_inputs(packed, rows)
        if pred_positions is not None:
            return super().forward(tokens, segments, valid_lens, pred_positions, *packing_inputs)
        # A static graph cannot output None: run without the MLM head and add it here
        with warnings.catch_warnings():  # the MLM head's parameters are unused, as intended
            warnings.filterwarnings('ignore', 'Parameter .* is not used by any computation')
            encoded_X, nsp_Y_hat = super().forward(tokens, segments, valid_lens, None,
                                                   *packing_inputs)
        return encoded_X, None, nsp_Y_hat

    def hybrid_forward(self, F, tokens, segments, valid_lens=None, pred_positions=None,
                       packed=None, rows=None):
        encoded_X = self.encoder(tokens, segments, valid_lens,
                                 *packing.encoder_inputs(packed, rows))
        # The hidden layer of the MLP classifier for next sentence prediction.
        # 0 is the index of the '<cls>' token
        cls = F.reshape(F.slice_axis(encoded_X, axis=1, begin=0, end=1), shape=(0, -1))
        nsp_Y_hat = self.nsp(self.hidden(cls))
        if pred_positions is None:
            return encoded_X, nsp_Y_hat
        return encoded_X, self.mlm(encoded_X, pred_positions), nsp_Y_hat
