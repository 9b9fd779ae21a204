"""Split a batch across devices by sample, with balanced shard sizes.

``gluon.utils.split_and_load(..., even_split=False)`` gives splits like [3, 3, 3, 10] and
fails with "Too many slices" on a batch smaller than the device count; here sizes differ by
at most one sample. A batch smaller than the device count is refused unless the caller
accepts idle devices (``allow_idle=True``): then the last devices get no shard, and the
caller must make their gradient count as zero (see ``gluonbert.train.engine``).

Across workers, every worker draws the same global batch and keeps its slice
(``worker_slice``, by ``kv.rank``), so each knows the global totals that make the summed
update that of one process on the whole batch (workers that read their own shards draw
their shares instead: see ``gluonbert.train.engine``).
"""
import mxnet as mx


def shard_sizes(batch_size, num_devices, *, allow_idle=False):
    """Balanced shard sizes, e.g. (10, 4) -> [3, 3, 2, 2]; with ``allow_idle``,
    (2, 3) -> [1, 1, 0]."""
    if num_devices < 1:
        raise ValueError('devices is empty; expected at least one context')
    if batch_size < num_devices and not allow_idle:
        raise ValueError(f'a batch of {batch_size} samples cannot be split across '
                         f'{num_devices} devices; expected at least one sample per device')
    base, extra = divmod(batch_size, num_devices)
    return [base + (i < extra) for i in range(num_devices)]


def shard_batch(batch, devices, *, allow_idle=False):
    """Split every array of ``batch`` along axis 0 and copy shard i to ``devices[i]``.

    Returns one tuple of arrays per device, in the order of ``batch``; with ``allow_idle``,
    only for the first ``min(batch size, len(devices))`` devices.
    """
    batch_size = batch[0].shape[0]
    for i, array in enumerate(batch):
        if array.shape[0] != batch_size:
            raise ValueError(f'batch item {i} has {array.shape[0]} samples, item 0 has '
                             f'{batch_size}; expected the same batch size for every item')
    shards, begin = [], 0
    sizes = shard_sizes(batch_size, len(devices), allow_idle=allow_idle)
    for size, device in zip(sizes, devices):
        if size == 0:
            break
        end = begin + size
        shards.append(tuple(_as_array(a)[begin:end].as_in_context(device) for a in batch))
        begin = end
    return shards


def _as_array(array):
    return array if isinstance(array, mx.nd.NDArray) else mx.nd.array(array)


def worker_slice(batch, rank, num_workers):
    """Worker ``rank``'s balanced slice of every array of ``batch`` (axis 0), or None when
    the batch has fewer samples than workers and this worker gets none."""
    if not (isinstance(num_workers, int) and num_workers >= 1):
        raise ValueError(f'num_workers={num_workers!r}; expected an integer >= 1')
    if not (isinstance(rank, int) and 0 <= rank < num_workers):
        raise ValueError(f'rank={rank!r}; expected an integer in 0..{num_workers - 1}')
    if num_workers == 1:
        return tuple(batch)
    sizes = shard_sizes(batch[0].shape[0], num_workers, allow_idle=True)
    begin = sum(sizes[:rank])
    if sizes[rank] == 0:
        return None
    return tuple(array[begin:begin + sizes[rank]] for array in batch)
