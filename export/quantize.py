"""int8 for ``export/optimize.py``: onnxruntime's ``quantize_dynamic`` of the optimised graph,
with SmoothQuant's activation smoothing when calibration examples are given.

Dynamic int8 quantises each product's input with one scale per batch, so a channel that
runs 10-15 times larger than the rest (BERT's LayerNorm and GELU outputs have a few) leaves
the others a handful of int8 steps. SmoothQuant (Xiao et al. 2023, arXiv:2211.10438) divides
input channel j by ``s_j = max|x_j| ** alpha / max|W_j| ** (1 - alpha)`` and multiplies row j
of the weight by it: the product is the same, and the activation's range is shared out
between the two. The division is a ``Mul`` before the product, except for attention's output
projection, whose input channels are the value projection's output channels: there it is
folded into the fused ``Attention`` operator's value weights and bias, at no cost.
``max|x_j|`` comes from running the float32 graph on calibration examples.

Measured on five all-MiniLM-L6-v2 models fine-tuned on SST-2
(docs/export-and-serving.md#int8-accuracy): with smoothing, and the first block's
feed-forward layers in float32 (``quantize``), int8 changed 0.7% of the dev labels against
1.5% unsmoothed, and ran 1.03-1.09x faster; ``alpha`` 0.85 was best or near it on every
product, and choosing it per product (by simulated int8 error on the calibration set)
gained nothing.
"""
import numpy as np
import onnx
import onnxruntime as ort
from onnx import helper, numpy_helper

import onnx_graph

SMOOTHING_ALPHA = 0.85  # how much of each activation channel's range moves into the weight
CALIBRATION_LIMIT = 1000  # examples: 128 underestimated the ranges that serving meets


def products(model):
    """The products by a constant weight that ``quantize_dynamic`` makes int8, in graph
    order: ``Attention`` and ``MatMul`` (the encoder's), ``Gemm`` (the pooler's and the
    output layer's)."""
    weights = {tensor.name for tensor in model.graph.initializer}
    return [node for node in model.graph.node
            if node.op_type in ('Attention', 'MatMul', 'Gemm') and node.input[1] in weights
            and not _attribute(node, 'transA')]


def _attribute(node, name, default=0):
    return next((helper.get_attribute_value(a) for a in node.attribute if a.name == name),
                default)


def first_block_products(model):
    """The names of the first Transformer block's products in ``model`` (optimised): its
    ``Attention`` and the ``MatMul`` nodes up to the next ``Attention``."""
    return [node.name for node in _first_block(model)]


def first_block_feed_forward(model):
    """The names of the first Transformer block's feed-forward products: its ``MatMul``
    nodes but attention's output projection."""
    producers = onnx_graph.producers(model.graph)
    return [node.name for node in _first_block(model)
            if node.op_type == 'MatMul' and _attention_before(node, producers) is None]


def _first_block(model):
    nodes, attentions = [], 0
    for node in model.graph.node:
        if node.op_type == 'Attention':
            attentions += 1
            if attentions > 1:
                break
        if attentions and node.op_type in ('Attention', 'MatMul'):
            nodes.append(node)
    return nodes


def activation_maxima(model, feeds, session_options):
    """``{tensor: max |value| per channel (last axis)}`` of every product's input in
    ``model`` (float32, a ModelProto; not changed) over ``feeds``."""
    probed = onnx.ModelProto()
    probed.CopyFrom(model)
    inputs = sorted({node.input[0] for node in products(model)})
    outputs = {output.name for output in probed.graph.output}
    probed.graph.output.extend(helper.make_tensor_value_info(name, onnx.TensorProto.FLOAT, None)
                               for name in inputs if name not in outputs)
    session = ort.InferenceSession(probed.SerializeToString(), session_options,
                                   providers=['CPUExecutionProvider'])
    maxima = {}
    for feed in feeds:
        for name, value in zip(inputs, session.run(inputs, feed)):
            channel_max = np.abs(value).reshape(-1, value.shape[-1]).max(axis=0)
            maxima[name] = np.maximum(maxima.get(name, 0), channel_max)
    return maxima


def smooth(model, maxima, skip=(), alpha=SMOOTHING_ALPHA):
    """SmoothQuant ``model`` in place: each product not named in ``skip`` gets its weight's
    rows multiplied by ``s`` and its input divided by ``s`` (see the module's docstring).
    Returns how many products were smoothed."""
    graph = model.graph
    weights = {tensor.name: tensor for tensor in graph.initializer}
    producers, readers = onnx_graph.producers(graph), onnx_graph.readers(graph)
    divisions = {}  # a node's first output -> the Mul to put before that node
    smoothed = 0
    for node in products(model):
        if node.name in skip or len(readers[node.input[1]]) != 1:  # a shared weight: leave it
            continue
        weight = numpy_helper.to_array(weights[node.input[1]])
        rows = weight.T if _attribute(node, 'transB') else weight  # (input channels, output)
        scale = (np.maximum(maxima[node.input[0]], 1e-5) ** alpha
                 / np.maximum(np.abs(rows).max(axis=1), 1e-5) ** (1 - alpha))
        scale = np.maximum(scale, 1e-5).astype(np.float32)
        rows = rows * scale[:, None]
        _replace(weights[node.input[1]], rows.T if _attribute(node, 'transB') else rows)
        attention = _attention_before(node, producers, readers)
        if attention is not None:
            _divide_values(attention, weights, scale)
        else:
            divided_node = _first_to_divide(node, producers, readers)
            source, name = divided_node.input[0], f'{divided_node.output[0]}_input'
            # Not ``<input>_scale``: the quantizer names the int8 input's scale that way
            divided, divisor = f'{name}_smoothed', f'{name}_divisor'
            graph.initializer.append(numpy_helper.from_array(1 / scale, divisor))
            divisions[divided_node.output[0]] = helper.make_node('Mul', [source, divisor],
                                                                 [divided], name=divided)
            divided_node.input[0] = divided
        smoothed += 1
    nodes = []
    for node in graph.node:
        if node.output[0] in divisions:
            nodes.append(divisions[node.output[0]])
        nodes.append(node)
    del graph.node[:]
    graph.node.extend(nodes)
    return smoothed


