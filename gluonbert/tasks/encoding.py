"""Token strings -> the arrays a head takes: ``<cls> a <sep> (b <sep>)``, ids, segments, valid
lengths, padded. Pure numpy: ``export/predict.py`` encodes with this same code.

Pairs are truncated as d2l's ``SNLIBERTDataset`` does (pop from the longer side until both
fit ``max_len - 3``); arrays are padded with ``<pad>`` to the longest sequence, at most
``max_len``.
"""
import numpy as np

from ..data.segments import get_tokens_and_segments

IGNORE_LABEL = -1  # token label not scored (continuations, specials); = model.heads.IGNORE_LABEL


def truncate_pair(tokens_a, tokens_b, max_len):
    """Shorten the lists in place, the longer first, until the sequence fits ``max_len``."""
    room = max_len - (3 if tokens_b is not None else 2)
    if room < (2 if tokens_b is not None else 1):
        raise ValueError(f"max_len={max_len}; expected room for '<cls>', '<sep>' and one token "
                         f'of each text')
    if tokens_b is None:
        del tokens_a[room:]
        return
    while len(tokens_a) + len(tokens_b) > room:
        (tokens_a if len(tokens_a) > len(tokens_b) else tokens_b).pop()


def pad_sequences(sequences, vocab, max_len):
    """``(tokens, segments, valid_lens)`` int32/int32/float32 arrays of ``(token strings,
    segment ids)`` sequences, padded with ``<pad>`` to the longest."""
    if any(len(tokens) > max_len for tokens, _ in sequences):
        raise ValueError(f'a sequence is longer than max_len={max_len}')
    width = max((len(tokens) for tokens, _ in sequences), default=1)
    ids = np.full((len(sequences), width), vocab['<pad>'], dtype=np.int32)
    segments = np.zeros((len(sequences), width), dtype=np.int32)
    valid_lens = np.zeros(len(sequences), dtype=np.float32)
    for row, (tokens, segs) in enumerate(sequences):
        ids[row, :len(tokens)] = vocab.to_indices(tokens)
        segments[row, :len(segs)] = segs
        valid_lens[row] = len(tokens)
    return ids, segments, valid_lens


def encode_texts(texts, tokenizer, vocab, max_len):
    """Arrays of texts: each a tuple of one text or a pair, tokenized by ``tokenizer``."""
    sequences = []
    for parts in texts:
        tokens_a = tokenizer(parts[0])
        tokens_b = tokenizer(parts[1]) if len(parts) > 1 else None
        truncate_pair(tokens_a, tokens_b, max_len)
        sequences.append(get_tokens_and_segments(tokens_a, tokens_b))
    return pad_sequences(sequences, vocab, max_len)


def word_windows(words, tokenizer, max_len):
    """Split a sentence's words into windows that fit ``max_len`` with ``<cls>`` and
    ``<sep>``, no word cut across two windows (a word longer than a window keeps its first
    pieces). Returns ``[(tokens, word_ids)]``: ``word_ids[i]`` is the word whose first piece
    is token ``i`` (positions after ``<cls>``), else -1. Every word appears exactly once."""
    room = max_len - 2
    if room < 1:
        raise ValueError(f"max_len={max_len}; expected room for '<cls>', '<sep>' and a token")
    windows, tokens, word_ids = [], [], []
    for index, word in enumerate(words):
        pieces = tokenizer(word)[:room] or ['<unk>']  # a word the tokenizer drops still counts
        if len(tokens) + len(pieces) > room:
            windows.append((tokens, word_ids))
            tokens, word_ids = [], []
        tokens.extend(pieces)
        word_ids.extend([index] + [-1] * (len(pieces) - 1))
    windows.append((tokens, word_ids))
    return windows


def encode_words(sentences, tokenizer, vocab, max_len):
    """Arrays of word sequences for token classification, one row per window, and
    ``(example_index, word_ids)``: the sentence of each row and, per position, the word whose
    first piece sits there (-1 elsewhere)."""
    sequences, example_index, all_word_ids = [], [], []
    for number, words in enumerate(sentences):
        for tokens, word_ids in word_windows(words, tokenizer, max_len):
            sequences.append(get_tokens_and_segments(tokens))
            example_index.append(number)
            all_word_ids.append([-1] + word_ids + [-1])
    tokens, segments, valid_lens = pad_sequences(sequences, vocab, max_len)
    word_ids = np.full(tokens.shape, -1, dtype=np.int64)
    for row, ids in enumerate(all_word_ids):
        word_ids[row, :len(ids)] = ids
    return (tokens, segments, valid_lens), (np.array(example_index, np.int64), word_ids)
