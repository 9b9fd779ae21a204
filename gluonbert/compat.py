"""Every use of MXNet 1.9.1's private internals, behind one door.

gluonbert needs a few things that MXNet 1.9.1 offers only through private attributes (the
optimizer state inside a ``gluon.Trainer``, a parameter's freshness flag, the cached graph of
a hybridized block...) or reports only through exceptions of one generic type. Each is wrapped
here in a small named function saying which internal it reads and why, so that an MXNet
upgrade touches this one file (and ``tests/test_compat.py`` says what broke).
"""
import os

import mxnet as mx
from mxnet.contrib import amp as _amp
from mxnet.util import is_np_shape, np_shape


def _write_failed(error, path):
    """MXNet 1.9.1 reports a failed file write (a full disk, a file over the size limit) as
    ``MXNetError: [...] Check failed: ... FileStream.Write incomplete``: an OSError here."""
    if 'Write incomplete' in str(error) or 'No space left' in str(error):
        return OSError(f'cannot write {path}: the disk is full (or the file is over a size '
                       f'limit)')
    return OSError(f'cannot write {path}: {_first_line(error)}')


def save_parameters(block, path):
    """``block.save_parameters(path)``, a failed write raised as OSError (see
    ``_write_failed``) and the file read back (see ``save_ndarrays``)."""
    try:
        block.save_parameters(path)
    except mx.base.MXNetError as error:
        raise _write_failed(error, path) from None
    _check_written(path, {name: p.shape for name, p in structural_parameters(block).items()})


def save_ndarrays(path, arrays):
    """``mx.nd.save(path, arrays)``, a failed write raised as OSError, and the file read back:
    MXNet 1.9.1 does not check ``fclose``, so the last buffered block of a file written onto
    a full disk is lost without an error (a small file comes out empty)."""
    try:
        mx.nd.save(path, arrays)
    except mx.base.MXNetError as error:
        raise _write_failed(error, path) from None
    _check_written(path, _shapes(arrays))


def _shapes(arrays):
    """``{key: shape}`` of a dict or list of arrays (``mx.nd.load`` gives ``[]`` for ``{}``)."""
    items = arrays.items() if isinstance(arrays, dict) else enumerate(arrays)
    return {key: array.shape for key, array in items}


def _check_written(path, shapes):
    try:
        written = _shapes(mx.nd.load(path))
    except mx.base.MXNetError:
        written = None
    if written != shapes:
        raise OSError(f'cannot write {path}: the file is incomplete (a full disk, or a file '
                      f'over a size limit)')


def load_ndarrays(path):
    """``mx.nd.load(path)``; a file MXNet cannot parse raised as ValueError (MXNet 1.9.1
    raises its generic MXNetError with a C++ stack trace)."""
    try:
        return mx.nd.load(path)
    except mx.base.MXNetError as error:
        raise ValueError(f'{path} is not an MXNet array file '
                         f'({_first_line(error)})') from None


class UnreadableParameters(ValueError):
    """A file that is no MXNet parameter file at all (``load_parameters``)."""


def load_parameters(block, path, ctx=None):
    """``block.load_parameters(path, ctx=ctx)``; a file MXNet cannot parse raised as
    ``UnreadableParameters`` naming it (MXNet 1.9.1 raises its generic MXNetError)."""
    try:
        block.load_parameters(path, ctx=ctx)
    except mx.base.MXNetError as error:
        raise UnreadableParameters(f'{path} is not an MXNet parameter file '
                                   f'({_first_line(error)})') from None


def np_shape_retried(load):
    """``load()``, and again with NumPy shape semantics on when MXNet 1.9.1 refuses a file
    saved under ``npx.set_np()`` without them (an MXNetError naming 'np shape semantics'):
    d2l saves under ``npx.set_np()``."""
    try:
        return load()
    except mx.base.MXNetError as error:
        if 'np shape semantics' not in str(error) or is_np_shape():
            raise
    with np_shape(True):
        return load()


