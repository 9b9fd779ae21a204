"""Masked language modeling (MLM): which tokens to predict and what the model sees instead.

``MaskingConfig`` holds every knob in one place: the rate (d2l's and BERT's 15% of an
example's tokens, never ``'<cls>'`` or ``'<sep>'``), the split of how a chosen group is
replaced (80% by ``'<mask>'``, 10% by random tokens, 10% unchanged) and the strategy. Every
data path (WikiText, own corpora, synthetic batches) takes one, and the preprocessing cache
is keyed by it. The strategies differ in what a group is:

- ``'token'`` (d2l): single tokens. Consumes the random stream exactly as d2l's
  ``_get_mlm_data_from_tokens``, so a seed gives d2l's examples.
- ``'whole_word'``: a word, i.e. a token and its following ``'##'`` WordPiece continuations,
  is chosen and replaced as one (BERT's whole word masking). On WikiText's word tokens every
  word is one token and this equals ``'token'``.
- ``'span'``: SpanBERT's contiguous runs of whole words, of a length drawn from a geometric
  distribution (p=0.2) clipped at 10 words, until the 15% budget is spent.
"""
import dataclasses
import itertools
import random

MASKING_STRATEGIES = ('token', 'whole_word', 'span')

# SpanBERT's span lengths: Geometric(p=0.2) clipped at 10 by renormalising (mean 3.8 words).
_SPAN_LENGTHS = range(1, 11)
_SPAN_CUM_WEIGHTS = list(itertools.accumulate(0.2 * 0.8 ** (n - 1) for n in _SPAN_LENGTHS))


@dataclasses.dataclass(frozen=True)
class MaskingConfig:
    """How MLM examples are masked. The defaults are d2l's (and BERT's).

    rate: the share of an example's tokens to predict (at least one per example).
    mask, random: the shares of the chosen groups replaced by ``'<mask>'`` and by random
        tokens; the rest (``1 - mask - random``) is left unchanged.
    strategy: what a group is, one of ``MASKING_STRATEGIES``.
    """
    rate: float = 0.15
    mask: float = 0.8
    random: float = 0.1
    strategy: str = 'token'

    def __post_init__(self):
        check_strategy(self.strategy)
        if not 0 < self.rate <= 1:
            raise ValueError(f'masking rate={self.rate!r}; expected a share in (0, 1]')
        for name in ('mask', 'random'):
            if not 0 <= getattr(self, name) <= 1:
                raise ValueError(f'masking {name}={getattr(self, name)!r}; expected a share '
                                 f'in [0, 1]')
        if self.mask + self.random > 1 + 1e-12:
            raise ValueError(f'masking mask={self.mask} + random={self.random} exceeds 1; '
                             f'expected shares of one whole (the rest is left unchanged)')

    @classmethod
    def of(cls, masking):
        """``masking`` as a config: a ``MaskingConfig`` as it is, a strategy name with the
        default shares."""
        if isinstance(masking, cls):
            return masking
        check_strategy(masking)
        return cls(strategy=masking)

    def num_predictions(self, num_tokens):
        """How many tokens of an example of ``num_tokens`` tokens are predicted."""
        return max(1, round(num_tokens * self.rate))

    def max_predictions(self, max_len):
        """The prediction slots of an example of ``max_len`` tokens (d2l's
        ``round(max_len * 0.15)``)."""
        return self.num_predictions(max_len)

    @property
    def keep_threshold(self):
        """The second draw at or above which a group not masked gets random tokens (d2l's
        0.5); rounded so that float error does not move d2l's boundary."""
        return round(1 - self.random / (1 - self.mask), 12) if self.mask < 1 else 1.0

    @property
    def key(self):
        """A file-name-safe string that differs whenever the masked examples would."""
        return f'{self.strategy}-r{self.rate!r}-m{self.mask!r}-x{self.random!r}'


def check_strategy(strategy):
    """Raise ValueError unless ``strategy`` names one of ``MASKING_STRATEGIES``."""
    if strategy not in MASKING_STRATEGIES:
        raise ValueError(f'masking must be one of {", ".join(map(repr, MASKING_STRATEGIES))}, '
                         f'got {strategy!r}')


def check_masking(masking):
    """Raise ValueError unless ``masking`` is a ``MaskingConfig`` or a strategy name."""
    MaskingConfig.of(masking)


def _replace(mlm_input_tokens, group, mask_token, pool, rng, config):
    """Replace the positions of one chosen group in place: by the mask token, a random token
    or not at all, with ``config``'s shares (d2l's 80/10/10 draw twice, as here)."""
    # 80% of the time: replace the word with the '<mask>' token
    if rng.random() < config.mask:
        for position in group:
            mlm_input_tokens[position] = mask_token
    # 10% of the time: replace the word with a random word (else keep it unchanged)
    elif config.mask < 1 and rng.random() >= config.keep_threshold:
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
        _replace(mlm_input_tokens, (position,), '<mask>', vocab.idx_to_token, rng,
                 MaskingConfig())
    return mlm_input_tokens, [(position, tokens[position]) for position in chosen]


_replace_mlm_tokens = replace_mlm_tokens  # d2l's name


def get_mlm_data_from_tokens(tokens, vocab, rng=random, masking=MaskingConfig()):
    """d2l's ``_get_mlm_data_from_tokens``: from string tokens, return the masked input IDs,
    the sorted predicted positions and the original IDs at those positions."""
    return MLMMasker(vocab, masking, rng)(vocab[list(tokens)])


_get_mlm_data_from_tokens = get_mlm_data_from_tokens  # d2l's name


class MLMMasker:
    """Masks examples given as lists of token IDs of ``vocab``, with one ``MaskingConfig``
    (or strategy name) and one random stream (``rng``: Python's global ``random`` unless
    given)."""

    def __init__(self, vocab, masking=MaskingConfig(), rng=random):
        self.config = MaskingConfig.of(masking)
        self.masking = masking = self.config.strategy
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
        num_mlm_preds = self.config.num_predictions(len(token_ids))
        if self.masking == 'token':
            self.rng.shuffle(candidates)
            groups = [(position,) for position in candidates[:num_mlm_preds]]
        elif self.masking == 'whole_word':
            groups = self._whole_words(self._words(token_ids, candidates), num_mlm_preds)
        else:
            groups = self._spans(self._words(token_ids, candidates), num_mlm_preds)
        mlm_input_ids = list(token_ids)
        for group in groups:
            _replace(mlm_input_ids, group, self._mask_id, self._pool, self.rng, self.config)
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
