"""Every use of MXNet 1.9.1's private internals, behind one door.

gluonbert needs a few things that MXNet 1.9.1 offers only through private attributes (the
optimizer state inside a ``gluon.Trainer``, a parameter's freshness flag, the cached graph of
a hybridized block...) or reports only through exceptions of one generic type. Each is wrapped
here in a small named function saying which internal it reads and why, so that an MXNet
upgrade touches this one file (and ``tests/test_compat.py`` says what broke).
"""
import errno

import mxnet as mx


def _write_failed(error, path):
    """MXNet 1.9.1 reports a failed file write (a full disk, a file over the size limit) as
    ``MXNetError: [...] Check failed: ... FileStream.Write incomplete``: an OSError here."""
    if 'Write incomplete' in str(error) or 'No space left' in str(error):
        return OSError(errno.ENOSPC, f'cannot write {path}: the disk is full (or the file is '
                       f'over a size limit)')
    return OSError(errno.EIO, f'cannot write {path}: {str(error).splitlines()[0]}')


def save_parameters(block, path):
    """``block.save_parameters(path)``, a failed write raised as OSError (see
    ``_write_failed``)."""
    try:
        block.save_parameters(path)
    except mx.base.MXNetError as error:
        raise _write_failed(error, path) from None


def save_ndarrays(path, arrays):
    """``mx.nd.save(path, arrays)``, a failed write raised as OSError."""
    try:
        mx.nd.save(path, arrays)
    except mx.base.MXNetError as error:
        raise _write_failed(error, path) from None


def load_ndarrays(path):
    """``mx.nd.load(path)``; a file MXNet cannot parse raised as ValueError (MXNet 1.9.1
    raises its generic MXNetError with a C++ stack trace)."""
    try:
        return mx.nd.load(path)
    except mx.base.MXNetError as error:
        raise ValueError(f'{path} is not an MXNet array file '
                         f'({_first_line(error)})') from None


def _first_line(error):
    lines = [line for line in str(error).splitlines() if line.strip()
             and not line.startswith(('Traceback', '  File', 'Stack trace', '  ['))]
    return lines[-1].strip() if lines else type(error).__name__


# ---- gluon.Trainer's optimizer state (checkpoints read and restore it) -------------------

def trainer_updaters(trainer):
    """The per-device ``Updater``s of a ``gluon.Trainer`` (``Trainer._updaters``): they hold
    the optimizer state (Adam's moments) that a checkpoint saves; MXNet's own
    ``save_states`` pickles them instead."""
    return trainer._updaters


def trainer_param_indices(trainer):
    """``{parameter name: index}`` of the parameters a ``gluon.Trainer`` updates
    (``Trainer._param2idx``); optimizer states are keyed by that index."""
    return trainer._param2idx


def trainer_contexts(trainer):
    """The devices a ``gluon.Trainer`` updates on (``Trainer._contexts``), one updater each."""
    return trainer._contexts


def update_counts(optimizer):
    """``{device id: {index: updates}}`` of an MXNet optimizer
    (``Optimizer._all_index_update_counts``): Adam's bias correction reads them."""
    return optimizer._all_index_update_counts


def set_update_counts(optimizer, contexts, counts):
    """Set every device's per-parameter update counts to ``counts`` (``{index: updates}``)."""
    all_counts = optimizer._all_index_update_counts
    for device_id in {context.device_id for context in contexts} | set(all_counts):
        all_counts.setdefault(device_id, {})
        all_counts[device_id].clear()
        all_counts[device_id].update(counts)


# ---- blocks ---------------------------------------------------------------------------------

def structural_parameters(block):
    """``{structural name: Parameter}`` of ``block`` (``encoder.blks.0.ffn.dense1.weight``,
    the names of ``save_parameters`` files and of d2l's checkpoints), from
    ``Block._collect_params_with_prefix``; ``collect_params`` keys by the global prefix
    (``bertmodel0_dense0_weight``), which depends on how many blocks were built before."""
    return block._collect_params_with_prefix()


# ---- gluon.Trainer's KVStore and parameters (the training engine's step) ----------------

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
