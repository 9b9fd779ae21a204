"""The BERT input sequence of one or two token lists, as d2l's ``get_tokens_and_segments``."""


def get_tokens_and_segments(tokens_a, tokens_b=None):
    """Return ``['<cls>'] + tokens_a + ['<sep>'] (+ tokens_b + ['<sep>'])`` and segment IDs,
    0 for the first part and 1 for the second."""
    tokens = ['<cls>'] + tokens_a + ['<sep>']
    # 0 and 1 are marking segment A and B, respectively
    segments = [0] * (len(tokens_a) + 2)
    if tokens_b is not None:
        tokens += tokens_b + ['<sep>']
        segments += [1] * (len(tokens_b) + 1)
    return tokens, segments
