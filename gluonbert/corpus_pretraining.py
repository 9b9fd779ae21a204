"""The own-corpus and continued-pretraining side of ``gluonbert pretrain``: which model and
vocabulary a run starts from, and its preprocessed corpus.

- Start: a fresh BERT with d2l's word vocabulary of the corpus, a given ``vocab.txt`` or a
  WordPiece vocabulary learned from the corpus; or a pretrained gluonbert or HF folder, whose
  own vocabulary and tokenizer are kept, optionally extended with ``--add-tokens``.
- Data: the corpora are preprocessed once into shards in the cache (``$GLUONBERT_CACHE``),
  keyed by the corpora, the vocabulary and every setting that changes the examples (masking
  included), and read lazily from there; a rerun or a resumed run reuses them.
"""
import dataclasses
import hashlib
import json
import os
import time

import numpy as np

from .data.cache import cache_dir
from .data.corpus import CorpusSource
from .data.corpus_vocab import corpus_vocab, learn_wordpiece_vocab
from .data.masking import MaskingConfig
from .data.preprocess import PreprocessSettings, cache_key, describe, preprocess
from .data.shards import META_FILE, ShardedDataset
from .data.tokenization import tokenizer_with_vocab
from .data.wordpiece import (WordPieceTokenizer, read_wordpiece_vocab,
                             write_wordpiece_vocab)
from .atomic import atomic_write
from .pretrained.folders import load_pretrained_folder
from .pretrained.vocab_extension import extend_vocab, read_added_tokens
from .train.batches import EpochBatches
from .train.sharding import shard_sizes
from .train.pretrain_validation import evaluate_pretraining

# How long the other workers of a distributed run wait for rank 0's vocabulary and shards
_PREPROCESS_WAIT_S = 24 * 3600
# The validation metrics as logged (beside the training's mlm_loss and nsp_loss)
VALIDATION_KEYS = ('valid_mlm_loss', 'valid_perplexity', 'valid_mlm_accuracy',
                   'valid_nsp_accuracy')


@dataclasses.dataclass
class CorpusStart:
    """What a pretraining run starts from: its ``batches``, ``vocab`` (None for synthetic
    data) and ``vocab_size``; for own corpora also the ``bert`` to continue (None: a fresh
    one), the ``valid`` set and the ``tokenizer``."""
    batches: object
    vocab: object
    vocab_size: int
    bert: object = None
    valid: object = None
    tokenizer: object = None

    @property
    def hf_tokenizer(self):
        """The tokenizer to describe in an HF folder (WordPiece only)."""
        return self.tokenizer if isinstance(self.tokenizer, WordPieceTokenizer) else None


class ShardBatches(EpochBatches):
    """``EpochBatches`` over a ``ShardedDataset``: each epoch shuffles windows of shards
    together (``ShardedDataset.order``), and a batch is one indexed read per shard.

    Over one worker's shards (a dataset opened with ``num_workers`` > 1) a batch is this
    worker's share of the global batch of ``batch_size`` (shares differ by at most one
    example), drawn from its own shards only: the engine trains on the whole share and sums
    the global batch's totals over the workers. Every worker takes the same steps: an epoch
    has as many batches as the worker with the fewest examples fills, and a worker's other
    examples wait for a later epoch's order.
    """

    def __init__(self, dataset, batch_size, *, shuffle=True, seed=0):
        self.num_workers = dataset.num_workers
        shares = shard_sizes(batch_size, self.num_workers, allow_idle=True)
        if not min(shares):
            raise ValueError(f'--batch-size {batch_size} with {self.num_workers} workers: each '
                             f'worker draws its own share of the global batch; expected at '
                             f'least {self.num_workers}')
        self._full_batches = min(examples // share for examples, share
                                 in zip(dataset.examples_per_worker(), shares))
        if self.num_workers > 1 and not self._full_batches:
            raise ValueError(f'--batch-size {batch_size}: a worker\'s shards hold '
                             f'{min(dataset.examples_per_worker())} examples, fewer than its '
                             f'share of a global batch; expected a smaller batch or fewer '
                             f'workers')
        super().__init__(dataset, shares[dataset.rank], shuffle=shuffle, seed=seed)

    def __len__(self):
        if self.num_workers > 1:
            return self._full_batches
        return super().__len__()

    def order(self, epoch):
        if not self.shuffle:
            return np.arange(self.num_samples)
        return self.dataset.order(self.seed, epoch)

    def _gather(self, indices):
        return self.dataset[indices]


