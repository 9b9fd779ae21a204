"""Checks of BERT inputs, so that bad ids fail loudly instead of being clipped silently.

MXNet's ``Embedding`` and ``take`` clip out-of-range indices, and a ``valid_len`` of 0 gives
NaN attention; these checks catch both before any compute. They read the (small) integer
inputs once per outermost call.
"""
import numpy as np


def _values(name, array):
    try:
        return array.asnumpy()
    except AttributeError:
        raise TypeError(f'{name} must be an MXNet array, got {type(array).__name__}') from None


def _check_range(name, values, low, high, expected):
    """Whole numbers in [low, high): NaN, 2.5 or an out-of-range id would be truncated or
    clipped by MXNet into some other, valid id."""
    if not values.size:
        return
    with np.errstate(invalid='ignore'):
        bad = ~np.isfinite(values) | (values != np.round(values)) | (values < low) | \
            (values >= high)
    if bad.any():
        raise ValueError(f'{name} holds {values[bad].flat[0]!r}; expected {expected}')


def check_input_tuple(block_name, inputs):
    """Heads are called as d2l's ``BERTClassifier``: with one tuple of three arrays."""
    if not isinstance(inputs, (list, tuple)) or len(inputs) != 3:
        raise ValueError(f'{block_name} takes one argument, the tuple '
                         f'(tokens, segments, valid_lens)')


def check_tokens_and_segments(tokens, segments, vocab_size, max_len):
    """Shapes (batch, seq_len) alike, ids in [0, vocab_size), segments 0/1, seq_len <= max_len."""
    if tokens.ndim != 2 or 0 in tokens.shape:
        raise ValueError(f'tokens must have shape (batch_size, seq_len), both at least 1, got '
                         f'{tokens.shape}')
    if segments.shape != tokens.shape:
        raise ValueError(f'segments shape {segments.shape} differs from tokens shape '
                         f'{tokens.shape}; expected the same (batch_size, seq_len)')
    if tokens.shape[1] > max_len:
        raise ValueError(f'sequence length {tokens.shape[1]} exceeds max_len={max_len} of the '
                         f'position embedding; truncate the inputs or build the model with a '
                         f'larger max_len')
    _check_range('tokens', _values('tokens', tokens), 0, vocab_size,
                 f'token ids in [0, {vocab_size}) (whole numbers; vocab_size={vocab_size})')
    seg = _values('segments', segments)
    if not np.isin(seg, (0, 1)).all():
        bad = seg[~np.isin(seg, (0, 1))].flat[0]
        raise ValueError(f'segments holds {bad!r}; expected 0 (first sentence) or 1 (second)')


def check_valid_lens(valid_lens, batch_size, seq_len):
    """``valid_lens`` of shape (batch_size,), whole numbers in [1, seq_len]."""
    if valid_lens is None:
        return
    if valid_lens.shape != (batch_size,):
        raise ValueError(f'valid_lens must have shape ({batch_size},) (one length per '
                         f'sequence), got {valid_lens.shape}')
    _check_range('valid_lens', _values('valid_lens', valid_lens), 1, seq_len + 1,
                 f'whole numbers in [1, {seq_len}] (the sequence length)')


def check_pred_positions(pred_positions, batch_size, seq_len):
    """``pred_positions`` of shape (batch_size, num_preds) with positions in [0, seq_len)."""
    if pred_positions.ndim != 2 or pred_positions.shape[0] != batch_size:
        raise ValueError(f'pred_positions must have shape ({batch_size}, num_preds), got '
                         f'{pred_positions.shape}')
    _check_range('pred_positions', _values('pred_positions', pred_positions), 0, seq_len,
                 f'positions in [0, {seq_len}) (whole numbers; {seq_len} is the sequence '
                 f'length)')


def check_encoded(encoded, num_hiddens):
    """Encoder output of shape (batch_size, seq_len, num_hiddens)."""
    if encoded.ndim != 3 or encoded.shape[2] != num_hiddens:
        raise ValueError(f'encoded inputs must have shape (batch_size, seq_len, '
                         f'{num_hiddens}), got {encoded.shape}')
