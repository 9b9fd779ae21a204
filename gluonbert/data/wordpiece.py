"""WordPiece tokenization as BERT was trained with it, and BERT's ``vocab.txt`` format.

``WordPieceTokenizer`` follows Google's BERT ``BasicTokenizer`` + ``WordpieceTokenizer`` (and
so HF's ``BertTokenizer``): drop control characters, space out CJK characters, lower-case,
strip accents, split off punctuation, then split each word greedily into the longest pieces
of the vocabulary, ``##`` marking a continuation and ``<unk>`` a word that cannot be split.

``vocab.txt`` names the special tokens ``[CLS]``, ``[SEP]``, ``[PAD]``, ``[MASK]``, ``[UNK]``;
in gluonbert (as in d2l) they are ``<cls>``, ``<sep>``, ``<pad>``, ``<mask>``, ``<unk>``, so
that ``get_tokens_and_segments`` and the data pipelines work unchanged. Reading renames them,
writing renames them back; indices never move.

Speed: the character-level steps run as ``str.translate`` over tables that fill themselves
in as new characters appear (one Unicode lookup per distinct character, not per occurrence),
and each word's pieces are cached, so almost no Python code runs per character.
"""
import unicodedata

from .vocab import Vocab

# BERT's name of each special token -> d2l's
SPECIAL_TOKENS = {'[UNK]': '<unk>', '[CLS]': '<cls>', '[SEP]': '<sep>', '[PAD]': '<pad>',
                  '[MASK]': '<mask>'}
_BERT_NAMES = {d2l: bert for bert, d2l in SPECIAL_TOKENS.items()}

# Words seen once are cached too; past this many the cache starts afresh
_CACHE_SIZE = 1 << 18


def vocab_from_bert_tokens(bert_tokens, source='vocab'):
    """A ``Vocab`` of ``bert_tokens`` (index order kept) with d2l's special token names;
    ``source`` names where the tokens came from, for errors."""
    for token in SPECIAL_TOKENS.values():
        if token in bert_tokens:
            raise ValueError(f'{source} holds {token!r} besides BERT\'s special tokens; '
                             f'gluonbert names {_BERT_NAMES[token]!r} {token!r}, so the two '
                             f'would collide')
    tokens = [SPECIAL_TOKENS.get(token, token) for token in bert_tokens]
    if len(set(tokens)) != len(tokens):
        seen, repeated = set(), []
        for token in tokens:
            if token in seen:
                repeated.append(token)
            seen.add(token)
        raise ValueError(f'{source} repeats tokens: {repeated[:5]}')
    if '<unk>' not in tokens:
        raise ValueError(f'{source} has no "[UNK]" token')
    vocab = Vocab()
    vocab.idx_to_token = tokens
    vocab.token_to_idx = {token: idx for idx, token in enumerate(tokens)}
    return vocab


def is_uncased(vocab):
    """Whether ``vocab`` is an uncased one: no token but the specials has a capital."""
    return not any(token != token.lower() for token in vocab.idx_to_token
                   if not (token.startswith('[') and token.endswith(']')))


def bert_tokens(vocab):
    """The tokens of ``vocab`` in index order, with BERT's special token names."""
    return [_BERT_NAMES.get(token, token) for token in vocab.idx_to_token]


def read_wordpiece_vocab(path):
    """Read a BERT ``vocab.txt`` (one token per line, the line number is its index) as a
    ``Vocab`` with d2l's special token names."""
    try:
        with open(path, encoding='utf-8') as f:
            # Lines as HF's load_vocab reads them: universal newlines, not str.splitlines()
            tokens = f.read().split('\n')
    except UnicodeDecodeError as error:
        raise ValueError(f'{path}: not UTF-8 (byte {error.object[error.start:error.start + 1]!r} '
                         f'cannot be decoded); expected a BERT vocab.txt in UTF-8') from None
    if tokens and tokens[-1] == '':
        tokens.pop()
    return vocab_from_bert_tokens(tokens, f'vocab file {path!r}')


def write_wordpiece_vocab(vocab, path):
    """Write ``vocab`` as a BERT ``vocab.txt``, d2l's special token names back in BERT's."""
    for token in vocab.idx_to_token:
        if '\n' in token:
            raise ValueError(f'token {token!r} holds a line break; vocab.txt has one token '
                             f'per line')
    with open(path, 'w', encoding='utf-8', newline='\n') as f:
        f.writelines(token + '\n' for token in bert_tokens(vocab))


def _is_whitespace(char, category):
    return char in ' \t\n\r' or category == 'Zs'


def _is_control(char, category):
    # Tab, newline and carriage return count as whitespace, as in BERT
    return char not in '\t\n\r' and category.startswith('C')


