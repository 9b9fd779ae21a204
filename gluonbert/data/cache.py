"""On-disk cache of built pretraining arrays, so that a seeded run skips the build.

An entry is ``<stem>.npz`` (the seven arrays and the token frequencies) beside
``<stem>.vocab.json`` (d2l's ``vocab.json`` layout). Both are written to a temporary file and
renamed, so a reader never sees half an entry; an entry that cannot be read is rebuilt.
"""
import json
import logging
import os
from pathlib import Path

import numpy as np

from ..atomic import atomic_write
from .vocab import Vocab

# Bump when the arrays a given (corpus, max_len, seed, masking config) produces change.
FORMAT_VERSION = 2

ARRAY_NAMES = ('all_token_ids', 'all_segments', 'valid_lens', 'all_pred_positions',
               'all_mlm_weights', 'all_mlm_labels', 'nsp_labels')

_logger = logging.getLogger(__name__)


def cache_dir():
    """``$GLUONBERT_CACHE``, else ``~/.cache/gluonbert``."""
    return Path(os.environ.get('GLUONBERT_CACHE') or Path.home() / '.cache' / 'gluonbert')


def entry_stem(corpus_sha1, max_len, seed, masking):
    """The path, without suffix, of the entry for one corpus and build setting; ``masking``
    is a ``MaskingConfig`` (all its knobs are in the key)."""
    return cache_dir() / (f'wikitext-pretraining-v{FORMAT_VERSION}-{corpus_sha1}'
                          f'-len{max_len}-seed{seed}-{masking.key}')


def load(stem, max_len, masking):
    """``(arrays, vocab)`` of the entry at ``stem``, or None when absent or unreadable."""
    npz_path, vocab_path = _paths(stem)
    if not (npz_path.is_file() and vocab_path.is_file()):
        return None
    try:
        with np.load(npz_path, allow_pickle=False) as npz:
            arrays = tuple(npz[name] for name in ARRAY_NAMES)
            token_freqs = json.loads(npz['token_freqs_json'].tobytes().decode('utf-8'))
        vocab = Vocab.from_json(vocab_path)
        _check(arrays, masking.max_predictions(max_len), max_len)
    except Exception as error:  # any damage (truncation, bad zip, bad JSON) means rebuild
        _logger.warning('ignoring unreadable cache entry %s (%s: %s); rebuilding',
                        npz_path, type(error).__name__, error)
        return None
    vocab.token_freqs = [tuple(pair) for pair in token_freqs]
    return arrays, vocab


def save(stem, arrays, vocab):
    """Write the entry at ``stem`` atomically (temporary file + rename); a cache that cannot
    be written is reported, not fatal."""
    npz_path, vocab_path = _paths(stem)
    token_freqs = json.dumps(vocab.token_freqs, ensure_ascii=False).encode('utf-8')
    try:
        npz_path.parent.mkdir(parents=True, exist_ok=True)
        atomic_write(vocab_path, vocab.save_json)

        def write_arrays(tmp):
            with open(tmp, 'wb') as f:  # a file object: savez would add '.npz' to a path
                np.savez(f, token_freqs_json=np.frombuffer(token_freqs, dtype=np.uint8),
                         **dict(zip(ARRAY_NAMES, arrays)))
        atomic_write(npz_path, write_arrays)
    except OSError as error:
        _logger.warning('could not write cache entry %s (%s)', npz_path, error)


def _paths(stem):
    return stem.with_name(stem.name + '.npz'), stem.with_name(stem.name + '.vocab.json')


def _check(arrays, max_predictions, max_len):
    widths = [array.shape[1:] for array in arrays]
    preds = (max_predictions,)
    expected = [(max_len,), (max_len,), (), preds, preds, preds, ()]
    if len({len(array) for array in arrays}) != 1 or widths != expected:
        raise ValueError(f'arrays of shapes {[a.shape for a in arrays]}, expected equal row '
                         f'counts and row shapes {expected}')