def _first_to_divide(node, producers, readers):
    """The node whose input the division goes before: ``node`` itself, or the ``Transpose``
    that only feeds it and keeps the channel axis last (the fused attention's batch-first
    turn): dividing before that turn leaves the ``Transpose`` -> ``DynamicQuantizeLinear`` ->
    ``QAttention`` chain that onnxruntime plans without a float copy (a ``Mul`` between them
    cost MiniLM 96 MiB more peak memory)."""
    transpose = producers.get(node.input[0])
    perm = _attribute(transpose, 'perm', None) if transpose is not None else None
    if (transpose is not None and transpose.op_type == 'Transpose' and perm
            and perm[-1] == len(perm) - 1 and len(readers[transpose.output[0]]) == 1):
        return transpose
    return node


def _attention_before(node, producers, readers=None):
    """The fused ``Attention`` whose output (turned back sequence-first) is ``node``'s input
    and, when ``readers`` (``onnx_graph.readers``) is given, nothing else's, or None."""
    transpose = producers.get(node.input[0])
    if transpose is None or transpose.op_type != 'Transpose':
        return None
    attention = producers.get(transpose.input[0])
    if attention is None or attention.op_type != 'Attention' or _attribute(
            attention, 'qkv_hidden_sizes', None) is not None:
        return None
    if readers is not None and any(len(readers.get(name, ())) != 1 for name in (
            transpose.input[0], transpose.output[0], attention.input[1], attention.input[2])):
        return None
    return attention


def _divide_values(attention, weights, scale):
    """Divide the value projection's output channels (the last third of the fused Q | K | V
    weight's columns and of its bias) by ``scale``: the attention's output channels follow."""
    weight = numpy_helper.to_array(weights[attention.input[1]]).copy()
    bias = numpy_helper.to_array(weights[attention.input[2]]).copy()
    values = slice(2 * weight.shape[1] // 3, None)
    weight[:, values] /= scale
    bias[values] /= scale
    _replace(weights[attention.input[1]], weight)
    _replace(weights[attention.input[2]], bias)


def _replace(tensor, array):
    tensor.CopyFrom(numpy_helper.from_array(np.ascontiguousarray(array, np.float32), tensor.name))


def quantize(optimized, quantized, calibration=None, session_options=None):
    """``quantize_dynamic`` of the graph at ``optimized`` into ``quantized``, after smoothing
    when ``calibration`` (feeds) is given; returns ``(settings, smoothed float32 ModelProto or
    None)``. Weights are int8 with one scale per output channel. Part of the first
    Transformer block stays float32, where int8 loses most (docs/export-and-serving.md
    measures the subsets), on MiniLM fine-tuned on SST-2:
    - without smoothing, the whole block (its fused attention and dense layers): one scale
      per tensor flipped 4.4% of the dev labels, per channel 2.9%, per channel with the
      first block in float32 1.5%, at 0.88-0.93x the all-int8 speed;
    - with smoothing, its feed-forward layers only: 0.6% of the labels on four models, as
      with the whole block in float32, at 1.08x its speed; all of it int8 changed 1.0%, at
      1.2x."""
    from onnxruntime.quantization import QuantType, quantize_dynamic
    model = onnx.load(optimized)
    float32_nodes = (first_block_products(model) if calibration is None
                     else first_block_feed_forward(model))
    settings = dict(weight_type='QInt8', per_channel=True, float32_nodes=float32_nodes,
                    smoothing=None)
    smoothed = None
    if calibration is not None:
        maxima = activation_maxima(model, calibration, session_options or ort.SessionOptions())
        count = smooth(model, maxima, skip=set(float32_nodes))
        settings['smoothing'] = dict(method='SmoothQuant', alpha=SMOOTHING_ALPHA,
                                     calibration_batches=len(calibration), products=count)
        smoothed = onnx.ModelProto()
        smoothed.CopyFrom(model)
    # The fused operators have no ONNX shape inference: their outputs are float32
    quantize_dynamic(model, quantized, weight_type=QuantType.QInt8, per_channel=True,
                     nodes_to_exclude=float32_nodes,
                     extra_options={'DefaultTensorType': onnx.TensorProto.FLOAT})
    return settings, smoothed
