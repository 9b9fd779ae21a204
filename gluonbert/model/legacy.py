"""Run Gluon blocks on MXNet's legacy operators, whatever the caller's ``npx`` mode.

d2l readers call ``npx.set_np()``; ONNX export (mx2onnx in MXNet 1.9.1) only converts legacy
operators such as ``FullyConnected`` and ``LayerNorm``. So every gluonbert block computes with
legacy operators, and the outermost call converts ``mx.np`` inputs to legacy arrays and the
outputs back. Conversions share memory and autograd history; they copy nothing.
"""
import contextlib
import contextvars
import functools

import mxnet as mx
from mxnet.gluon import HybridBlock
from mxnet.util import is_np_array, is_np_shape, np_array, np_shape

from .. import compat, ops

# Inside the outermost gluonbert block's call: the values its blocks share (once_per_call)
_call = contextvars.ContextVar('gluonbert_call', default=None)


def _map(fn, value):
    if isinstance(value, (list, tuple)):
        return type(value)(_map(fn, v) for v in value)
    return None if value is None else fn(value)


def _to_legacy(x):
    return x.as_nd_ndarray() if compat.is_np_value(x) else x


def _to_np(x):
    return x.as_np_ndarray()


@contextlib.contextmanager
def _legacy_parameter_views(block):
    """Let the block's parameters hand out legacy views of their ``mx.np`` arrays.

    Parameters initialized under ``npx.set_np()`` hold ``mx.np`` arrays, which legacy operators
    refuse. The views share memory and autograd marks, so gradients still reach the parameters.
    """
    swapped = []
    for param in block.collect_params().values():
        arrays = compat.raw_parameter_arrays(param)
        if arrays and isinstance(arrays[0], mx.np.ndarray):
            compat.set_raw_parameter_arrays(param, [a.as_nd_ndarray() for a in arrays])
            swapped.append((param, arrays))
    try:
        yield
    finally:
        for param, arrays in swapped:
            compat.set_raw_parameter_arrays(param, arrays)


def once_per_call(F, name, make):
    """``make()``, made once in the outermost gluonbert block's call (once per graph traced,
    or per imperative forward) and shared by every block inside it, e.g. the training flag."""
    shared = _call.get()
    if shared is None:
        return make()
    key = (name, F is mx.sym)
    if key not in shared:
        shared[key] = make()
    return shared[key]


def in_call():
    """Whether a gluonbert block's call is under way (values can be shared in it)."""
    return _call.get() is not None


def share_bfloat16_twin(X, twin):
    """Keep ``twin``, ``X`` rounded to bfloat16 by the operator that computed ``X``, for the
    dense layers of this call that read ``X`` (``bfloat16_twin``)."""
    _call.get()[('bfloat16 twin', id(X))] = (X, twin)


def bfloat16_twin(X):
    """What a dense layer under bfloat16 AMP reads for ``X``: its twin kept in this call
    (which spares AMP's cast) or ``X`` itself."""
    shared = _call.get()
    kept = None if shared is None else shared.get(('bfloat16 twin', id(X)))
    return kept[1] if kept is not None and kept[0] is X else X


def param_value(F, param, like):
    """``param`` as an input of the graph being built in ``hybrid_forward``: its symbol, or
    its array on ``like``'s device. For a child block's parameter used without calling the
    child (``hybrid_forward`` receives only the block's own parameters)."""
    return param.var() if F is mx.sym else param.data(like.context)


class LegacyHybridBlock(HybridBlock):
    """A HybridBlock whose ``hybrid_forward`` may use legacy operators in any npx mode.

    The outermost call also validates its inputs (``_check_inputs``), once, before any work:
    blocks called from inside another gluonbert block trust their caller.
    """

    def _check_inputs(self, *args):
        """Raise ValueError for inputs the block cannot handle; NDArray inputs only."""

    def _graph_inputs(self, *args):
        """The arguments the graph takes for the caller's (checked) NDArray ``args``: the
        same by default; the task heads and the pretraining objective add the packing of
        their batch (``packing.batch_packing``)."""
        return args

    def forward(self, x, *args):
        if _call.get() is not None:
            return super().forward(x, *args)
        arrays = isinstance(x, mx.nd.NDArray) or (isinstance(x, (list, tuple)) and x
                                                  and isinstance(x[0], mx.nd.NDArray))
        if arrays:
            self._check_inputs(x, *args)
        backend = compat.hybridized_backend(self)
        if backend and mx.autograd.is_recording():
            # A partitioned graph's fused operators have no backward: MXNet would return
            # zero gradients without a word
            raise RuntimeError(f'{type(self).__name__} is hybridized for inference '
                               f'(backend {backend!r}) and cannot be trained; call '
                               f'net.hybridize() before training')
        np_mode = is_np_array() or is_np_shape()
        token = _call.set({})
        # A graph partitioned by a backend (oneDNN's, see inference.py) is traced on MXNet's
        # operators, whose fusions the backend knows; gluonbert's kernels gain in training
        kernels = ops.disabled() if backend else contextlib.nullcontext()
        try:
            with np_array(False), np_shape(False), _legacy_parameter_views(self), kernels:
                legacy = _map(_to_legacy, (x,) + args)
                out = super().forward(*(self._graph_inputs(*legacy) if arrays else legacy))
        finally:
            _call.reset(token)
        return _map(_to_np, out) if np_mode and is_np_array() else out

    def load_parameters(self, filename, ctx=None, **kwargs):
        """Load a Gluon parameter file, whichever npx mode it was saved in.

        d2l saves under ``npx.set_np()``, and MXNet refuses to load such a file without NumPy
        shape semantics; we switch them on for the load instead of failing.
        """
        compat.np_shape_retried(
            functools.partial(super().load_parameters, filename, ctx=ctx, **kwargs))
