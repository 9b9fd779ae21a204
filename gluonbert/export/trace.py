"""A head as an MXNet graph: a legacy Symbol with named inputs and outputs, and its parameters.

Tracing runs with NumPy semantics off, whatever the caller's ``npx`` mode: mx2onnx converts
legacy operators only, and gluonbert's blocks compute in legacy operators in both modes. The
int64 inputs are cast inside the graph to the dtypes the model was trained with, and attention
is traced with fused Q/K/V projections (see ``fused_attention``).
"""
import mxnet as mx
from mxnet.util import np_array, np_shape

from .. import ops
from .fused_attention import fused_qkv_projections
from .signature import INPUT_DTYPE, MODEL_DTYPES


def trace(model, signature):
    """``(symbol, params)``: the graph of ``model`` (outputs renamed after the signature) and
    its parameters as legacy NDArrays keyed by symbol argument name."""
    _check_initialized(model)
    with np_array(False), np_shape(False), ops.disabled(), \
            fused_qkv_projections(model) as fused:
        inputs = [mx.sym.cast(mx.sym.var(name, dtype=INPUT_DTYPE), dtype=MODEL_DTYPES[name])
                  for name in signature.inputs]
        outputs = model(tuple(inputs)) if signature.takes_tuple else model(*inputs)
        outputs = list(outputs) if isinstance(outputs, (list, tuple)) else [outputs]
        names = list(signature.outputs)
        if len(outputs) != len(names):
            raise ValueError(f'{signature.head} returns {len(outputs)} outputs, but '
                             f'output_names={tuple(names)} names {len(names)}; pass '
                             f'output_names with one name per output')
        symbol = mx.sym.Group([mx.sym.identity(out, name=name)
                               for out, name in zip(outputs, names)])
    params = _parameters(model, symbol)
    params.update(fused)
    return symbol, params


def _check_initialized(model):
    for param in model.collect_params().values():
        try:
            param.list_ctx()
            param.data(param.list_ctx()[0])
        except RuntimeError as error:  # includes DeferredInitializationError
            raise ValueError(f'parameter {param.name!r} of the model has no value ({error}); '
                             f'initialize and fine-tune the head before exporting (d2l: '
                             f'net.output.initialize(ctx=devices))') from None


def _parameters(model, symbol):
    """The model's parameters that ``symbol`` reads, as legacy NDArrays on the CPU."""
    used = set(symbol.list_inputs())
    params = {}
    for param in model.collect_params().values():
        if param.name in used:
            data = param.data(param.list_ctx()[0]).as_in_context(mx.cpu())
            params[param.name] = data.as_nd_ndarray() if isinstance(data, mx.np.ndarray) \
                else data
    return params
