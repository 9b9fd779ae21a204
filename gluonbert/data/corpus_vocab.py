"""The vocabulary and tokenizer of a pretraining corpus: d2l's words, a given WordPiece
``vocab.txt``, or a WordPiece vocabulary learned from the corpus.

Learning uses HF's ``tokenizers`` (the ecosystem's WordPiece trainer, no torch needed) with
BERT's normaliser and pre-tokenizer; the text is then always tokenized by gluonbert's own
``WordPieceTokenizer``, so one implementation splits words in training, fine-tuning and
serving. The trainer may return more or fewer tokens than asked (tokenizers #903), so the
size is reported, as is the share of unknown tokens over the corpus.
"""
import collections

from .corpus import read_documents
from .tokenization import WordTokenizer
from .vocab import Vocab
from .wordpiece import (SPECIAL_TOKENS, WordPieceTokenizer, is_uncased, read_wordpiece_vocab,
                        vocab_from_bert_tokens)

# d2l's reserved tokens (its Vocab adds '<unk>')
RESERVED_TOKENS = ['<pad>', '<mask>', '<cls>', '<sep>']
# d2l's chapter keeps the words seen at least five times
WORD_MIN_FREQ = 5


def _texts(sources, on_bytes=None):
    for source in sources:
        for document in read_documents(source, on_bytes):
            yield from document


def word_vocab(sources, min_freq=WORD_MIN_FREQ, on_bytes=None):
    """d2l's word vocabulary of the corpora (``CorpusSource`` list), counted in one streamed
    pass: the words seen at least ``min_freq`` times, d2l's reserved tokens and ``'<unk>'``."""
    tokenizer, counter = WordTokenizer(), collections.Counter()
    for text in _texts(sources, on_bytes):
        counter.update(tokenizer(text))
    return Vocab.from_counter(counter, min_freq, RESERVED_TOKENS)


def learn_wordpiece_vocab(sources, size, *, lower=True, min_frequency=2, on_bytes=None):
    """A WordPiece vocabulary of about ``size`` tokens learned from the corpora with HF's
    ``tokenizers`` (BERT's normaliser, pre-tokenizer and special tokens), as a ``Vocab`` with
    d2l's special token names."""
    from tokenizers import Tokenizer, models, normalizers, pre_tokenizers, trainers
    if not (isinstance(size, int) and size > len(SPECIAL_TOKENS)):
        raise ValueError(f'vocabulary size={size!r}; expected an integer above '
                         f'{len(SPECIAL_TOKENS)} (the special tokens)')
    tokenizer = Tokenizer(models.WordPiece(unk_token='[UNK]'))
    tokenizer.normalizer = normalizers.BertNormalizer(lowercase=lower)
    tokenizer.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
    trainer = trainers.WordPieceTrainer(
        vocab_size=size, min_frequency=min_frequency, show_progress=False,
        special_tokens=['[PAD]', '[UNK]', '[CLS]', '[SEP]', '[MASK]'],
        continuing_subword_prefix='##')
    tokenizer.train_from_iterator(_texts(sources, on_bytes), trainer)
    learned = tokenizer.get_vocab()
    tokens = sorted(learned, key=learned.get)
    return vocab_from_bert_tokens(tokens, 'the learned vocabulary')


def corpus_vocab(sources, *, vocab_file=None, learn_size=None, lower=True, on_bytes=None):
    """``(vocab, tokenizer)`` for the corpora: from ``vocab_file`` (a BERT ``vocab.txt``,
    lower-cased unless it holds capitals), learned with ``learn_size`` tokens, or else d2l's
    word vocabulary."""
    if vocab_file is not None and learn_size is not None:
        raise ValueError('give a vocab file or a size to learn, not both')
    if vocab_file is not None:
        vocab = read_wordpiece_vocab(vocab_file)
        lower = is_uncased(vocab)
    elif learn_size is not None:
        vocab = learn_wordpiece_vocab(sources, learn_size, lower=lower, on_bytes=on_bytes)
    else:
        vocab = word_vocab(sources, on_bytes=on_bytes)
        return vocab, WordTokenizer(vocab)
    missing = [t for t in ('<pad>', '<mask>', '<cls>', '<sep>') if t not in vocab.token_to_idx]
    if missing:
        raise ValueError(f'vocabulary lacks BERT\'s special tokens '
                         f'{[k for k, v in SPECIAL_TOKENS.items() if v in missing]}; expected '
                         f'[PAD], [MASK], [CLS], [SEP] and [UNK]')
    return vocab, WordPieceTokenizer(vocab, lower=lower)
