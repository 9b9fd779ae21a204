"""Gradient accumulation: one update from the gradients of several micro-batches.

With the loss summed (not averaged) per micro-batch and the update normalised by the total
number of samples, N micro-batches give the gradient of the one batch they came from, up to
the order of float additions.
"""


def split_micro_batches(batch, accumulate):
    """Split every array of ``batch`` along axis 0 into ``accumulate`` equal micro-batches.

    Returns a list of tuples, one per micro-batch. A batch that ``accumulate`` does not divide
    is an error: unequal micro-batches would weight samples unequally under a mean loss.
    """
    if not (isinstance(accumulate, int) and accumulate >= 1):
        raise ValueError(f'accumulate={accumulate!r}; expected an integer >= 1')
    batch_size = batch[0].shape[0]
    if batch_size % accumulate:
        raise ValueError(f'accumulate={accumulate} does not divide the batch of {batch_size} '
                         f'samples; expected a batch size that is a multiple of accumulate')
    for i, array in enumerate(batch):
        if array.shape[0] != batch_size:
            raise ValueError(f'batch item {i} has {array.shape[0]} samples, item 0 has '
                             f'{batch_size}; expected the same batch size for every item')
    size = batch_size // accumulate
    return [tuple(array[k * size:(k + 1) * size] for array in batch) for k in range(accumulate)]
