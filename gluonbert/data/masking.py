"""Masked language modeling (MLM): which tokens to predict and what the model sees instead.

Every strategy picks about 15% of an example's tokens (never ``'<cls>'`` or ``'<sep>'``) and
replaces each chosen group 80% of the time by ``'<mask>'``, 10% by random tokens and leaves it
unchanged 10% of the time. The strategies differ in what a group is:

- ``'token'`` (d2l): single tokens. Consumes the random stream exactly as d2l's
  ``_get_mlm_data_from_tokens``, so a seed gives d2l's examples.
- ``'whole_word'``: a word, i.e. a token and its following ``'##'`` WordPiece continuations,
  is chosen and replaced as one (BERT's whole word masking). On WikiText's word tokens every
  word is one token and this equals ``'token'``.
- ``'span'``: SpanBERT's contiguous runs of whole words, of a length drawn from a geometric
  distribution (p=0.2) clipped at 10 words, until the 15% budget is spent.
"""
import itertools
import random

MASKING_STRATEGIES = ('token', 'whole_word', 'span')

# SpanBERT's span lengths: Geometric(p=0.2) clipped at 10 by renormalising (mean 3.8 words).
_SPAN_LENGTHS = range(1, 11)
_SPAN_CUM_WEIGHTS = list(itertools.accumulate(0.2 * 0.8 ** (n - 1) for n in _SPAN_LENGTHS))


def check_masking(masking):
    """Raise ValueError unless ``masking`` names a strategy of ``MASKING_STRATEGIES``."""
    if masking not in MASKING_STRATEGIES:
        raise ValueError(f'masking must be one of {", ".join(map(repr, MASKING_STRATEGIES))}, '
                         f'got {masking!r}')


def _replace(mlm_input_tokens, group, mask_token, pool, rng):
    """Replace the positions of one chosen group in place: 80% mask, 10% keep, 10% random."""
    # 80% of the time: replace the word with the '<mask>' token
    if rng.random() < 0.8:
        for position in group:
            mlm_input_tokens[position] = mask_token
    # 10% of the time: replace the word with a random word (else keep it unchanged)
    elif rng.random() >= 0.5:
        for position in group:
            mlm_input_tokens[position] = rng.choice(pool)


def replace_mlm_tokens(tokens, candidate_pred_positions, num_mlm_preds, vocab, rng=random):
    """d2l's ``_replace_mlm_tokens`` on string tokens: shuffle ``candidate_pred_positions``
    in place, replace the first ``num_mlm_preds`` of them, and return the new tokens and
    ``(position, original token)`` pairs."""
    mlm_input_tokens = list(tokens)
    rng.shuffle(candidate_pred_positions)
    chosen = candidate_pred_positions[:max(num_mlm_preds, 0)]
    for position in chosen:
        _replace(mlm_input_tokens, (position,), '<mask>', vocab.idx_to_token, rng)
    return mlm_input_tokens, [(position, tokens[position]) for position in chosen]


_replace_mlm_tokens = replace_mlm_tokens  # d2l's name


def get_mlm_data_from_tokens(tokens, vocab, rng=random, masking='token'):
    """d2l's ``_get_mlm_data_from_tokens``: from string tokens, return the masked input IDs,
    the sorted predicted positions and the original IDs at those positions."""
    return MLMMasker(vocab, masking, rng)(vocab[list(tokens)])


_get_mlm_data_from_tokens = get_mlm_data_from_tokens  # d2l's name


class MLMMasker:
    """Masks examples given as lists of token IDs of ``vocab``, with one strategy and one
    random stream (``rng``: Python's global ``random`` unless given)."""

    def __init__(self, vocab, masking='token', rng=random):
        check_masking(masking)
        self.masking = masking
        self.rng = rng
        self._mask_id = vocab['<mask>']
        self._pool = range(len(vocab))  # rng.choice(pool) draws as d2l's choice(idx_to_token)
        # 1 for the IDs that may be predicted: all but '<cls>' and '<sep>'
        self._predictable = bytearray(b'\x01') * len(vocab)
        for token in ('<cls>', '<sep>'):
            if token in vocab.token_to_idx:
                self._predictable[vocab.token_to_idx[token]] = 0
        if masking != 'token':
            self._continues_word = [token.startswith('##') for token in vocab.idx_to_token]

    def __call__(self, token_ids):
        """Return ``(mlm_input_ids, pred_positions, mlm_label_ids)`` for one example."""
        # Special tokens are not predicted in the masked language modeling task
        candidates = list(itertools.compress(range(len(token_ids)),
                                             map(self._predictable.__getitem__, token_ids)))
        # 15% of random tokens are predicted in the masked language modeling task
        num_mlm_preds = max(1, round(len(token_ids) * 0.15))
        if self.masking == 'token':
            self.rng.shuffle(candidates)
            groups = [(position,) for position in candidates[:num_mlm_preds]]
        elif self.masking == 'whole_word':
            groups = self._whole_words(self._words(token_ids, candidates), num_mlm_preds)
        else:
            groups = self._spans(self._words(token_ids, candidates), num_mlm_preds)
        mlm_input_ids = list(token_ids)
        for group in groups:
            _replace(mlm_input_ids, group, self._mask_id, self._pool, self.rng)
        pred_positions = sorted(position for group in groups for position in group)
        return mlm_input_ids, pred_positions, [token_ids[i] for i in pred_positions]

    def _words(self, token_ids, candidates):
        """Candidate positions grouped into words: a token and its '##' continuations."""
        words = []
        for position in candidates:
            if (words and self._continues_word[token_ids[position]]
                    and words[-1][-1] == position - 1):
                words[-1].append(position)
            else:
                words.append([position])
        return words

    def _whole_words(self, words, num_mlm_preds):
        """Shuffled words, skipping any that would overshoot the budget (as Google's BERT)."""
        self.rng.shuffle(words)
        chosen, count = [], 0
        for word in words:
            if count >= num_mlm_preds:
                break
            if count + len(word) <= num_mlm_preds:
                chosen.append(word)
                count += len(word)
        return chosen

    def _spans(self, words, num_mlm_preds):
        """Spans of whole words from random free starts until the budget is spent; a span ends
        at its drawn length, a taken word, a segment boundary or the budget."""
        spans, count = [], 0
        unavailable = [False] * len(words)
        while count < num_mlm_preds:
            free = [w for w, taken in enumerate(unavailable) if not taken]
            if not free:
                break
            length = self.rng.choices(_SPAN_LENGTHS, cum_weights=_SPAN_CUM_WEIGHTS)[0]
            start = self.rng.choice(free)
            span, w = [], start
            while (w < min(start + length, len(words)) and not unavailable[w]
                   and (not span or words[w][0] == span[-1] + 1)
                   and count + len(words[w]) <= num_mlm_preds):
                unavailable[w] = True
                span.extend(words[w])
                count += len(words[w])
                w += 1
            unavailable[start] = True  # also drops a start word too long for the budget
            if span:
                spans.append(span)
        return spans
