"""Task heads over a BERT encoder, one class per task as HF names them.

Each head shares ``bert.encoder`` (and, where it pools, ``bert.hidden``: the ``<cls>`` features
through a tanh layer, BERT's pooler) and adds a fresh output layer to initialize. Heads are
called like d2l's ``BERTClassifier``, with one tuple ``(tokens, segments, valid_lens)``, and
each has ``loss(outputs, labels)`` giving one loss per example.
"""
from mxnet.gluon import nn

from . import inputs as checks
from .legacy import LegacyHybridBlock
from .packing import batch_packing

IGNORE_LABEL = -1  # token labels of padding (and of tokens not to be scored)


def _cross_entropy(F, logits, labels):
    """Softmax cross-entropy along the last axis, one value per row."""
    return -F.pick(F.log_softmax(logits, axis=-1), labels, axis=-1)


class _Loss(LegacyHybridBlock):
    """A head's loss as a block, so that it runs on legacy operators in any npx mode.

    Called eagerly only (never hybridized), so ``fn`` may read shapes.
    """

    def __init__(self, fn, **kwargs):
        super().__init__(**kwargs)
        self._fn = fn

    def hybrid_forward(self, F, outputs, labels):
        return self._fn(F, outputs, F.cast(labels, 'float32'))


def _squared_error(F, predictions, targets):
    return F.square(predictions - targets)


def _token_cross_entropy(F, logits, labels):
    scored = labels != IGNORE_LABEL
    per_token = _cross_entropy(F, logits, F.maximum(labels, 0)) * scored
    return F.sum(per_token, axis=1) / (F.sum(scored, axis=1) + 1e-8)


def _span_cross_entropy(F, outputs, labels):
    seq_len = outputs[0].shape[1]
    positions = F.clip(labels, 0, seq_len)  # clamped; seq_len itself means "not in this text"
    inside = positions < seq_len
    total = 0
    for logits, i in zip(outputs, (0, 1)):
        where = F.reshape(F.slice_axis(positions, axis=1, begin=i, end=i + 1), shape=(-1,))
        total = total + _cross_entropy(F, logits, F.minimum(where, seq_len - 1)) * F.reshape(
            F.slice_axis(inside, axis=1, begin=i, end=i + 1), shape=(-1,))
    return total / 2


# Loss blocks are shared and never hybridized (not children of the heads)
CROSS_ENTROPY, SQUARED_ERROR = _Loss(_cross_entropy), _Loss(_squared_error)
TOKEN_CROSS_ENTROPY, SPAN_CROSS_ENTROPY = _Loss(_token_cross_entropy), _Loss(_span_cross_entropy)


class _Head(LegacyHybridBlock):
    """Shared parts: the encoder, dropout before the output layer, and the tuple input.

    With valid lengths, a head has its encoder compute on the valid tokens only (see
    ``packing``) wherever the encoder ``packs()``: the host adds the packing of each batch
    to the input tuple, ``(tokens, segments, valid_lens, packed, rows)``. Outputs at padding
    positions then come from zero encodings; inside ``packing.padded()``, from the padded
    path's.
    """

    def __init__(self, bert, dropout, pooled, **kwargs):
        super().__init__(**kwargs)
        with self.name_scope():
            self.encoder = bert.encoder
            if pooled:
                self.hidden = bert.hidden
            self.dropout = nn.Dropout(dropout)

    def _check_inputs(self, inputs):
        checks.check_input_tuple(type(self).__name__, inputs)
        self.encoder._check_inputs(*inputs)

    def _graph_inputs(self, inputs):
        tokens, _, valid_lens = inputs
        return (tuple(inputs) + batch_packing(self, self.encoder, valid_lens, tokens.shape[-1]),)

    def _pooled(self, F, *inputs):
        """BERT's pooled features of ``inputs``: the ``<cls>`` encodings (computed there
        only in the last block) through ``hidden``, then dropout."""
        return self.dropout(self.hidden(self.encoder.first_token_encoding(F, *inputs)))


class BERTForSequenceClassification(_Head):
    """Pooled features -> dropout -> ``num_labels`` logits; with ``num_labels == 1``, a
    regression (e.g. SICK relatedness) with squared-error loss, returning shape (batch,)."""

    def __init__(self, bert, num_labels, dropout=0.1, **kwargs):
        super().__init__(bert, dropout, pooled=True, **kwargs)
        if num_labels < 1:
            raise ValueError(f'num_labels={num_labels}; expected >= 1 (1 means regression)')
        self.num_labels = num_labels
        with self.name_scope():
            self.output = nn.Dense(num_labels, in_units=bert.encoder.num_hiddens)

    def hybrid_forward(self, F, inputs):
        logits = self.output(self._pooled(F, *inputs))
        return F.reshape(logits, shape=(-1,)) if self.num_labels == 1 else logits

    def loss(self, outputs, labels):
        """Cross-entropy, or squared error for regression, per example."""
        return (SQUARED_ERROR if self.num_labels == 1 else CROSS_ENTROPY)(outputs, labels)


