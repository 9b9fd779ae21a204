"""Dynamic int8 quantization of an export: int8 weights, activations quantized at run time.

This is onnxruntime's dynamic quantization (``quantize_dynamic``, IntegerOps mode), written
here because ``onnxruntime.quantization`` 1.19 needs onnx >= 1.16 (``TensorProto.INT4``) and
mx2onnx needs the pinned onnx 1.14. Every dense layer (``Gemm`` by a constant weight) becomes
``DynamicQuantizeLinear`` of its input (uint8, one scale per batch), ``MatMulInteger`` with
the int8 weight (symmetric, one scale per output unit), and a float rescale; onnxruntime fuses
these into ``DynamicQuantizeMatMul``. Products of two activations (attention) stay float32.

Weights use 7 bits (-63..63, onnxruntime's ``reduce_range``): on x86 CPUs without VNNI (AVX2,
AVX-512 before Cascade Lake, AMD before Zen 4) the uint8 x int8 kernel adds pairs of products
in int16 and saturates with full-range weights (255 * 127 * 2 > 32767). Measured on an AVX2
EPYC: a tiny classifier's int8 output was off by more than the output itself with 8-bit
weights.
"""
import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

WEIGHT_LEVELS = 63  # 7-bit weights: no int16 saturation without VNNI (see above)


def quantize_int8(model_proto):
    """A copy of ``model_proto`` with its dense layers in dynamic int8 (metadata kept)."""
    model = onnx.ModelProto()
    model.CopyFrom(model_proto)
    graph = model.graph
    weights = {t.name: t for t in graph.initializer}
    nodes = []
    for index, node in enumerate(graph.node):
        if _is_dense(node, weights):
            nodes.extend(_dynamic_int8_dense(node, weights, graph, f'int8_dense{index}'))
        else:
            nodes.append(node)
    del graph.node[:]
    graph.node.extend(nodes)
    read = {name for node in graph.node for name in node.input}
    kept = [t for t in graph.initializer if t.name in read]
    del graph.initializer[:]
    graph.initializer.extend(kept)
    return model


def _is_dense(node, weights):
    """``Gemm(A, W, b)`` = ``A @ W.T + b`` with a constant 2-D weight (mx2onnx's dense layer)."""
    if node.op_type != 'Gemm' or node.input[1] not in weights:
        return False
    attrs = {a.name: helper.get_attribute_value(a) for a in node.attribute}
    return (attrs.get('transA', 0) == 0 and attrs.get('transB', 0) == 1
            and attrs.get('alpha', 1.0) == 1.0 and attrs.get('beta', 1.0) == 1.0)


def _dynamic_int8_dense(node, weights, graph, name):
    weight = numpy_helper.to_array(weights[node.input[1]]).astype(np.float32)  # (units, in)
    scale = np.abs(weight).max(axis=1) / WEIGHT_LEVELS
    scale[scale == 0] = 1.0
    quantized = np.clip(np.rint(weight / scale[:, None]), -WEIGHT_LEVELS,
                        WEIGHT_LEVELS).astype(np.int8)
    graph.initializer.extend([
        numpy_helper.from_array(np.ascontiguousarray(quantized.T), f'{name}_weight_int8'),
        numpy_helper.from_array(scale.astype(np.float32), f'{name}_weight_scale'),
        numpy_helper.from_array(np.array(0, dtype=np.int8), f'{name}_weight_zero_point')])
    x = node.input[0]
    rescaled = f'{name}_rescaled' if len(node.input) > 2 else node.output[0]
    nodes = [
        helper.make_node('DynamicQuantizeLinear', [x],
                         [f'{name}_x_uint8', f'{name}_x_scale', f'{name}_x_zero_point'],
                         name=f'{name}_quantize'),
        helper.make_node('MatMulInteger', [f'{name}_x_uint8', f'{name}_weight_int8',
                                           f'{name}_x_zero_point', f'{name}_weight_zero_point'],
                         [f'{name}_int32'], name=f'{name}_matmul'),
        helper.make_node('Cast', [f'{name}_int32'], [f'{name}_float'], to=TensorProto.FLOAT,
                         name=f'{name}_cast'),
        helper.make_node('Mul', [f'{name}_x_scale', f'{name}_weight_scale'], [f'{name}_scale'],
                         name=f'{name}_scales'),
        helper.make_node('Mul', [f'{name}_float', f'{name}_scale'], [rescaled],
                         name=f'{name}_rescale')]
    if len(node.input) > 2:
        nodes.append(helper.make_node('Add', [rescaled, node.input[2]], [node.output[0]],
                                      name=f'{name}_bias'))
    return nodes
