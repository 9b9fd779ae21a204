"""Pretraining examples on disk as shards of ``.npy`` arrays, read lazily through memory maps.

A split (``train``, ``valid``) is a list of shard folders, each holding the seven arrays of
``pad_bert_inputs`` (``cache.ARRAY_NAMES``) for a few thousand examples. Writing keeps one
shard in memory at a time; reading maps a shard only when one of its examples is asked for
and keeps a few recent ones mapped, so a corpus far larger than memory trains in bounded
memory. In a distributed run each worker opens only its own shards: ``rank``,
``rank + num_workers``, ...
"""
import collections
import os

import numpy as np

from ..json_file import read_json
from .cache import ARRAY_NAMES

META_FILE = 'meta.json'
# Shards kept mapped at once by a reader: enough for batches drawn across a few shards
_OPEN_SHARDS = 8


class ShardWriter:
    """Collects padded example arrays and writes them as shards of ``shard_size`` examples
    under ``folder/split``; ``close()`` writes the last, smaller shard and returns the list
    of example counts per shard."""

    def __init__(self, folder, split, shard_size):
        if not (isinstance(shard_size, int) and shard_size >= 1):
            raise ValueError(f'shard_size={shard_size!r}; expected a positive number of '
                             f'examples')
        self.folder = os.path.join(folder, split)
        self.shard_size = shard_size
        self.counts = []
        self._pending, self._pending_rows = [], 0

    def add(self, arrays):
        """Queue the seven arrays of some examples (rows on axis 0)."""
        self._pending.append(arrays)
        self._pending_rows += len(arrays[0])
        while self._pending_rows >= self.shard_size:
            self._write(self.shard_size)

    def close(self):
        if self._pending_rows:
            self._write(self._pending_rows)
        return self.counts

    def _write(self, rows):
        joined = [np.concatenate(column) for column in zip(*self._pending)]
        shard = os.path.join(self.folder, f'shard-{len(self.counts):05d}')
        os.makedirs(shard)
        for name, array in zip(ARRAY_NAMES, joined):
            np.save(os.path.join(shard, name + '.npy'), array[:rows])
        self.counts.append(rows)
        rest = [array[rows:] for array in joined]
        self._pending, self._pending_rows = ([rest], len(rest[0])) if len(rest[0]) else ([], 0)


def read_meta(folder):
    """The ``meta.json`` of a preprocessed folder."""
    path = os.path.join(folder, META_FILE)
    if not os.path.isfile(path):
        raise FileNotFoundError(f'{path} not found: {folder!r} is not a preprocessed corpus '
                                f'folder')
    return read_json(path, 'a JSON object describing the preprocessed corpus')


class ShardedDataset:
    """The examples of one split of a preprocessed folder, read lazily.

    ``dataset[i]`` is one example's seven values, ``dataset[indices]`` (an integer array)
    the seven arrays of those examples, in ``indices``' order, as ``WikiTextDataset``. With
    ``num_workers`` > 1, the dataset holds worker ``rank``'s shards only.
    """

    def __init__(self, folder, split='train', *, rank=0, num_workers=1):
        meta = read_meta(folder)
        if split not in meta['splits']:
            raise ValueError(f'split={split!r}; {folder!r} has {sorted(meta["splits"])}')
        if not (isinstance(num_workers, int) and num_workers >= 1
                and isinstance(rank, int) and 0 <= rank < num_workers):
            raise ValueError(f'rank={rank!r}, num_workers={num_workers!r}; expected '
                             f'0 <= rank < num_workers')
        counts = meta['splits'][split]['shards']
        if len(counts) < num_workers:
            raise ValueError(f'{folder!r} has {len(counts)} {split} shards for {num_workers} '
                             f'workers, each reading its own; preprocess with a smaller shard '
                             f'size (gluonbert pretrain --shard-size)')
        self.folder, self.split, self.meta = folder, split, meta
        self.rank, self.num_workers = rank, num_workers
        self.shards = list(range(len(counts)))[rank::num_workers]
        self.counts = [counts[s] for s in self.shards]
        self._starts = np.concatenate([[0], np.cumsum(self.counts)])
        self._open = collections.OrderedDict()

    def __len__(self):
        return int(self._starts[-1])

    def examples_per_worker(self):
        """The number of examples in each worker's shards, from ``meta.json``: every worker
        knows the others' shares without opening their shards."""
        counts = self.meta['splits'][self.split]['shards']
        return [sum(counts[r::self.num_workers]) for r in range(self.num_workers)]

    def order(self, seed, epoch):
        """A shuffled order of all examples that reads few shards at a time: the shards in a
        random order, in windows of as many as stay mapped, each window's examples shuffled
        together (a function of ``(seed, epoch)`` only, so a resumed run continues it)."""
        rng = np.random.default_rng([seed, epoch])
        shards = rng.permutation(len(self.shards))
        windows = []
        for begin in range(0, len(shards), _OPEN_SHARDS):
            members = np.concatenate([np.arange(self._starts[s], self._starts[s + 1])
                                      for s in shards[begin:begin + _OPEN_SHARDS]])
            windows.append(rng.permutation(members))
        return np.concatenate(windows)

    def _arrays(self, position):
        """The mapped arrays of the ``position``-th own shard (least recently used closed)."""
        arrays = self._open.pop(position, None)
        if arrays is None:
            shard = os.path.join(self.folder, self.split, f'shard-{self.shards[position]:05d}')
            arrays = [np.load(os.path.join(shard, name + '.npy'), mmap_mode='r')
                      for name in ARRAY_NAMES]
            if len(self._open) >= _OPEN_SHARDS:
                self._open.popitem(last=False)
        self._open[position] = arrays
        return arrays

    def __getitem__(self, index):
        if np.isscalar(index):
            if not -len(self) <= index < len(self):
                raise IndexError(f'index {index} out of range for {len(self)} examples')
            index %= len(self)
            position = int(np.searchsorted(self._starts, index, side='right')) - 1
            return tuple(np.array(a[index - self._starts[position]])
                         for a in self._arrays(position))
        index = np.asarray(index, dtype=np.int64)
        positions = np.searchsorted(self._starts, index, side='right') - 1
        out = [None] * len(ARRAY_NAMES)
        for position in np.unique(positions):
            rows = np.flatnonzero(positions == position)
            local = index[rows] - self._starts[position]
            for k, array in enumerate(self._arrays(int(position))):
                if out[k] is None:
                    out[k] = np.empty((len(index),) + array.shape[1:], array.dtype)
                out[k][rows] = array[local]
        return tuple(out)