def load_library(path):
    """``mx.library.load(path)``; a library MXNet cannot load raised as OSError (MXNet 1.9.1
    raises its generic MXNetError)."""
    try:
        mx.library.load(path, verbose=False)
    except mx.base.MXNetError as error:
        raise OSError(_first_line(error)) from None


# What MXNet 1.9.1's ``src/lib_api.cc`` does with a type flag it does not list, and the case
# placed before it
_LIB_API_DEFAULT = "  default:\n    dltensor.dtype.code = 0;"
_LIB_API_BFLOAT16 = ("  case 12:  // bfloat16 (mshadow::kBfloat16)\n"
                     "    dltensor.dtype.code = static_cast<DLDataTypeCode>(4);  // kDLBfloat\n"
                     "    dltensor.dtype.bits = 16;\n"
                     "    break;\n")


def lib_api_source():
    """MXNet's ``src/lib_api.cc``, which every extension library compiles in, with bfloat16
    accepted. MXNet 1.9.1 hands an extension operator its bfloat16 arrays as they are (type
    flag 12), but the library side's ``MXTensor`` lists no such flag and throws "Invalid
    dtype flag: 12", so bfloat16 AMP had to cast around every kernel. One added ``case``
    lets the kernels read and write bfloat16 themselves."""
    with open(os.path.join(os.path.dirname(mx.__file__), 'src', 'lib_api.cc')) as f:
        source = f.read()
    if source.count(_LIB_API_DEFAULT) != 1:
        raise RuntimeError("this MXNet's src/lib_api.cc is not 1.9.1's: gluonbert.compat."
                           "lib_api_source cannot add bfloat16 to its MXTensor")
    return source.replace(_LIB_API_DEFAULT, _LIB_API_BFLOAT16 + _LIB_API_DEFAULT)


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


def child_blocks(block):
    """``{name: child block}`` of ``block``'s direct children (``Block._children``, which
    MXNet 1.9.1 keeps in registration order)."""
    return block._children


def own_parameter_names(block):
    """Names of the parameters ``block`` registered itself (``Block._reg_params``): these are
    passed to ``hybrid_forward`` as keyword arguments, after the data inputs."""
    return block._reg_params


def hybridized_backend(block):
    """The backend ``block`` was hybridized with (``hybridize(backend=...)``, kept in
    ``HybridBlock._backend``), or None."""
    return block._backend


def is_np_value(x):
    """Whether ``x`` is an ``mx.np`` array or a symbol of MXNet's NumPy mode
    (``mx.sym.np._Symbol``, a private class), as blocks receive under ``npx.set_np()``."""
    return isinstance(x, (mx.np.ndarray, mx.sym.np._Symbol))


def is_hybridized(block):
    """Whether ``block.hybridize()`` is in effect (``HybridBlock._active``)."""
    return block._active


def trace_for(block, structure):
    """Have a hybridized ``block``'s next call trace again when ``structure`` (hashable: which
    inputs the call has, say) differs from its last call's. A cached graph serves one call
    structure only, and MXNet 1.9.1 would run it on another; dropping it
    (``HybridBlock._clear_cached_op``) makes the next call trace anew."""
    if is_hybridized(block) and structure != getattr(block, '_gluonbert_structure', structure):
        block._clear_cached_op()
    block._gluonbert_structure = structure


def dense_units(dense):
    """``(units, in_units)`` of an ``nn.Dense`` (``Dense._units``, ``Dense._in_units``): the
    fused attention packs three projections into one product of these sizes."""
    return dense._units, dense._in_units


def dropout_options(dropout):
    """``(rate, axes)`` of an ``nn.Dropout`` (``Dropout._rate``, ``Dropout._axes``): the
    dropout kernels replace only element-wise dropout, at its rate."""
    return dropout._rate, dropout._axes


def layer_norm_options(layer_norm):
    """The operator options of an ``nn.LayerNorm`` (``LayerNorm._kwargs``: ``axis``, ``eps``,
    ``center``, ``scale``), which gluonbert's own kernel must honour."""
    return layer_norm._kwargs


