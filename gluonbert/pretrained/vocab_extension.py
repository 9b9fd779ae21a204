"""Vocabulary extension for continued pretraining: new tokens appended to a pretrained BERT.

Domain corpora have words the vocabulary splits into many pieces; continued pretraining
often adds them as tokens. The new tokens pass through the model's own normaliser (so that
``COVID`` in an uncased model becomes ``covid``, and a token the tokenizer would split, such
as ``covid-19``, is refused rather than never produced: HF #1545, tokenizers #302). The
token embedding and the MLM decoder, weight and bias (HF #1730 missed the bias), grow
together, tied or not; the new rows start from the mean of the old ones, which keeps the
first steps' loss near the pretrained one. Every other weight, the heads included, is kept
as it was (HF #8887), and the report lists exactly which rows are new.
"""
import dataclasses

import numpy as np

from ..data.vocab import Vocab
from ..model import BERTModel
from .loading import _FromArray, _tied_groups

# The parameters with one row (or entry) per token
_TOKEN_ROWS = ('encoder.token_embedding.weight', 'mlm.mlp.2.weight', 'mlm.mlp.2.bias')


@dataclasses.dataclass
class ExtensionReport:
    """``added``: the new tokens, in index order from ``first_index``; ``present``: tokens
    already in the vocabulary (skipped); ``new_weights``: the grown parameters, whose rows
    ``first_index`` onwards are new; every other parameter is copied unchanged."""
    added: list
    present: list
    first_index: int
    new_weights: list

    def __str__(self):
        text = f'{len(self.added)} tokens added at indices {self.first_index}..' \
               f'{self.first_index + len(self.added) - 1}' if self.added else 'no token added'
        if self.present:
            text += f'; already in the vocabulary: {", ".join(self.present[:10])}'
            if len(self.present) > 10:
                text += f' (+{len(self.present) - 10} more)'
        if self.new_weights:
            text += (f'; new rows (initialised to the mean of the old ones) in '
                     f'{", ".join(self.new_weights)}; all other weights, heads included, '
                     f'kept')
        return text


def read_added_tokens(path):
    """The tokens of ``path``: one per line, blank lines ignored."""
    with open(path, encoding='utf-8') as f:
        tokens = [line.strip() for line in f]
    tokens = [token for token in tokens if token]
    if not tokens:
        raise ValueError(f'--add-tokens {path!r} holds no token; expected one token per line')
    return tokens


def normalise_tokens(tokens, tokenizer):
    """``tokens`` as the tokenizer's normaliser writes them (lower-cased, accents stripped
    for an uncased model); a token it would split into several words is refused."""
    normalised = []
    for token in tokens:
        words = tokenizer.basic_tokenize(token)
        if len(words) != 1:
            raise ValueError(f'added token {token!r} is split by the tokenizer into {words}; '
                             f'expected a single word (the tokenizer would never produce it)')
        normalised.append(words[0])
    return normalised


def extend_vocab(bert, vocab, tokens, tokenizer, devices=None):
    """``(bert, vocab, report)`` with ``tokens`` appended to ``vocab`` and a new
    ``BERTModel`` whose token embedding and MLM decoder have their rows; ``bert`` and
    ``vocab`` are left unchanged. ``devices`` get the new model's parameters (default:
    those of ``bert``)."""
    added, present = [], []
    for token in normalise_tokens(tokens, tokenizer):
        if token in vocab.token_to_idx:
            present.append(token)
        elif token not in added:
            added.append(token)
    grown = Vocab.__new__(Vocab)
    grown.idx_to_token = list(vocab.idx_to_token) + added
    grown.token_to_idx = {token: idx for idx, token in enumerate(grown.idx_to_token)}
    grown.token_freqs = []
    devices = devices or list(bert.encoder.token_embedding.weight.list_ctx())
    new_bert = BERTModel(**dict(bert.config, vocab_size=len(grown)))
    old_groups = {tuple(names): param for param, names in _tied_groups(bert)}
    new_weights = []
    for param, names in _tied_groups(new_bert):
        array = old_groups[tuple(names)].data().asnumpy()
        if any(name in _TOKEN_ROWS for name in names) and added:
            mean = array.mean(axis=0, keepdims=True)
            array = np.concatenate([array, np.repeat(mean, len(added), axis=0)])
            new_weights.extend(name for name in names if name in _TOKEN_ROWS)
        param.initialize(init=_FromArray(array), ctx=devices)
    report = ExtensionReport(added, present, len(vocab), new_weights)
    return new_bert, grown, report