class BERTForTokenClassification(_Head):
    """Per-token logits (batch, seq_len, num_labels), e.g. for tagging; token labels of
    ``IGNORE_LABEL`` (padding, sub-word continuations) are not scored."""

    def __init__(self, bert, num_labels, dropout=0.1, **kwargs):
        super().__init__(bert, dropout, pooled=False, **kwargs)
        self.num_labels = num_labels
        with self.name_scope():
            self.output = nn.Dense(num_labels, flatten=False, in_units=bert.encoder.num_hiddens)

    def hybrid_forward(self, F, inputs):
        return self.output(self.dropout(self.encoder(*inputs)))

    def loss(self, outputs, labels):
        """Mean cross-entropy over each sequence's scored tokens."""
        return TOKEN_CROSS_ENTROPY(outputs, labels)


class BERTForQuestionAnswering(_Head):
    """Extractive QA: start and end logits, each (batch, seq_len), masked beyond
    ``valid_lens``. Labels are (batch, 2) start/end positions; positions outside the sequence
    are clamped to ``seq_len`` and then ignored, as HF does."""

    def __init__(self, bert, dropout=0.0, **kwargs):
        super().__init__(bert, dropout, pooled=False, **kwargs)
        with self.name_scope():
            self.output = nn.Dense(2, flatten=False, in_units=bert.encoder.num_hiddens)

    def hybrid_forward(self, F, inputs):
        tokens, segments, valid_lens, *packed = inputs
        logits = self.output(self.dropout(self.encoder(tokens, segments, valid_lens, *packed)))
        # (batch, seq_len, 2) -> (2, batch, seq_len); mask padding with a large negative logit
        logits = F.transpose(logits, axes=(2, 0, 1))
        if valid_lens is not None:
            # float32 both sides: d2l's tokens are int32, its valid_lens float32
            positions = F.cast(F.contrib.arange_like(tokens, axis=1), 'float32')
            valid = F.broadcast_lesser(F.reshape(positions, shape=(1, -1)),
                                       F.reshape(F.cast(valid_lens, 'float32'), shape=(-1, 1)))
            logits = F.broadcast_add(logits, F.expand_dims((valid - 1) * 1e4, axis=0))
        # split, not logits[0]: indexing a Symbol picks an output, so it fails hybridized
        start, end = F.split(logits, num_outputs=2, axis=0, squeeze_axis=True)
        return start, end

    def loss(self, outputs, labels):
        """Mean of the start and end cross-entropies per example."""
        return SPAN_CROSS_ENTROPY(outputs, labels)


class BERTForMultipleChoice(_Head):
    """Multiple choice: inputs of shape (batch, num_choices, seq_len) (valid_lens
    (batch, num_choices)) are flattened into the batch, scored by pooled features, and
    returned as (batch, num_choices) logits."""

    def __init__(self, bert, dropout=0.1, **kwargs):
        super().__init__(bert, dropout, pooled=True, **kwargs)
        with self.name_scope():
            self.output = nn.Dense(1, in_units=bert.encoder.num_hiddens)

    def _check_inputs(self, inputs):
        checks.check_input_tuple(type(self).__name__, inputs)
        tokens, segments, valid_lens = inputs
        if tokens.ndim != 3:
            raise ValueError(f'tokens must have shape (batch_size, num_choices, seq_len), got '
                             f'{tokens.shape}')
        if valid_lens is not None and valid_lens.shape != tokens.shape[:2]:
            raise ValueError(f'valid_lens must have shape {tokens.shape[:2]} (batch_size, '
                             f'num_choices), got {valid_lens.shape}')
        checks.check_tokens_and_segments(tokens.reshape((-1, tokens.shape[2])),
                                         segments.reshape((-1, segments.shape[-1])),
                                         self.encoder.vocab_size, self.encoder.max_len)
        if valid_lens is not None:
            checks.check_valid_lens(valid_lens.reshape(-1), tokens.shape[0] * tokens.shape[1],
                                    tokens.shape[2])

    def hybrid_forward(self, F, inputs):
        tokens, segments, valid_lens, *packed = inputs
        flat = [F.reshape(x, shape=(-3, 0)) for x in (tokens, segments)]
        flat_lens = None if valid_lens is None else F.reshape(valid_lens, shape=(-1,))
        scores = self.output(self._pooled(F, *flat, flat_lens, *packed))
        return F.reshape_like(scores, F.sum(tokens, axis=2))

    def loss(self, outputs, labels):
        """Cross-entropy over the choices, per example."""
        return CROSS_ENTROPY(outputs, labels)
