"""Plain-text corpora -> BERT pretraining examples, written once as memory-mapped shards.

The pipeline streams: documents are read (``corpus``), tokenized and split between training
and a held-out validation part, gathered into chunks of about ``chunk_tokens`` tokens, packed
into sentence pairs as BERT does (``packing``; the random segment B comes from the same
chunk), masked (``masking``), padded and appended to shards (``shards``). Only one chunk and
one shard are in memory at a time. Several corpora are mixed by weight: a corpus of weight
``w`` contributes each of its training documents ``w`` times in expectation (the integer part
always, the fraction at random), with fresh pairs and masks each time.

The result is a folder (written whole or not at all) with ``meta.json`` (the settings, the
vocabulary's size and unknown rate, and per split and corpus the counts of documents,
sentences, examples, NSP balance and truncated tokens), the vocabulary, and the shards. The
validation examples are masked with their own fixed seed, so every evaluation scores the same
masked positions (HF #1633: a validation set that masked nothing gave a perplexity of 1).
"""
import contextlib
import dataclasses
import hashlib
import json
import os
import random

from ..atomic import atomic_folder, write_json
from ..progress import progress_bar
from .corpus import read_documents
from .masking import MaskingConfig, MLMMasker
from .packing import SHORT_SEQ_PROB, PackingReport, pack_document
from .pretraining import check_max_len, pad_bert_inputs
from .shards import META_FILE, ShardWriter
from .wordpiece import WordPieceTokenizer, write_wordpiece_vocab

FORMAT_VERSION = 1
VOCAB_JSON, VOCAB_TXT = 'vocab.json', 'vocab.txt'
# What a preprocessed folder holds (META_FILE marks one)
FOLDER_FILES = (META_FILE, VOCAB_JSON, VOCAB_TXT, 'train', 'valid')


@dataclasses.dataclass(frozen=True)
class PreprocessSettings:
    """Everything that decides the examples (and so the cache key), besides the corpora and
    the vocabulary."""
    max_len: int = 128
    seed: int = 0
    masking: MaskingConfig = MaskingConfig()
    short_seq_prob: float = SHORT_SEQ_PROB
    valid_fraction: float = 0.0
    chunk_tokens: int = 1 << 18
    shard_size: int = 1 << 14

    def __post_init__(self):
        check_max_len(self.max_len)
        if not 0 <= self.short_seq_prob <= 1:
            raise ValueError(f'short_seq_prob={self.short_seq_prob!r}; expected a probability')
        if not 0 <= self.valid_fraction < 1:
            raise ValueError(f'valid_fraction={self.valid_fraction!r}; expected a share in '
                             f'[0, 1)')
        for name in ('chunk_tokens', 'shard_size'):
            value = getattr(self, name)
            if not (isinstance(value, int) and value >= 1):
                raise ValueError(f'{name}={value!r}; expected a positive integer')

    def as_dict(self):
        return dataclasses.asdict(self)


def cache_key(sources, vocab, settings):
    """A digest of the corpora (files, sizes, times, weights), the vocabulary and the
    settings: a preprocessed folder is reused only when all three match."""
    described = {'format': FORMAT_VERSION, 'settings': settings.as_dict(),
                 'corpora': [dict(dataclasses.asdict(s), files=s.signature()) for s in sources],
                 'vocab': vocab.idx_to_token}
    return hashlib.sha1(json.dumps(described, sort_keys=True).encode('utf-8')).hexdigest()[:16]


class _Split:
    """One split's chunk of documents, its writer, masker and counts."""

    def __init__(self, name, staging, settings, vocab, seed):
        self.settings, self.vocab = settings, vocab
        self.rng = random.Random(seed)
        self.masker = MLMMasker(vocab, settings.masking, self.rng)
        self.writer = ShardWriter(staging, name, settings.shard_size)
        self.documents, self.origins, self.chunk_tokens = [], [], 0
        self.reports = {}
        self._ids = (vocab['<cls>'], vocab['<sep>'])

    def add(self, document, origin):
        self.documents.append(document)
        self.origins.append(origin)
        self.chunk_tokens += sum(map(len, document))
        if self.chunk_tokens >= self.settings.chunk_tokens:
            self.flush()

    def flush(self):
        """Pack, mask, pad and queue the chunk's documents (shuffled, as BERT does)."""
        if not self.documents:
            return
        order = list(range(len(self.documents)))
        self.rng.shuffle(order)
        documents = [self.documents[i] for i in order]
        cls, sep = self._ids
        examples = []
        for index, origin in enumerate(self.origins[i] for i in order):
            report = self.reports.setdefault(origin, PackingReport())
            for tokens_a, tokens_b, is_next in pack_document(
                    index, documents, self.settings.max_len, self.rng,
                    self.settings.short_seq_prob, report):
                tokens = [cls] + tokens_a + [sep] + tokens_b + [sep]
                segments = [0] * (len(tokens_a) + 2) + [1] * (len(tokens_b) + 1)
                examples.append(self.masker(tokens) + (segments, is_next))
        self.rng.shuffle(examples)
        self.writer.add(pad_bert_inputs(examples, self.settings.max_len, self.vocab,
                                        self.settings.masking))
        self.documents, self.origins, self.chunk_tokens = [], [], 0

    def close(self):
        self.flush()
        total = PackingReport()
        for report in self.reports.values():
            total += report
        return {'shards': self.writer.close(), 'total': total.as_dict(),
                'corpora': {origin: r.as_dict() for origin, r in self.reports.items()}}


