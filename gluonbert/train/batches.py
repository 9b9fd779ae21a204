"""Batches of a data set in a seeded order, resumable at any batch.

``EpochBatches`` is the training engine's data source for the jobs: epoch ``e``'s order is a
function of ``(seed, e)`` alone, so a resumed run continues with batch ``b`` of epoch ``e``
without reading the ones before it (HF #11284: resuming re-read 28 hours of skipped batches),
every worker of a distributed job draws the same global batches, and the same seed gives the
same order in every process. A gluon ``DataLoader`` shuffles from NumPy's global generator,
which nothing seeds, so two runs of one command differed.
"""
import numbers

import numpy as np


def _check_positive_int(name, value):
    if not isinstance(value, numbers.Integral) or isinstance(value, bool) or value < 1:
        raise ValueError(f'{name}={value!r}; expected a positive integer')


class EpochBatches:
    """Batches of ``data``: a tuple of arrays (samples on axis 0; the fast path) or a gluon
    ``Dataset`` whose items are tuples of arrays (stacked per batch).

    ``shuffle`` draws epoch ``e``'s order from ``np.random.default_rng([seed, e])``;
    ``last_batch`` is ``'keep'`` (a smaller last batch) or ``'discard'``. Iterating gives
    epoch 0; ``epoch(e, start=b)`` gives epoch ``e`` from its batch ``b``. Batches are tuples
    of NumPy arrays.

    ``num_workers``: how many workers' batches make one global batch. 1 here: each batch is
    the global batch, which every worker of a distributed run draws alike and the engine
    slices by rank; ``corpus_pretraining.ShardBatches`` draws each worker's own share instead.
    """
    num_workers = 1

    def __init__(self, data, batch_size, *, shuffle=True, seed=0, last_batch='keep'):
        _check_positive_int('batch_size', batch_size)
        if last_batch not in ('keep', 'discard'):
            raise ValueError(f"last_batch={last_batch!r}; expected 'keep' or 'discard'")
        if not isinstance(seed, numbers.Integral) or isinstance(seed, bool) or seed < 0:
            raise ValueError(f'seed={seed!r}; expected an integer >= 0')
        self.arrays = tuple(np.asarray(a) for a in data) if isinstance(data, (tuple, list)) \
            else None
        self.dataset = None if self.arrays is not None else data
        self.num_samples = len(self.arrays[0]) if self.arrays is not None else len(data)
        if self.arrays is not None:
            for i, array in enumerate(self.arrays):
                if len(array) != self.num_samples:
                    raise ValueError(f'data[{i}] has {len(array)} samples, data[0] has '
                                     f'{self.num_samples}; expected the same number')
        if self.num_samples == 0:
            raise ValueError('data is empty; expected at least one sample')
        self.batch_size, self.shuffle, self.seed = batch_size, shuffle, seed
        self.last_batch = last_batch
        if len(self) == 0:
            raise ValueError(f'{self.num_samples} samples make no full batch of {batch_size}; '
                             f"expected a smaller batch_size or last_batch='keep'")

    def __len__(self):
        """Batches per epoch."""
        if self.last_batch == 'discard':
            return self.num_samples // self.batch_size
        return -(-self.num_samples // self.batch_size)

    def order(self, epoch):
        """The sample indices of epoch ``epoch``, in the order they are batched."""
        if not self.shuffle:
            return np.arange(self.num_samples)
        return np.random.default_rng([self.seed, epoch]).permutation(self.num_samples)

    def epoch(self, epoch, start=0):
        """The batches of epoch ``epoch``, from its batch ``start`` on."""
        order = self.order(epoch)
        for b in range(start, len(self)):
            yield self._gather(order[b * self.batch_size:(b + 1) * self.batch_size])

    def __iter__(self):
        return self.epoch(0)

    def _gather(self, indices):
        if self.arrays is not None:
            return tuple(array[indices] for array in self.arrays)
        items = [self.dataset[int(i)] for i in indices]
        return tuple(np.stack([np.asarray(item[k]) for item in items])
                     for k in range(len(items[0])))


class LongestInBatch(EpochBatches):
    """``EpochBatches`` of sequences padded to ``max_len``, each batch cut to its longest
    sequence rounded up to a multiple of ``multiple`` (HF's dynamic padding with
    ``pad_to_multiple_of``): a batch of short SNLI pairs computes on 48 positions, not 128.
    Rounding keeps the shapes few, so the static graphs are re-planned for a handful of
    widths only.

    ``sequence_arrays`` are the indices of the arrays whose last axis is the sequence (tokens,
    segments, per-token labels), ``lengths`` the index of the valid lengths. Padding carries
    no weight in attention, so only dropout's draws change with the width.

    ``group_by_length`` (HF's ``group_by_length``): each shuffled epoch is cut into groups of
    ``GROUP_BATCHES`` batches, each group sorted by length and its batches taken in a seeded
    random order, so that a batch holds sentences of about one length and short ones stop
    paying for the longest of a random draw (on SST-2 at batch 64, about half the positions);
    the groups keep the shuffled order, and so does which sentences share a group.
    """
    GROUP_BATCHES = 50

    def __init__(self, data, batch_size, *, sequence_arrays, lengths, multiple=16,
                 group_by_length=False, **options):
        super().__init__(data, batch_size, **options)
        _check_positive_int('multiple', multiple)
        self.sequence_arrays, self.lengths, self.multiple = set(sequence_arrays), lengths, multiple
        self.group_by_length = group_by_length

    def order(self, epoch):
        order = super().order(epoch)
        if not (self.group_by_length and self.shuffle and self.arrays is not None):
            return order
        valid = self.arrays[self.lengths]
        longest = valid.reshape(len(valid), -1).max(axis=1)
        size = self.batch_size * self.GROUP_BATCHES
        rng = np.random.default_rng([self.seed, epoch, 1])
        grouped = []
        for start in range(0, len(order), size):
            group = order[start:start + size]
            group = group[np.argsort(-longest[group], kind='stable')]
            batches = [group[i:i + self.batch_size]
                       for i in range(0, len(group), self.batch_size)]
            full = len(group) // self.batch_size  # a smaller last batch stays last
            grouped += [batches[i] for i in rng.permutation(full)] + batches[full:]
        return np.concatenate(grouped)

    def _gather(self, indices):
        batch = super()._gather(indices)
        width = batch[min(self.sequence_arrays)].shape[-1]
        longest = int(np.max(batch[self.lengths]))
        cut = min(width, -(-longest // self.multiple) * self.multiple)
        return tuple(array[..., :cut] if i in self.sequence_arrays else array
                     for i, array in enumerate(batch))
