"""Padding-free encoding: the row-wise layers compute on a batch's valid tokens only.

A batch cut to its longest sentence is mostly padding when its sentences vary in length
(SST-2 at batch 64: 12.6 tokens on average, batches cut at 48 or more), and the dense
layers, LayerNorms and dropouts, the bulk of the encoder, would compute on every position.
Instead the valid tokens are laid out as rows (tokens, hidden), sequence after sequence (the
"unpadding" of NVIDIA's BERT and FlashAttention's variable lengths): the embeddings look up
the packed ids, every row-wise layer computes on the packed rows, ``gb_attention`` reads each
sequence's rows and computes on its own length, and the encoder's output is unpacked to
(batch, seq_len, hidden), zero at padding. Valid tokens get the numbers of the padded path
(padding keys have no weight there); only the row-wise dropouts draw other masks, their
offsets counting packed rows. Without padding it costs nothing measurable, so it is taken
wherever the kernel runs.

The host builds the two index arrays from the valid lengths (``packing_of``); the task heads
and the pretraining objective (``batch_packing``) pass them to the encoder as two more inputs.
Inside ``padded()`` they do not, e.g. to compare with an exported graph, which is traced
padded; d2l's blocks (``BERTModel``, ``BERTClassifier``) called by themselves never do.
"""
import contextlib
import contextvars

import mxnet as mx
import numpy as np

from .. import compat

# Packed rows are rounded up to a multiple of this: fewer distinct shapes for the static graph
# to re-plan and oneDNN to make kernels for (on MiniLM's SST-2 steps, 64, 16 and 1 measured
# alike); the extra rows compute on a copy of a token and get no gradient
ROWS_MULTIPLE = 64

_padded = contextvars.ContextVar('gluonbert_padded', default=False)


def enabled():
    """Whether heads pack the batches they are called with now (outside ``padded()``)."""
    return not _padded.get()


@contextlib.contextmanager
def padded():
    """A context in which heads compute on padded batches, as d2l's blocks and exported
    graphs do: the same numbers at valid tokens, the padded path's at padding."""
    token = _padded.set(True)
    try:
        yield
    finally:
        _padded.reset(token)


def packing_of(valid_lens, seq_len, multiple=ROWS_MULTIPLE):
    """``(packed, rows)`` float32 numpy arrays for sequences of ``valid_lens`` (any shape,
    flattened to the batch) padded to ``seq_len``: ``packed`` (tokens,) gives each packed row
    its position ``b * seq_len + s`` in the flattened (batch, seq_len) inputs, and ``rows``
    (batch, seq_len) each position its packed row, or ``tokens`` (one past the last row) at
    padding."""
    lengths = np.asarray(valid_lens).reshape(-1).astype(np.int64)
    total = int(lengths.sum())
    tokens = -(-total // multiple) * multiple
    valid = np.arange(seq_len)[None, :] < lengths[:, None]
    packed = np.zeros(tokens, np.float32)
    packed[:total] = np.flatnonzero(valid)
    starts = np.cumsum(lengths) - lengths
    rows = np.where(valid, starts[:, None] + np.arange(seq_len)[None, :], tokens)
    return packed, rows.astype(np.float32)


def batch_packing(block, encoder, valid_lens, seq_len):
    """``(packed, rows)`` of a batch as NDArrays beside ``valid_lens``, for ``block``, the
    outermost block, to pass to ``encoder``; ``()`` where it computes padded (inside
    ``padded()``, without lengths, or where the encoder does not ``packs()``). A hybridized
    ``block``'s cached graph serves one input structure: it is rebuilt when this changes."""
    packs = enabled() and valid_lens is not None and encoder.packs()
    compat.trace_for(block, ('packed', packs))
    if not packs:
        return ()
    # The lengths were read on the host by the input checks already
    return tuple(mx.nd.array(a, ctx=valid_lens.context)
                 for a in packing_of(valid_lens.asnumpy(), seq_len))


def encoder_inputs(packed, rows):
    """The encoder's inputs after the valid lengths: ``(packed, rows)``, or none if padded."""
    return () if packed is None else (packed, rows)


def pack(F, X, packed):
    """The packed rows of ``X`` (batch, seq_len, ...): ``packed`` from ``packing_of``."""
    return F.take(F.reshape(X, shape=(-3, -2)), packed)


def unpack(F, X, rows):
    """Packed rows ``X`` (tokens, hidden) back at their (batch, seq_len) positions, zero at
    padding (whose ``rows`` entry is one past the last row: a zero row appended)."""
    zero = F.zeros_like(F.slice_axis(X, axis=0, begin=0, end=1))
    return F.take(F.concat(X, zero, dim=0), rows)
