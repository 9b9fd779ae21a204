"""Global batches, the same on every worker, and each worker's slice of them.

Every worker draws the same sequence of global batches (a seeded loader, or synthetic
batches that are a function of the step) and keeps its slice, chosen by ``kv.rank`` and
``kv.num_workers``. So every worker runs the same number of steps (a worker that ran out of
data first would leave the others waiting in a push), a resumed run continues the same
sequence with any number of workers, and each worker knows the global batch's totals (its
sentence pairs and masked positions) that make the summed update that of one process on the
whole batch. A global batch smaller than the number of workers leaves the last workers idle
for that step.
"""
import numpy as np

from ..data.masking import MaskingConfig
from ..train.sharding import shard_sizes


def worker_slice(batch, rank, num_workers):
    """Worker ``rank``'s balanced slice of every array of ``batch`` (axis 0), or None when
    the batch has fewer samples than workers and this worker gets none."""
    if not (isinstance(num_workers, int) and num_workers >= 1):
        raise ValueError(f'num_workers={num_workers!r}; expected an integer >= 1')
    if not (isinstance(rank, int) and 0 <= rank < num_workers):
        raise ValueError(f'rank={rank!r}; expected an integer in 0..{num_workers - 1}')
    sizes = shard_sizes(batch[0].shape[0], num_workers, allow_idle=True)
    begin = sum(sizes[:rank])
    if sizes[rank] == 0:
        return None
    return tuple(array[begin:begin + sizes[rank]] for array in batch)


def synthetic_pretraining_batch(step, batch_size, *, vocab_size, max_len, num_preds=None,
                                seed=0, masking=MaskingConfig()):
    """A random batch in ``load_data_wiki``'s layout, the same for the same ``(seed, step)``
    in every process: ``(tokens, segments, valid_lens, pred_positions, mlm_weights,
    mlm_labels, nsp_labels)`` as NumPy arrays. ``num_preds`` defaults to the prediction slots
    of ``masking`` (a ``MaskingConfig``) at ``max_len``, as the real data pads them."""
    num_preds = num_preds or MaskingConfig.of(masking).max_predictions(max_len)
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
