"""BERT pretraining examples from WikiText-2: d2l's ``_WikiTextDataset`` and ``load_data_wiki``.

The examples are d2l's (same vocabulary, 50% NSP, 15% MLM with 80/10/10, the same random
stream), built as seven numpy arrays instead of one MXNet array per row, which is where d2l
spends most of its ~50 s on wiki.train.tokens. A seeded build is cached on disk.
"""
import contextlib
import gc
import itertools
import numbers
import os
import random

import numpy as np
from mxnet import gluon

from . import cache
from .locate import TRAIN_FILE, file_sha1, locate_wikitext2
from .masking import MaskingConfig, MLMMasker
from .nsp import get_nsp_data_from_paragraph
from .vocab import Vocab
from .wikitext import read_wiki

RESERVED_TOKENS = ['<pad>', '<mask>', '<cls>', '<sep>']

# '<cls>', two '<sep>' and at least one token from each sentence.
MIN_MAX_LEN = 5


def pad_bert_inputs(examples, max_len, vocab, masking=MaskingConfig()):
    """d2l's ``_pad_bert_inputs`` as seven numpy arrays, one row per example.

    ``examples`` holds ``(token_ids, pred_positions, mlm_pred_label_ids, segments, is_next)``.
    Returns int32 token IDs and segments padded to ``max_len``, float32 valid lengths, int32
    predicted positions and labels padded to ``masking.max_predictions(max_len)`` (d2l's
    ``round(max_len * 0.15)``) with float32 weights (0 on padding) and float32 NSP labels.
    """
    max_num_mlm_preds = MaskingConfig.of(masking).max_predictions(max_len)
    token_ids, pred_positions, mlm_pred_label_ids, segments, is_next = (
        list(zip(*examples)) or [()] * 5)
    valid_lens = np.fromiter(map(len, token_ids), np.int64, len(examples))
    num_preds = np.fromiter(map(len, pred_positions), np.int64, len(examples))
    for name, lengths, limit in (('tokens', valid_lens, max_len),
                                 ('predictions', num_preds, max_num_mlm_preds)):
        if len(examples) and lengths.max() > limit:
            index = int(lengths.argmax())
            raise ValueError(f'examples[{index}] has {lengths[index]} {name}, more than the '
                             f'{limit} that max_len={max_len} allows')
    # Predictions of padded tokens will be filtered out in the loss via multiplication of 0
    # weights
    mlm_weights = np.arange(max_num_mlm_preds) < num_preds[:, None]
    return (_pad(token_ids, valid_lens, max_len, vocab['<pad>']),
            _pad(segments, valid_lens, max_len, 0),
            valid_lens.astype(np.float32),
            _pad(pred_positions, num_preds, max_num_mlm_preds, 0),
            mlm_weights.astype(np.float32),
            _pad(mlm_pred_label_ids, num_preds, max_num_mlm_preds, 0),
            np.array(is_next, dtype=np.float32))


_pad_bert_inputs = pad_bert_inputs  # d2l's name


def _pad(rows, lengths, width, pad):
    """Rows of the given lengths as one int32 array of ``width`` columns filled with ``pad``."""
    padded = np.full((len(rows), width), pad, dtype=np.int32)
    # A boolean mask assigns in row-major order: row by row, left to right.
    padded[np.arange(width) < lengths[:, None]] = np.fromiter(
        itertools.chain.from_iterable(rows), np.int32, int(lengths.sum()))
    return padded


class WikiTextDataset(gluon.data.Dataset):
    """BERT pretraining examples of ``paragraphs`` (from ``read_wiki``), as d2l's
    ``_WikiTextDataset``.

    ``rng`` is the random stream (Python's global ``random`` unless given) and ``masking`` a
    ``MaskingConfig`` or a strategy name (see ``masking.py``). An item is ``(token_ids,
    segments, valid_len, pred_positions, mlm_weights, mlm_labels, nsp_label)`` of numpy
    values; the attributes ``all_token_ids`` ... ``nsp_labels`` hold them for all examples.
    """

    def __init__(self, paragraphs, max_len, *, rng=random, masking=MaskingConfig()):
        check_max_len(max_len)
        masking = MaskingConfig.of(masking)
        with _cycle_collector_paused():
            self._build(paragraphs, max_len, rng, masking)

    def _build(self, paragraphs, max_len, rng, masking):
        # Input `paragraphs[i]` is a list of sentence strings representing a paragraph; while
        # output `paragraphs[i]` is a list of sentences representing a paragraph, where each
        # sentence is a list of tokens (d2l.tokenize(paragraph, token='word'))
        paragraphs = [[sentence.split() for sentence in paragraph] for paragraph in paragraphs]
        sentences = [sentence for paragraph in paragraphs for sentence in paragraph]
        vocab = Vocab(sentences, min_freq=5, reserved_tokens=RESERVED_TOKENS)
        # Get data for the next sentence prediction task
        examples = []
        for paragraph in paragraphs:
            examples.extend(get_nsp_data_from_paragraph(paragraph, paragraphs, vocab, max_len,
                                                        rng))
        if not examples:
            num_pairs = sum(len(paragraph) - 1 for paragraph in paragraphs)
            if not num_pairs:
                raise ValueError(f'paragraphs: none of the {len(paragraphs)} has two or more '
                                 'sentences; expected WikiText-2 text')
            raise ValueError(f'none of the {num_pairs} pairs of consecutive sentences fits in '
                             f'max_len={max_len} tokens; expected a larger max_len')
        # Get data for the masked language model task
        masker = MLMMasker(vocab, masking, rng)
        # vocab[tokens] without the per-token call of d2l's Vocab.__getitem__
        lookup, unk = vocab.token_to_idx.get, itertools.repeat(vocab.unk)
        examples = [masker(list(map(lookup, tokens, unk))) + (segments, is_next)
                    for tokens, segments, is_next in examples]
        self._set(pad_bert_inputs(examples, max_len, vocab, masking), vocab)

    @classmethod
    def from_arrays(cls, arrays, vocab):
        """A dataset holding the seven arrays of ``pad_bert_inputs`` (e.g. from the cache)."""
        dataset = cls.__new__(cls)
        dataset._set(arrays, vocab)
        return dataset

    def _set(self, arrays, vocab):
        self.vocab = vocab
        (self.all_token_ids, self.all_segments, self.valid_lens, self.all_pred_positions,
         self.all_mlm_weights, self.all_mlm_labels, self.nsp_labels) = arrays

    @property
    def arrays(self):
        """The seven arrays, in item order."""
        return (self.all_token_ids, self.all_segments, self.valid_lens, self.all_pred_positions,
                self.all_mlm_weights, self.all_mlm_labels, self.nsp_labels)

    def __getitem__(self, idx):
        return tuple(array[idx] for array in self.arrays)

    def __len__(self):
        return len(self.all_token_ids)


