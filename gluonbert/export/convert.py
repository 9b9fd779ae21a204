"""A traced head to an ONNX model: mx2onnx at our opset, then the graph made deployable.

After mx2onnx, the graph inputs are the three data inputs only (mx2onnx also lists every
weight as an input, which makes runtimes treat weights as overridable: no constant folding),
initializers nothing reads are dropped, outputs follow the signature's order with named
dynamic axes, and the IR version is the oldest that carries our opset, so that older
onnxruntime builds load the file.
"""
import warnings

import numpy as np
from onnx import TensorProto, helper

from .. import compat

from .opset import OPSET, graph_checks_at
from .signature import DYNAMIC_AXES, INPUT_DTYPE

# Sizes of the dynamic axes while mx2onnx infers shapes; the exported axes stay dynamic
_TRACE_SIZES = {'batch': 2, 'choices': 2, 'seq': 4}


def to_onnx(symbol, params, signature, metadata=None, doc_string=''):
    """The ONNX ``ModelProto`` of a traced head; ``metadata`` (str -> str) goes into its
    ``metadata_props``."""
    elem_type = helper.np_dtype_to_tensor_dtype(np.dtype(INPUT_DTYPE))
    data_names = [name for name in symbol.list_inputs() if name not in params]
    axes = [signature.inputs[name] for name in data_names]
    with graph_checks_at(OPSET), warnings.catch_warnings():
        # mx2onnx reads onnx.mapping, deprecated in onnx 1.14 but present; not our concern
        warnings.simplefilter('ignore', DeprecationWarning)
        graph = compat.onnx_graph_class()().create_onnx_graph_proto(
            symbol, params, in_shapes=[tuple(_TRACE_SIZES[a] for a in ax) for ax in axes],
            in_types=[elem_type] * len(data_names), opset_version=OPSET, dynamic=True,
            dynamic_input_shapes=axes)
    _keep_data_inputs(graph, signature, elem_type)
    _drop_unused_initializers(graph)
    _order_outputs(graph, signature)
    opsets = [helper.make_opsetid('', OPSET)]
    model = helper.make_model(graph, opset_imports=opsets, producer_name='gluonbert',
                              doc_string=doc_string)
    model.ir_version = helper.find_min_ir_version_for(opsets)
    helper.set_model_props(model, dict(metadata or {}))
    return model


def _keep_data_inputs(graph, signature, elem_type):
    """Graph inputs: the signature's data inputs in its order (unused ones too, so that every
    export takes the same feeds); weights stay initializers only."""
    inputs = [helper.make_tensor_value_info(name, elem_type, list(axes))
              for name, axes in signature.inputs.items()]
    del graph.input[:]
    graph.input.extend(inputs)


def _drop_unused_initializers(graph):
    read = {name for node in graph.node for name in node.input}
    kept = [tensor for tensor in graph.initializer if tensor.name in read]
    del graph.initializer[:]
    graph.initializer.extend(kept)


def _order_outputs(graph, signature):
    """Outputs in the signature's order; known axes get names (dynamic) or sizes (labels)."""
    by_name = {output.name: output for output in graph.output}
    missing = [name for name in signature.outputs if name not in by_name]
    if missing:
        raise RuntimeError(f'mx2onnx produced outputs {sorted(by_name)}; expected '
                           f'{list(signature.outputs)}')
    outputs = []
    for name, axes in signature.outputs.items():
        output = by_name[name]
        if axes is not None:
            dims = [a if a in DYNAMIC_AXES else signature.num_labels for a in axes]
            output = helper.make_tensor_value_info(name, output.type.tensor_type.elem_type or
                                                   TensorProto.FLOAT, dims)
        outputs.append(output)
    del graph.output[:]
    graph.output.extend(outputs)