def validation(net, valid, devices, batch_size):
    """The evaluate function of the engine's ``Evaluation``: the held-out metrics, named
    ``valid_*`` beside the training's."""
    def evaluate():
        metrics = evaluate_pretraining(net, valid, devices, batch_size)
        return {f'valid_{name}': value for name, value in metrics.items()
                if name not in ('examples', 'predictions')}
    return evaluate


def corpus_start(opts, devices, *, rank=0, num_workers=1):
    """The ``CorpusStart`` of ``--corpus`` runs (``opts``: ``PretrainOptions``): the starting
    model and vocabulary, the preprocessed shards, and the training batches over them (worker
    ``rank`` of ``num_workers``: its own shards only, see ``ShardBatches``)."""
    sources = corpus_sources(opts.corpus, opts.doc_per_line)
    bert, vocab, tokenizer, notes = starting_point(opts, sources, devices, rank=rank)
    for note in notes:
        print(note)
    data = preprocessed(opts, sources, vocab, tokenizer, rank=rank, num_workers=num_workers)
    batches = ShardBatches(data.train, opts.batch_size, shuffle=True, seed=opts.seed)
    if num_workers > 1 and rank == 0:
        print(f'{num_workers} workers, each reading its own shards ({len(data.train.shards)} '
              f'of {len(data.meta["splits"]["train"]["shards"])} here): an epoch is '
              f'{len(batches)} global batches')
    return CorpusStart(batches, vocab, len(vocab), bert, data.valid, tokenizer)


@dataclasses.dataclass
class CorpusData:
    """A run's preprocessed corpus: ``train`` and ``valid`` (None without a held-out part)
    ``ShardedDataset``s, the folder and its ``meta.json``."""
    train: ShardedDataset
    valid: ShardedDataset
    folder: str
    meta: dict


def corpus_sources(specs, doc_per_line=False):
    """``--corpus`` values (``PATH`` or ``PATH:WEIGHT``) as ``CorpusSource``s."""
    if not specs:
        raise ValueError('--corpus: no corpus given; expected a text file or folder')
    sources = [CorpusSource.parse(spec, doc_per_line) for spec in specs]
    for source in sources:
        source.files()  # a missing corpus fails here, naming it
    return sources


def check_sources(opts):
    """The checks of a pretraining run's data options that read no file (ValueError naming
    the option): one data source (``--corpus`` or ``--synthetic``), the options that need
    ``--corpus`` or ``--pretrained``, and the weights of the ``--corpus`` values."""
    if opts.corpus:
        if opts.synthetic:
            raise ValueError('--corpus with --synthetic: choose one data source')
        for spec in opts.corpus:
            CorpusSource.parse(spec, opts.doc_per_line)
        _check_starting_point(opts)
        return
    for option in ('pretrained', 'vocab', 'learn_vocab', 'add_tokens', 'save_hf'):
        if getattr(opts, option):
            raise ValueError(f'--{option.replace("_", "-")} needs --corpus (WikiText-2 and '
                             f'--synthetic runs build their own model and vocabulary)')


def _check_starting_point(opts):
    """The vocabulary options of a ``--corpus`` run that go with ``--pretrained`` or not."""
    if opts.pretrained:
        for option in ('vocab', 'learn_vocab'):
            if getattr(opts, option):
                raise ValueError(f'--{option.replace("_", "-")} with --pretrained: a '
                                 f'pretrained model keeps its own vocabulary (extend it with '
                                 f'--add-tokens)')
    elif opts.add_tokens:
        raise ValueError('--add-tokens needs --pretrained: it extends a pretrained model\'s '
                         'vocabulary (a fresh model gets the corpus\'s vocabulary)')