def _is_punctuation(char, category):
    # BERT treats every non-alphanumeric ASCII character as punctuation ("$", "^", "`", ...)
    code = ord(char)
    return (33 <= code <= 47 or 58 <= code <= 64 or 91 <= code <= 96 or 123 <= code <= 126
            or category.startswith('P'))


def _is_chinese_char(code):
    # The CJK Unified Ideographs blocks, as BERT defines them (not Hangul, Hiragana, Katakana)
    return (0x4E00 <= code <= 0x9FFF or 0x3400 <= code <= 0x4DBF or 0x20000 <= code <= 0x2A6DF
            or 0x2A700 <= code <= 0x2B73F or 0x2B740 <= code <= 0x2B81F
            or 0x2B820 <= code <= 0x2CEAF or 0xF900 <= code <= 0xFAFF
            or 0x2F800 <= code <= 0x2FA1F)


class _CharTable(dict):
    """A ``str.translate`` table that computes a character's replacement on first sight."""

    def __init__(self, replace):
        super().__init__()
        self._replace = replace

    def __missing__(self, code):
        value = self[code] = self._replace(chr(code))
        return value


class WordPieceTokenizer:
    """Split text into BERT's WordPiece tokens, named as in ``vocab`` (``<unk>`` for unknown).

    ``lower`` lower-cases; ``strip_accents`` (default: as ``lower``, as in BERT) removes
    accents; ``tokenize_chinese_chars`` makes every CJK character a word; a word longer than
    ``max_input_chars_per_word`` characters becomes ``<unk>`` (BERT's and HF's 100; GluonNLP
    uses 200).

    With ``un``, ``##aff``, ``##able`` and ``!`` in ``vocab``, ``tokenizer('Unaffable!')`` is
    ``['un', '##aff', '##able', '!']``.
    """

    def __init__(self, vocab, *, lower=True, strip_accents=None, tokenize_chinese_chars=True,
                 max_input_chars_per_word=100):
        if '<unk>' not in vocab.token_to_idx:
            raise ValueError('vocab has no "<unk>" token, which unknown words become')
        if max_input_chars_per_word < 1:
            raise ValueError(f'max_input_chars_per_word={max_input_chars_per_word}: expected '
                             f'a positive number of characters')
        self.vocab = vocab
        self.lower = lower
        self.strip_accents = lower if strip_accents is None else strip_accents
        self.tokenize_chinese_chars = tokenize_chinese_chars
        self.max_input_chars_per_word = max_input_chars_per_word
        self._clean = _CharTable(self._clean_char)
        self._split = _CharTable(self._split_char)
        self._pieces = {}

    def _clean_char(self, char):
        """Step 1, on the raw text: drop invalid and control characters, normalise whitespace,
        space out CJK characters."""
        category = unicodedata.category(char)
        if char in '\x00\ufffd' or _is_control(char, category):
            return None
        if _is_whitespace(char, category):
            return ' '
        if self.tokenize_chinese_chars and _is_chinese_char(ord(char)):
            return f' {char} '
        return char

    def _split_char(self, char):
        """Step 2, after lower-casing and NFD: drop accents (combining marks), space out
        punctuation."""
        category = unicodedata.category(char)
        if self.strip_accents and category == 'Mn':
            return None
        if _is_punctuation(char, category):
            return f' {char} '
        return char

    def basic_tokenize(self, text):
        """BERT's basic tokenization: the words and punctuation marks of ``text``, before
        WordPiece."""
        text = text.translate(self._clean)
        if self.lower:
            text = text.lower()
        if self.strip_accents and not text.isascii():
            text = unicodedata.normalize('NFD', text)
        return text.translate(self._split).split()

    def _word_pieces(self, word):
        """Greedy longest-match-first split of one word into vocabulary pieces."""
        if len(word) > self.max_input_chars_per_word:
            return ('<unk>',)
        token_to_idx, pieces, start = self.vocab.token_to_idx, [], 0
        while start < len(word):
            end = len(word)
            while end > start:
                piece = word[start:end] if start == 0 else '##' + word[start:end]
                if piece in token_to_idx:
                    break
                end -= 1
            else:  # no piece of the vocabulary starts here
                return ('<unk>',)
            pieces.append(piece)
            start = end
        return tuple(pieces)

    def __call__(self, text):
        """The WordPiece tokens of ``text``, a list of strings."""
        tokens, cache = [], self._pieces
        for word in self.basic_tokenize(text):
            pieces = cache.get(word)
            if pieces is None:
                if len(cache) >= _CACHE_SIZE:
                    cache.clear()
                pieces = cache[word] = self._word_pieces(word)
            tokens.extend(pieces)
        return tokens
