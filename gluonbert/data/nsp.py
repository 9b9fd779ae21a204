"""Sentence pairs for next sentence prediction (NSP), as d2l's ``_get_nsp_data_from_paragraph``."""
import random

from .segments import get_tokens_and_segments


def get_next_sentence(sentence, next_sentence, paragraphs, rng=random):
    """Keep ``next_sentence`` half of the time, else swap in a random sentence of a random
    paragraph; return ``(sentence, next_sentence, is_next)``."""
    if rng.random() < 0.5:
        is_next = True
    else:
        # `paragraphs` is a list of lists of lists
        next_sentence = rng.choice(rng.choice(paragraphs))
        is_next = False
    return sentence, next_sentence, is_next


_get_next_sentence = get_next_sentence  # d2l's name


def get_nsp_data_from_paragraph(paragraph, paragraphs, vocab, max_len, rng=random):
    """``(tokens, segments, is_next)`` for each pair of consecutive sentences of ``paragraph``
    that fits in ``max_len`` tokens. ``vocab`` is unused; it is kept for d2l's signature."""
    nsp_data_from_paragraph = []
    for i in range(len(paragraph) - 1):
        tokens_a, tokens_b, is_next = get_next_sentence(
            paragraph[i], paragraph[i + 1], paragraphs, rng)
        # Consider 1 '<cls>' token and 2 '<sep>' tokens
        if len(tokens_a) + len(tokens_b) + 3 > max_len:
            continue
        tokens, segments = get_tokens_and_segments(tokens_a, tokens_b)
        nsp_data_from_paragraph.append((tokens, segments, is_next))
    return nsp_data_from_paragraph


_get_nsp_data_from_paragraph = get_nsp_data_from_paragraph  # d2l's name
