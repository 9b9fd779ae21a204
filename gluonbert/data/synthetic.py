"""Synthetic pretraining batches: random data in ``load_data_wiki``'s layout, a function of
``(seed, step)`` alone, so that every process of a distributed job and every rerun draws the
same ones. For benchmarks and tests of the training path where the data does not matter.
"""
import numpy as np


def synthetic_pretraining_batch(step, batch_size, *, vocab_size, max_len, num_preds=None,
                                seed=0):
    """A random batch in ``load_data_wiki``'s layout, the same for the same ``(seed, step)``
    in every process: ``(tokens, segments, valid_lens, pred_positions, mlm_weights,
    mlm_labels, nsp_labels)`` as NumPy arrays. ``num_preds`` defaults to 15% of ``max_len``
    as in d2l."""
    num_preds = num_preds or max(1, round(max_len * 0.15))
    rng = np.random.default_rng([seed, step])
    valid_lens = rng.integers(max_len // 2, max_len + 1, batch_size)
    tokens = rng.integers(5, vocab_size, (batch_size, max_len))
    positions = np.arange(max_len)[None, :]
    padding = positions >= valid_lens[:, None]
    tokens[padding] = 1  # '<pad>' in d2l's vocabulary
    segments = (positions >= (valid_lens // 2)[:, None]).astype(np.int32)
    segments[padding] = 0
    # Distinct positions inside the sequence, never '<cls>' (0) or the last '<sep>'
    keys = rng.random((batch_size, max_len))
    keys[(positions < 1) | (positions >= valid_lens[:, None] - 1)] = np.inf
    pred_positions = np.argsort(keys, axis=1)[:, :num_preds]
    # As d2l pads them: the first predictions are real, the rest weigh 0 at position 0
    mlm_weights = np.arange(num_preds)[None, :] < rng.integers(1, num_preds + 1,
                                                               (batch_size, 1))
    mlm_labels = rng.integers(5, vocab_size, (batch_size, num_preds)) * mlm_weights
    pred_positions *= mlm_weights
    nsp_labels = rng.integers(0, 2, batch_size)
    return (tokens.astype(np.int32), segments, valid_lens.astype(np.float32),
            pred_positions.astype(np.int32), mlm_weights.astype(np.float32),
            mlm_labels.astype(np.int32), nsp_labels.astype(np.float32))


class SyntheticBatches:
    """An endless source of ``synthetic_pretraining_batch`` batches with ``EpochBatches``'
    interface (``epoch(e, start)``, ``len``): epoch ``e``'s batch ``b`` is step
    ``e * batches_per_epoch + b``."""

    def __init__(self, batch_size, *, vocab_size, max_len, seed=0, batches_per_epoch=1000):
        self.batch_size, self.vocab_size, self.max_len = batch_size, vocab_size, max_len
        self.seed, self.batches_per_epoch = seed, batches_per_epoch

    def __len__(self):
        return self.batches_per_epoch

    def epoch(self, epoch, start=0):
        for b in range(start, self.batches_per_epoch):
            yield synthetic_pretraining_batch(epoch * self.batches_per_epoch + b,
                                              self.batch_size, vocab_size=self.vocab_size,
                                              max_len=self.max_len, seed=self.seed)

    def __iter__(self):
        return self.epoch(0)
