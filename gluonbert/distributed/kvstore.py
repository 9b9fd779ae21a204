"""The KVStore that sums gradients across contexts and machines, chosen and checked up front.

==================  ==============================================================
``device``          one machine; gradients summed on the contexts (GPU to GPU)
``local``           one machine; gradients summed in CPU memory
``dist_sync``       several workers; the servers sum every worker's gradient, then
                    each worker updates (synchronous, as one big batch)
``dist_device_sync`` as ``dist_sync``, summing a worker's contexts on the devices first
``dist_async``      several workers; the servers update the parameters on each push
==================  ==============================================================

MXNet 1.9.1 takes any name (``mx.kv.create('foo')`` is a local store called 'foo'), aborts
the process when a ``dist`` store is created without the ``DMLC_*`` variables, crashes the
servers when ``dist_async`` has no updater there (mxnet #11855), and waits forever for a
scheduler that never answers. Each of these is an error naming the value here.
"""
import mxnet as mx
import numpy as np

from .. import compat
from .cluster import LAUNCH_HINT, cluster_from_env
from .watchdog import Watchdog

KVSTORE_TYPES = ('device', 'local', 'dist_sync', 'dist_device_sync', 'dist_async')
DEFAULT_CONNECT_TIMEOUT = 120.0
# The keys of WorkerSums, far above the trainer's (one per parameter, from 0) and below
# 2**31 / 9973: MXNet 1.9.1 picks a key's server as `key * 9973` in a 32-bit int
_SUMS_KEY = 100_000


def check_kvstore_type(kvstore):
    """``kvstore`` if it is one of ``KVSTORE_TYPES``, else ValueError naming it."""
    if kvstore not in KVSTORE_TYPES:
        raise ValueError(f'kvstore={kvstore!r} is not a KVStore type; expected one of '
                         f'{", ".join(KVSTORE_TYPES)}')
    return kvstore


def is_distributed(kvstore):
    return check_kvstore_type(kvstore).startswith('dist')


def resolve_update_on_kvstore(kvstore, update_on_kvstore=None):
    """Where the optimizer runs: always on the servers for ``dist_async`` (they have no other
    way to apply a push), on the workers otherwise unless asked, so that the summed gradient
    can be checked, clipped and checkpointed with the optimizer state."""
    if update_on_kvstore not in (None, True, False):
        raise ValueError(f'update_on_kvstore={update_on_kvstore!r}; expected None, True or False')
    if check_kvstore_type(kvstore) == 'dist_async':
        if update_on_kvstore is False:
            raise ValueError("kvstore='dist_async' applies each push on the servers, so it "
                             "needs the optimizer there (mxnet #11855: 'Updater needs to be "
                             "set for async mode'); update_on_kvstore=False is not possible "
                             "with it: leave it None or use dist_sync")
        return True
    return bool(update_on_kvstore)


def create_kvstore(kvstore='device', *, connect_timeout=DEFAULT_CONNECT_TIMEOUT):
    """A new ``mx.kv.KVStore`` of type ``kvstore``, after checking it against the process's
    ``DMLC_*`` variables.

    A ``dist`` store needs a worker started by a launcher; a non-dist store in such a worker
    is refused too (each worker would train alone). Joining the job waits at most
    ``connect_timeout`` seconds for the scheduler and the other processes, then exits the
    process with status 124 and the settings it waited with. Give each trainer its own store:
    two trainers on one store use the same keys (mxnet #13054).
    """
    check_kvstore_type(kvstore)
    found = cluster_from_env()
    if not is_distributed(kvstore):
        if found is not None and found[1] == 'worker' and found[0].num_workers > 1:
            raise ValueError(f'kvstore={kvstore!r} keeps gradients on this machine, but this '
                             f'process is one of DMLC_NUM_WORKER={found[0].num_workers} '
                             f'workers of a distributed job: each would train alone; use '
                             f'dist_sync, dist_device_sync or dist_async')
        return mx.kv.create(kvstore)
    if found is None:
        raise ValueError(f'kvstore={kvstore!r} needs a scheduler and servers: this process '
                         f'has no DMLC_* variables; {LAUNCH_HINT}')
    cluster, role = found
    if role != 'worker':
        raise ValueError(f'DMLC_ROLE={role!r}, but only a worker creates a KVStore to train '
                         f'with; {LAUNCH_HINT}')
    with Watchdog(connect_timeout, f'the other processes of the job to join ({cluster.describe()}'
                  f'; every process must be started with the same DMLC_PS_ROOT_URI, '
                  f'DMLC_PS_ROOT_PORT, DMLC_NUM_SERVER and DMLC_NUM_WORKER)'):
        store = mx.kv.create(kvstore)
        # The first barrier returns once every worker has joined
        compat.barrier(store)
    return store


class WorkerSums:
    """Sums of a few host numbers over the workers of a synchronous ``dist`` KVStore, the same
    on every worker, so that all of them take the same decision (the global batch's totals
    when each worker reads its own data, the loss a spike guard judges).

    ``sums(values)`` pushes the values as one small float64 array under a key of its own (one
    per length: a key's size is fixed) and pulls the servers' sum. Every worker must call it
    at the same points, with as many values; the optimizer must run on the workers (servers
    without one store the sum of the pushes).
    """

    def __init__(self, store):
        if not (isinstance(store, mx.kv.KVStore) and store.type in ('dist_sync',
                                                                     'dist_device_sync')):
            raise ValueError(f'kvstore={getattr(store, "type", store)!r}; summing over the '
                             f'workers needs a dist_sync or dist_device_sync KVStore')
        self.store = store
        self._keys = set()

    def __call__(self, values):
        array = mx.nd.array(np.asarray(values, dtype=np.float64), dtype='float64')
        key = _SUMS_KEY + array.size
        if key not in self._keys:  # the first call of every worker: init waits for them all
            self.store.init(key, mx.nd.zeros(array.shape, dtype='float64'))
            self._keys.add(key)
        self.store.push(key, array)
        self.store.pull(key, out=array)
        return array.asnumpy()