_WikiTextDataset = WikiTextDataset  # d2l's name


@contextlib.contextmanager
def _cycle_collector_paused():
    """The build allocates millions of small acyclic lists; Python's cycle collector would
    walk them again and again (a third of the build time) and find nothing to free."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


def load_wiki_dataset(max_len, data_dir=None, *, seed=None, masking=MaskingConfig(),
                      fallback=None,
                      download=True, verify=True, use_cache=True):
    """The ``WikiTextDataset`` of WikiText-2 train, found by ``locate_wikitext2``.

    Without ``seed`` it draws from Python's global ``random``, as d2l (``random.seed(s)`` then
    this gives d2l's examples). With an integer ``seed`` it draws from ``random.Random(seed)``,
    gives the same examples as d2l after ``random.seed(seed)``, and is cached on disk (see
    ``cache.py``) unless ``use_cache=False``.
    """
    check_max_len(max_len)
    masking = MaskingConfig.of(masking)
    _check_seed(seed)
    data_dir = locate_wikitext2(data_dir, download=download, verify=verify, fallback=fallback)
    if seed is None:
        return WikiTextDataset(read_wiki(data_dir), max_len, masking=masking)
    stem = None
    if use_cache:
        stem = cache.entry_stem(file_sha1(os.path.join(data_dir, TRAIN_FILE)), max_len, seed,
                                masking)
        cached = cache.load(stem, max_len, masking)
        if cached is not None:
            return WikiTextDataset.from_arrays(*cached)
    rng = random.Random(seed)
    dataset = WikiTextDataset(read_wiki(data_dir, rng), max_len, rng=rng, masking=masking)
    if stem is not None:
        cache.save(stem, dataset.arrays, dataset.vocab)
    return dataset


def load_data_wiki(batch_size, max_len, data_dir=None, *, seed=None, masking=MaskingConfig(),
                   num_workers=0, shuffle=True, fallback=None, download=True, verify=True,
                   use_cache=True):
    """Load WikiText-2 for BERT pretraining: ``(train_iter, vocab)`` as d2l's.

    ``train_iter`` is a ``gluon.data.DataLoader`` (its batches are ``mx.np`` arrays under
    ``npx.set_np()``, else ``mx.nd``); ``train_iter.dataset`` is the ``WikiTextDataset``. With
    ``seed``, the examples and the batch order of every epoch are fixed. ``num_workers``
    defaults to 0: worker processes made d2l's ``train_bert`` hang (d2l-en #1989). The other
    arguments are those of ``load_wiki_dataset``.
    """
    if not isinstance(batch_size, numbers.Integral) or isinstance(batch_size, bool) \
            or batch_size <= 0:
        raise ValueError(f'batch_size must be a positive integer, got {batch_size!r}')
    if not isinstance(num_workers, numbers.Integral) or num_workers < 0:
        raise ValueError(f'num_workers must be an integer >= 0, got {num_workers!r}')
    train_set = load_wiki_dataset(max_len, data_dir, seed=seed, masking=masking,
                                  fallback=fallback, download=download, verify=verify,
                                  use_cache=use_cache)
    sampler = None
    if shuffle and seed is not None:
        sampler = _SeededRandomSampler(len(train_set), seed)
    train_iter = gluon.data.DataLoader(train_set, batch_size, shuffle=shuffle and sampler is None,
                                       sampler=sampler, num_workers=num_workers)
    train_iter.dataset = train_set
    return train_iter, train_set.vocab


class _SeededRandomSampler(gluon.data.Sampler):
    """Gluon's ``RandomSampler`` drawing from its own generator instead of numpy's global one,
    so that a seed fixes the order of every epoch."""

    def __init__(self, length, seed):
        self._length = length
        self._rng = np.random.default_rng(seed)

    def __iter__(self):
        return iter(self._rng.permutation(self._length).tolist())

    def __len__(self):
        return self._length


def check_max_len(max_len):
    """Raise ValueError unless ``max_len`` is an integer >= ``MIN_MAX_LEN``."""
    if not isinstance(max_len, numbers.Integral) or isinstance(max_len, bool) \
            or max_len < MIN_MAX_LEN:
        raise ValueError(f"max_len must be an integer >= {MIN_MAX_LEN} (room for '<cls>', two "
                         f"'<sep>' and a token of each sentence), got {max_len!r}")


def _check_seed(seed):
    if seed is not None and (not isinstance(seed, numbers.Integral) or isinstance(seed, bool)
                             or seed < 0):
        raise ValueError(f'seed must be None or an integer >= 0, got {seed!r}')
