"""A pretrained folder of either kind, for continued pretraining: gluonbert's (d2l's layout:
``vocab.json``, ``pretrained.params``, ``config.json``) or HF's (``config.json``,
``model.safetensors``, ``vocab.txt``), with the tokenizer its vocabulary was made for."""
import os

from ..data.corpus_vocab import WordTokenizer
from ..data.wordpiece import WordPieceTokenizer
from ..train.checkpoint import PARAMS_FILE, load_pretrained_model
from .hf import VOCAB_FILE as HF_VOCAB_FILE
from .hf import from_pretrained, load_tokenizer


def is_wordpiece(vocab):
    """Whether ``vocab`` is a WordPiece vocabulary (it has ``##`` continuation pieces)."""
    return any(token.startswith('##') for token in vocab.idx_to_token)


def tokenizer_for(vocab):
    """The tokenizer of a gluonbert vocabulary: WordPiece (uncased) or d2l's words."""
    return WordPieceTokenizer(vocab) if is_wordpiece(vocab) else WordTokenizer(vocab)


def tokenizer_with_vocab(tokenizer, vocab):
    """A tokenizer like ``tokenizer`` (same normalisation) over another vocabulary, e.g. an
    extended one."""
    if isinstance(tokenizer, WordPieceTokenizer):
        return WordPieceTokenizer(vocab, lower=tokenizer.lower,
                                  strip_accents=tokenizer.strip_accents,
                                  tokenize_chinese_chars=tokenizer.tokenize_chinese_chars,
                                  max_input_chars_per_word=tokenizer.max_input_chars_per_word)
    return WordTokenizer(vocab)


def load_pretrained_folder(folder, *, dropout=None, devices=None):
    """``(bert, vocab, tokenizer, kind)`` of a gluonbert or HF folder; ``kind`` is
    ``'gluonbert'`` or ``'hf'``. Heads an HF folder lacks are initialised and reported."""
    if os.path.isfile(os.path.join(folder, PARAMS_FILE)):
        bert, vocab = load_pretrained_model(folder, dropout=dropout, devices=devices)
        return bert, vocab, tokenizer_for(vocab), 'gluonbert'
    if os.path.isfile(os.path.join(folder, HF_VOCAB_FILE)):
        bert, vocab = from_pretrained(folder, dropout=dropout, devices=devices)
        return bert, vocab, load_tokenizer(folder, vocab), 'hf'
    raise FileNotFoundError(f'--pretrained {folder!r} is neither a gluonbert folder '
                            f'({PARAMS_FILE}, vocab.json) nor an HF folder (config.json, '
                            f'model.safetensors, {HF_VOCAB_FILE})')
