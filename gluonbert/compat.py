"""Every use of MXNet 1.9.1's private attributes, behind one door.

gluonbert needs a few things MXNet has no public API for (a gradient's "fresh" mark, a
Trainer's KVStore and updaters, a block's cached graph, ...). Each is one small function
here, named for what it does, so that an MXNet upgrade touches this file and its tests only.
"""
import mxnet as mx


def trainer_kvstore(trainer):
    """The KVStore a ``gluon.Trainer`` was given: a type name or an ``mx.kv.KVStore``."""
    return trainer._kvstore_params['kvstore']


def updates_on_servers(trainer):
    """Whether a ``gluon.Trainer`` updates on the servers of a ``dist`` KVStore, where its
    gradient scale is fixed at the first step (``dist_async``, or ``update_on_kvstore``)."""
    store, flag = (trainer._kvstore_params[k] for k in ('kvstore', 'update_on_kvstore'))
    kind = store.type if isinstance(store, mx.kv.KVStore) else str(store)
    return kind.startswith('dist') and (bool(flag) or kind == 'dist_async')


def trainer_parameters(trainer):
    """The parameters a ``gluon.Trainer`` updates, in its order."""
    return list(trainer._params)


def initialise_store(trainer):
    """Put the parameters in the trainer's KVStore (rank 0's values on every worker) and, on
    a ``dist`` store, wait for every worker, before the first gradient is pushed.

    ``gluon.Trainer`` does this inside its first ``step``, right before pushing the
    gradients; on ``dist_sync`` MXNet 1.9.1 then sometimes gives a worker the summed
    gradient of a key in place of its initial weights (measured: 3 of 8 two-worker runs of
    one step ended with different parameters on the workers; 0 of 10 with this wait).
    """
    if not trainer._kv_initialized:
        trainer._init_kvstore()
    if trainer._params_to_init:
        trainer._init_params()
    mx.nd.waitall()
    store = trainer._kvstore
    if store is not None and store.type.startswith('dist'):
        store._barrier()


def is_deferred(param):
    """Whether ``param`` still waits for its shape (deferred initialisation)."""
    return bool(param._deferred_init)


def mark_gradient_fresh(array):
    """Mark ``array``'s gradient as written by the last backward, as ``backward`` does."""
    array._fresh_grad = True