def softmax_ce_options(loss):
    """``(axis, sparse_label, from_logits, weight)`` of a ``SoftmaxCrossEntropyLoss`` (its
    private ``_axis``...): the fused kernel replaces only the plain configuration."""
    return loss._axis, loss._sparse_label, loss._from_logits, loss._weight


# ---- parameters and gradients ----------------------------------------------------------------

def parameter_arrays(param):
    """The value arrays of ``param`` on every device (``Parameter._data`` through
    ``_check_and_get``, which raises MXNet's own error while initialization is deferred)."""
    return param._check_and_get(param._data, list)


def raw_parameter_arrays(param):
    """``Parameter._data`` as it is: the list of per-device arrays, or None before
    initialization."""
    return param._data


def set_raw_parameter_arrays(param, arrays):
    """Replace ``Parameter._data``: the legacy-mode adapter swaps in ``mx.nd`` views of
    ``mx.np`` arrays (same memory, same autograd marks) for the duration of a call."""
    param._data = arrays


def is_deferred(param):
    """Whether ``param`` waits for its first forward pass to learn its shape
    (``Parameter._deferred_init``)."""
    return bool(param._deferred_init)


def has_fresh_grad(array):
    """Whether a backward wrote ``array``'s gradient since the last update (the
    ``NDArray._fresh_grad`` flag that ``gluon.Trainer`` checks to find stale gradients)."""
    return bool(array._fresh_grad)


def set_fresh_grad(array, fresh):
    """Set ``NDArray._fresh_grad``: True for a gradient zeroed on purpose (an idle device),
    False once an update consumed it, as ``gluon.Trainer`` does."""
    array._fresh_grad = fresh


# ---- mixed precision ------------------------------------------------------------------------

def amp_initialized():
    """Whether ``mxnet.contrib.amp.init`` ran in this process (``amp._amp_initialized``):
    AMP rewrites operators globally, so the graphs must expect its casts and dtypes."""
    return _amp.amp._amp_initialized


# ---- KVStore ---------------------------------------------------------------------------------

def trainer_kvstore(trainer):
    """The KVStore a ``gluon.Trainer`` was created with (``Trainer._kvstore_params``): a type
    name or an ``mx.kv.KVStore``."""
    return getattr(trainer, '_kvstore_params', {}).get('kvstore')


def updates_on_servers(trainer):
    """Whether a ``gluon.Trainer`` updates on the servers of a ``dist`` KVStore, where its
    gradient scale is fixed at the first step (``dist_async``, or ``update_on_kvstore``)."""
    store, flag = (trainer._kvstore_params[k] for k in ('kvstore', 'update_on_kvstore'))
    kind = store.type if isinstance(store, mx.kv.KVStore) else str(store)
    return kind.startswith('dist') and (bool(flag) or kind == 'dist_async')


def trainer_parameters(trainer):
    """The parameters a ``gluon.Trainer`` updates (``Trainer._params``), in its order."""
    return list(trainer._params)


def initialise_store(trainer):
    """Do now what a ``gluon.Trainer`` does lazily in its first ``step`` (create its KVStore,
    ``_init_kvstore``, and push the initial parameters, ``_init_params``), then, on a ``dist``
    store, wait for every worker, before the first gradient is pushed.

    Inside the first ``step`` the push of the initial weights comes right before the push of
    the gradients; on ``dist_sync`` MXNet 1.9.1 then sometimes gave a worker the summed
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
        barrier(store)


def barrier(store):
    """Wait until every worker of a dist KVStore reaches this point (``KVStore._barrier``)."""
    store._barrier()


# ---- ONNX ------------------------------------------------------------------------------------

def onnx_graph_class():
    """mx2onnx's ``MXNetGraph`` (``mxnet.onnx.mx2onnx._export_onnx``): its
    ``create_onnx_graph_proto`` converts a symbol at a chosen opset and lets gluonbert post-
    process the graph; the public ``export_model`` only writes a file."""
    from mxnet.onnx.mx2onnx._export_onnx import MXNetGraph
    return MXNetGraph
