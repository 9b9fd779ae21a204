"""Token <-> index vocabulary with d2l's ``Vocab`` semantics and its ``vocab.json`` layout."""
import collections
import itertools
import json

import numpy as np

from ..atomic import write_json


class Vocab:
    """Vocabulary for text, as d2l's ``Vocab``.

    ``idx_to_token`` is the sorted set of ``'<unk>'``, ``reserved_tokens`` and the tokens seen at
    least ``min_freq`` times; unknown tokens map to ``unk``. ``tokens`` may be a list of tokens
    or a list of token lists.
    """

    def __init__(self, tokens=[], min_freq=0, reserved_tokens=[]):
        # Flatten a 2D list if needed
        if tokens and isinstance(tokens[0], list):
            tokens = itertools.chain.from_iterable(tokens)
        self._count(collections.Counter(tokens), min_freq, reserved_tokens)

    def _count(self, counter, min_freq, reserved_tokens):
        self.token_freqs = sorted(counter.items(), key=lambda x: x[1], reverse=True)
        self.idx_to_token = list(sorted(set(['<unk>'] + reserved_tokens + [
            token for token, freq in self.token_freqs if freq >= min_freq])))
        self.token_to_idx = {token: idx for idx, token in enumerate(self.idx_to_token)}

    @classmethod
    def from_counter(cls, counter, min_freq=0, reserved_tokens=[]):
        """The vocabulary of token counts gathered elsewhere (e.g. streamed over a corpus too
        large to hold as one token list): the same as ``Vocab(tokens, ...)`` on those tokens."""
        vocab = cls.__new__(cls)
        vocab._count(counter, min_freq, reserved_tokens)
        return vocab

    def __len__(self):
        return len(self.idx_to_token)

    def __getitem__(self, tokens):
        if not isinstance(tokens, (list, tuple)):
            return self.token_to_idx.get(tokens, self.unk)
        return [self.__getitem__(token) for token in tokens]

    def to_indices(self, tokens):
        """Indices of an iterable of tokens as one int32 numpy array (unknown -> ``unk``),
        without building a Python list."""
        return np.fromiter(map(self.token_to_idx.get, tokens, itertools.repeat(self.unk)),
                           dtype=np.int32)

    def to_tokens(self, indices):
        """Tokens of several indices, or the token of one index (as d2l, a one-element list is
        not accepted)."""
        if hasattr(indices, '__len__') and len(indices) > 1:
            return [self.idx_to_token[int(index)] for index in indices]
        return self.idx_to_token[indices]

    @property
    def unk(self):  # Index for the unknown token
        return self.token_to_idx['<unk>']

    def save_json(self, path):
        """Write ``idx_to_token`` as a JSON list, the ``vocab.json`` of d2l's ``bert.small``."""
        write_json(path, self.idx_to_token, indent=None)

    @classmethod
    def from_json(cls, path):
        """Read a ``vocab.json`` (a JSON list ``idx_to_token``) as d2l's ``load_pretrained_model``
        does; indices keep the file's order and ``token_freqs`` is empty."""
        try:
            with open(path, encoding='utf-8') as f:
                idx_to_token = json.load(f)
        except (json.JSONDecodeError, UnicodeDecodeError) as error:
            raise ValueError(f'vocab file {path!r} is not a JSON list of tokens: '
                             f'{error}') from None
        if not (isinstance(idx_to_token, list) and all(isinstance(t, str) for t in idx_to_token)):
            raise ValueError(f'vocab file {path!r}: expected a JSON list of token strings, '
                             f'got {type(idx_to_token).__name__}')
        if len(set(idx_to_token)) != len(idx_to_token) or '<unk>' not in idx_to_token:
            raise ValueError(f'vocab file {path!r}: expected unique tokens including "<unk>", '
                             f'got {len(idx_to_token)} tokens, {len(set(idx_to_token))} unique, '
                             f'"<unk>" {"present" if "<unk>" in idx_to_token else "absent"}')
        return cls.from_tokens(idx_to_token)

    @classmethod
    def from_tokens(cls, idx_to_token):
        """A vocabulary of exactly ``idx_to_token`` (index order kept), e.g. an export's
        ``vocab.json``; ``token_freqs`` is empty."""
        vocab = cls()
        vocab.idx_to_token = list(idx_to_token)
        vocab.token_to_idx = {token: idx for idx, token in enumerate(vocab.idx_to_token)}
        return vocab