def starting_point(opts, sources, devices, *, rank=0):
    """``(bert or None, vocab, tokenizer, notes)``: the ``--pretrained`` model (extended by
    ``--add-tokens``) with its vocabulary, or None and the vocabulary of ``--vocab`` /
    ``--learn-vocab`` / d2l's words for a fresh model. ``notes`` are lines for the log.
    A learned vocabulary is learned by worker ``rank`` 0 only (see ``_learned_vocab``)."""
    _check_starting_point(opts)
    if opts.pretrained:
        bert, vocab, tokenizer, kind = load_pretrained_folder(
            opts.pretrained, dropout=opts.dropout, devices=devices)
        if bert.config['max_len'] < opts.max_len:
            raise ValueError(f'--max-len {opts.max_len} exceeds the pretrained model\'s '
                             f'{bert.config["max_len"]} positions')
        notes = [f'continuing {kind} folder {opts.pretrained} ({len(vocab)} tokens)']
        if opts.add_tokens:
            bert, vocab, report = extend_vocab(bert, vocab, read_added_tokens(opts.add_tokens),
                                               tokenizer, devices)
            tokenizer = tokenizer_with_vocab(tokenizer, vocab)
            notes.append(f'--add-tokens: {report}')
        return bert, vocab, tokenizer, notes
    if opts.learn_vocab:
        vocab = _learned_vocab(sources, opts.learn_vocab, rank)
        tokenizer = WordPieceTokenizer(vocab)
        notes = [f'learned WordPiece vocabulary: {len(vocab)} tokens (asked '
                 f'{opts.learn_vocab})']
    else:
        vocab, tokenizer = corpus_vocab(sources, vocab_file=opts.vocab)
        notes = [f'vocabulary: {len(vocab)} tokens from '
                 f'{opts.vocab or "the corpus words (d2l, seen 5 times or more)"}']
    return None, vocab, tokenizer, notes


def _learned_vocab(sources, size, rank=0):
    """The WordPiece vocabulary learned from ``sources``, cached by corpora and size so that a
    rerun or a resumed run gets the same one without learning it again. HF's trainer orders
    tokens of equal count differently from one process to the next, so in a distributed run
    rank 0 learns it and the other workers wait for its file (else their cache keys, and so
    their preprocessed folders, would differ)."""
    described = json.dumps([[s.signature(), s.weight, s.doc_per_line] for s in sources] +
                           [size], sort_keys=True)
    path = cache_dir() / f'wordpiece-{hashlib.sha1(described.encode()).hexdigest()[:16]}.txt'
    if rank != 0:
        _wait_for(str(path), 'learning the vocabulary')
    if path.is_file():
        return read_wordpiece_vocab(str(path))
    vocab = learn_wordpiece_vocab(sources, size)
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write(path, lambda tmp: write_wordpiece_vocab(vocab, tmp))
    return vocab


def masking_config(opts):
    """``--masking`` and ``--mask-rate`` as one ``MaskingConfig``."""
    return MaskingConfig(rate=opts.mask_rate, strategy=opts.masking)


def preprocessed(opts, sources, vocab, tokenizer, *, rank=0, num_workers=1):
    """The run's ``CorpusData``: the cached shards of these corpora, vocabulary and settings,
    written first when absent (by rank 0; the other workers wait for them); ``train`` holds
    worker ``rank``'s shards of ``num_workers``."""
    settings = PreprocessSettings(max_len=opts.max_len, seed=opts.seed,
                                  masking=masking_config(opts),
                                  short_seq_prob=opts.short_seq_prob,
                                  valid_fraction=opts.valid_fraction,
                                  shard_size=opts.shard_size)
    folder = str(cache_dir() / f'corpus-{cache_key(sources, vocab, settings)}')
    if not os.path.isfile(os.path.join(folder, META_FILE)):
        if rank == 0:
            preprocess(sources, vocab, tokenizer, folder, settings)
        else:
            _wait_for(os.path.join(folder, META_FILE), 'preprocessing')
    train = ShardedDataset(folder, rank=rank, num_workers=num_workers)
    valid = ShardedDataset(folder, 'valid') if opts.valid_fraction else None
    data = CorpusData(train, valid, folder, train.meta)
    for line in describe(data.meta):
        print(line)
    return data


def _wait_for(path, work):
    """Wait until rank 0's ``work`` has written ``path``."""
    deadline = time.monotonic() + _PREPROCESS_WAIT_S
    while not os.path.isfile(path):
        if time.monotonic() > deadline:
            raise TimeoutError(f'rank 0 did not finish {work} ({path}) in '
                               f'{_PREPROCESS_WAIT_S} s')
        time.sleep(1.0)
