"""The tokenizer a model was trained with, as settings that travel with it.

A tokenizer is a callable text -> token strings: d2l's (lower-case, split on whitespace:
``WhitespaceTokenizer``) or BERT's WordPiece (``WordPieceTokenizer``). ``describe_tokenizer``
turns one into a JSON-able dict of every setting that changes its output, and
``tokenizer_from_description`` builds the same tokenizer back from it and the vocabulary, so
that a fine-tuned model, its ONNX export and ``export/predict.py`` all tokenize as training
did. No MXNet is imported here.
"""
from ..json_file import read_json
from .vocab import Vocab
from .wordpiece import WordPieceTokenizer

TOKENIZER_FILE = 'tokenizer.json'  # the description, beside vocab.json in saved folders


class WhitespaceTokenizer:
    """d2l's tokenization: ``text.lower().split()`` (``lower=False`` keeps the case)."""

    def __init__(self, lower=True):
        self.lower = lower

    def __call__(self, text):
        return (text.lower() if self.lower else text).split()

    def basic_tokenize(self, text):
        """The words of ``text`` as the tokenizer normalises them: here, its tokens (as
        ``WordPieceTokenizer.basic_tokenize``, e.g. for ``--add-tokens``)."""
        return self(text)


class WordTokenizer:
    """Words for a word vocabulary learned from raw text: BERT's basic tokenization
    (lower-case, accents and control characters removed, punctuation split off), since raw
    text is not pre-tokenized as WikiText is (where d2l only splits at spaces); words outside
    the vocabulary become ``'<unk>'`` when looked up."""

    lower = True

    def __init__(self, vocab=None):
        self.vocab = vocab
        self._basic = WordPieceTokenizer(Vocab(reserved_tokens=[]))

    def basic_tokenize(self, text):
        return self._basic.basic_tokenize(text)

    def __call__(self, text):
        return self.basic_tokenize(text)


def describe_tokenizer(tokenizer):
    """The settings of ``tokenizer`` as a dict, ``kind`` first ('whitespace' or 'wordpiece')."""
    if isinstance(tokenizer, WhitespaceTokenizer):
        return {'kind': 'whitespace', 'lower': tokenizer.lower}
    if isinstance(tokenizer, WordTokenizer):
        return {'kind': 'words'}
    if isinstance(tokenizer, WordPieceTokenizer):
        return {'kind': 'wordpiece', 'lower': tokenizer.lower,
                'strip_accents': tokenizer.strip_accents,
                'tokenize_chinese_chars': tokenizer.tokenize_chinese_chars,
                'max_input_chars_per_word': tokenizer.max_input_chars_per_word}
    raise TypeError(f'tokenizer is a {type(tokenizer).__name__}; expected a '
                    f'WhitespaceTokenizer, WordTokenizer or WordPieceTokenizer, whose settings '
                    f'can be saved')


def punctuation_splitting(tokenizer, vocab):
    """The tokenizer to fine-tune a d2l-style model on raw text: d2l's whitespace tokenizer
    suits pre-tokenized text (WikiText) but maps "village." to ``<unk>`` where the vocabulary
    has "village" and "."; ``WordTokenizer`` splits punctuation off (and is saved with the
    fine-tuned model, so serving splits alike). ValueError for any other tokenizer."""
    if isinstance(tokenizer, WhitespaceTokenizer) and tokenizer.lower:
        return WordTokenizer(vocab)
    raise ValueError(f"--split-punctuation: the model's tokenizer is "
                     f"{describe_tokenizer(tokenizer)}; expected d2l's lower-casing whitespace "
                     f"tokenizer (WordPiece and word tokenizers split punctuation off already)")


def tokenizer_from_description(description, vocab):
    """The tokenizer that ``describe_tokenizer`` described, over ``vocab``; ValueError for a
    description that is not one."""
    if not isinstance(description, dict):
        raise ValueError(f'tokenizer description {description!r}; expected a dict with "kind"')
    settings = dict(description)
    kind = settings.pop('kind', None)
    try:
        if kind == 'whitespace':
            return WhitespaceTokenizer(**settings)
        if kind == 'words':
            return WordTokenizer(vocab, **settings)
        if kind == 'wordpiece':
            return WordPieceTokenizer(vocab, **settings)
    except TypeError as error:
        raise ValueError(f'tokenizer description {description!r}: {error}') from None
    raise ValueError(f'tokenizer description {description!r}: kind {kind!r}; expected '
                     f"'whitespace', 'words' or 'wordpiece'")


def read_tokenizer(path, vocab):
    """The tokenizer described in the ``tokenizer.json`` at ``path``, over ``vocab``;
    ValueError naming the file."""
    description = read_json(path, 'a JSON object describing the tokenizer')
    try:
        return tokenizer_from_description(description, vocab)
    except ValueError as error:
        raise ValueError(f'{path}: {error}') from None


def tokenizer_with_vocab(tokenizer, vocab):
    """A tokenizer with the settings of ``tokenizer`` over another vocabulary, e.g. an
    extended one."""
    return tokenizer_from_description(describe_tokenizer(tokenizer), vocab)