def _copies(weight, rng):
    """How many times a document of a corpus of ``weight`` is used: the integer part, plus
    one with the probability of the fraction."""
    whole = int(weight)
    return whole + (rng.random() < weight - whole)


def preprocess(sources, vocab, tokenizer, folder, settings=PreprocessSettings(), *,
               progress=True):
    """Write the examples of ``sources`` (``CorpusSource`` list) to ``folder`` and return
    its meta dict. ``tokenizer(text)`` gives the tokens of a sentence, in ``vocab``.

    The folder is written whole or not at all; an existing folder other than a previous
    preprocessed corpus is refused.
    """
    if not sources:
        raise ValueError('no corpus given; expected at least one text file or folder')
    split_rng = random.Random(f'{settings.seed}-split')
    unknown, tokens_seen, unk = 0, 0, vocab.unk
    total_bytes = sum(source.size() for source in sources)
    shown = (progress_bar(total_bytes, 'preprocess (bytes)') if progress
             else contextlib.nullcontext())
    with atomic_folder(folder, FOLDER_FILES, META_FILE, 'preprocessed corpus') as staging, \
            shown as bar:
        splits = {'train': _Split('train', staging, settings, vocab, settings.seed)}
        if settings.valid_fraction:
            # Validation masks come from their own seed: fixed whatever the training mix
            splits['valid'] = _Split('valid', staging, settings, vocab,
                                     f'{settings.seed}-valid')
        for source in sources:
            origin = source.path
            for document in read_documents(source, bar.update if progress else None):
                sentences = [vocab.to_indices(tokenizer(s)).tolist() for s in document]
                sentences = [s for s in sentences if s]
                counts = sum(map(len, sentences))
                unknown += sum(s.count(unk) for s in sentences)
                tokens_seen += counts
                held_out = split_rng.random() < settings.valid_fraction
                split = splits['valid' if held_out else 'train']
                report = split.reports.setdefault(origin, PackingReport())
                report.documents += 1
                report.sentences += len(sentences)
                report.tokens += counts
                if not sentences:
                    report.empty_documents += 1
                    continue
                for _ in range(1 if held_out else _copies(source.weight, split_rng)):
                    split.add(sentences, origin)
        meta = {'format': FORMAT_VERSION, 'settings': _jsonable(settings.as_dict()),
                'corpora': [dataclasses.asdict(s) for s in sources],
                'vocab': {'size': len(vocab), 'unknown_rate':
                          unknown / tokens_seen if tokens_seen else 0.0},
                'splits': {name: split.close() for name, split in splits.items()}}
        if not sum(meta['splits']['train']['shards']):
            raise ValueError(f'the corpora {[s.path for s in sources]} hold no text; expected '
                             f'documents of at least one token')
        vocab.save_json(os.path.join(staging, VOCAB_JSON))
        if isinstance(tokenizer, WordPieceTokenizer):
            write_wordpiece_vocab(vocab, os.path.join(staging, VOCAB_TXT))
        write_json(os.path.join(staging, META_FILE), meta)
    return meta


def _jsonable(value):
    return json.loads(json.dumps(value, default=dataclasses.asdict))


def describe(meta):
    """Lines for the log: per split and corpus, what was read, packed and dropped."""
    vocab = meta['vocab']
    lines = [f'vocabulary: {vocab["size"]} tokens, {vocab["unknown_rate"]:.3%} of the corpus '
             f'tokens unknown']
    for name, split in meta['splits'].items():
        total = PackingReport(**split['total'])
        lines.append(f'{name}: {len(split["shards"])} shards; {total}')
        if len(split['corpora']) > 1:
            for origin, report in split['corpora'].items():
                share = report['examples'] / total.examples if total.examples else 0.0
                lines.append(f'  {origin}: {share:.1%} of the examples; '
                             f'{PackingReport(**report)}')
    return lines
