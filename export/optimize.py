"""Optimise and quantise a gluonbert ONNX export with onnxruntime's own tools, verified.

    export/.venv-deploy/bin/python export/optimize.py FOLDER [--calibration FILE]
        [--calibration-limit 1000] [--require-fusions]

Runs in the deployment environment (``export/setup-deploy.sh``: current onnx and onnxruntime,
no MXNet), on a folder that ``gluonbert.export.export_onnx`` wrote, and adds to it:
- ``model.opt.onnx``: onnxruntime's transformer optimizer (``optimize_model``, model type
  'bert', the head count and width from the export's metadata) after onnxruntime's basic graph
  optimizations; every fusion is reported with its count, and one that found nothing to fuse
  is named, never skipped silently. Three parts of mx2onnx's graph hide our layers from its
  patterns and are rewritten first: LayerNorm's bias (``Sub``/``Neg``), dense layers
  (``Flatten``/``Gemm``/``Reshape``) and attention (sequence-first, interleaved Q/K/V), which
  becomes onnxruntime's fused ``Attention`` operator directly;
- ``model.opt.int8.onnx``: ``onnxruntime.quantization.quantize_dynamic`` of it
  (``export/quantize.py``): int8 weights, one scale per output channel, activations quantised
  per batch, the first Transformer block left in float32; given ``--calibration`` (input
  lines as ``predict.py`` reads them), SmoothQuant's activation smoothing from the ranges
  that those examples reach, and only that block's feed-forward layers in float32;
- ``optimize.json``: versions, fusions, and how the graphs compare with ``model.onnx``.
They are compared with ``model.onnx`` (itself verified against MXNet at export) on random
batches from length 1 to max_len: the float32 graphs (optimised, and smoothed before int8)
must stay within ``--tolerance`` (1e-4) of it on every output, or nothing is written; for
int8 the max difference and the agreement of the predicted labels are reported. The export's
own files are left as they were; export.json lists the new files.
"""
import argparse
import functools
import json
import logging
import os
import shutil
import sys
import tempfile

import numpy as np
import onnx
import onnxruntime as ort
from onnx import helper

try:
    import gluonbert.atomic  # noqa: F401  (standard library only: no MXNet needed)
except ImportError:  # run from a checkout: gluonbert sits beside export/
    sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from gluonbert.atomic import atomic_write, write_json  # noqa: E402
from gluonbert.tasks import TaskDataError  # noqa: E402
from gluonbert.tasks.inference import length_batches  # noqa: E402
from gluonbert.tasks.serving import read_lines  # noqa: E402
import onnx_graph  # noqa: E402  (beside this file, as the two below)
from predict import ExportFolderError, Predictor  # noqa: E402
from quantize import CALIBRATION_LIMIT, quantize  # noqa: E402

MODEL, OPTIMIZED, OPTIMIZED_INT8 = 'model.onnx', 'model.opt.onnx', 'model.opt.int8.onnx'
REPORT, EXPORT = 'optimize.json', 'export.json'
# Fused operators counted in the optimised graph, by the fusion that makes them
FUSIONS = {'attention': ('Attention', 'MultiHeadAttention'),
           'layer_norm': ('LayerNormalization', 'SkipLayerNormalization'),
           'skip_layer_norm': ('SkipLayerNormalization',),
           'gelu': ('Gelu', 'FastGelu', 'BiasGelu'),
           'bias_gelu': ('BiasGelu',)}


class OptimizeError(ValueError):
    """The folder cannot be optimised, or the optimised graph differs from the export."""


def read_export(folder):
    """``(model_proto, metadata)`` of an export folder; metadata values decoded from JSON."""
    path = os.path.join(folder, MODEL)
    if not os.path.isfile(path):
        raise OptimizeError(f'{path} not found: {folder!r} is not a gluonbert ONNX export '
                            f'folder')
    model = onnx.load(path)
    metadata = {p.key: json.loads(p.value) for p in model.metadata_props}
    if 'encoder' not in metadata:
        raise OptimizeError(f'{path} has no encoder sizes in its metadata (exported by an '
                            f'older gluonbert); export it again')
    return model, metadata


def expected_fusions(encoder, uses_gelu):
    """How many of each fused operator a full fusion gives: one attention per block, two
    LayerNorms per block (both with a residual: skip LayerNorm), one GELU per block."""
    blocks = encoder['num_blks']
    wanted = {'attention': blocks, 'layer_norm': 2 * blocks, 'skip_layer_norm': 2 * blocks}
    if uses_gelu:
        wanted.update(gelu=blocks, bias_gelu=blocks)
    return wanted


def add_for_negated_subtraction(model):
    """``Sub(x, Neg(b))`` -> ``Add(x, b)``: mx2onnx writes LayerNorm's bias that way (an old
    onnxruntime bug), which hides LayerNorm from every fusion. Returns how many it rewrote."""
    graph = model.graph
    producers, readers = onnx_graph.producers(graph), onnx_graph.readers(graph)
    rewritten, dropped = 0, set()
    nodes = []
    for node in graph.node:
        neg = producers.get(node.input[1]) if node.op_type == 'Sub' else None
        if neg is not None and neg.op_type == 'Neg':
            nodes.append(helper.make_node('Add', [node.input[0], neg.input[0]], node.output,
                                          name=node.name or f'{node.output[0]}_add'))
            rewritten += 1
            if len(readers[neg.output[0]]) == 1:
                dropped.add(id(neg))
        else:
            nodes.append(node)
    del graph.node[:]
    graph.node.extend(node for node in nodes if id(node) not in dropped)
    return rewritten


def matmul_for_flattened_gemm(model):
    """``Reshape(Gemm(Flatten(x), W, b), shape of x)`` -> ``MatMul(x, W.T) + b``: mx2onnx's
    dense layer on (seq, batch, units) hides the bias and the residual from the optimizer's
    bias, GELU and skip-LayerNorm fusions. Returns how many dense layers it rewrote."""
    graph = model.graph
    weights = {tensor.name: tensor for tensor in graph.initializer}
    producers, readers = onnx_graph.producers(graph), onnx_graph.readers(graph)
    replaced = {}  # id of the Reshape -> its new nodes; Gemm and Flatten left to prune
    for node in graph.node:
        flatten = producers.get(node.input[0]) if node.op_type == 'Gemm' else None
        reshapes = readers.get(node.output[0], [])
        if (flatten is None or flatten.op_type != 'Flatten' or node.input[1] not in weights
                or _attributes(node) != {'alpha': 1.0, 'beta': 1.0, 'transA': 0, 'transB': 1}
                or len(reshapes) != 1 or reshapes[0].op_type != 'Reshape'
                or not _restores_leading_axes(reshapes[0], flatten, producers)):
            continue
        weight = onnx.numpy_helper.to_array(weights[node.input[1]])
        transposed = f'{node.input[1]}_transposed'
        graph.initializer.append(onnx.numpy_helper.from_array(weight.T.copy(), transposed))
        output = reshapes[0].output[0]
        product = f'{output}_matmul' if len(node.input) > 2 else output
        nodes = [helper.make_node('MatMul', [flatten.input[0], transposed], [product],
                                  name=f'{output}_matmul')]
        if len(node.input) > 2:
            nodes.append(helper.make_node('Add', [product, node.input[2]], [output],
                                          name=f'{output}_bias'))
        replaced[id(reshapes[0])] = nodes
    nodes = [new for node in graph.node for new in replaced.get(id(node), [node])]
    del graph.node[:]
    graph.node.extend(nodes)
    _drop_dead_nodes(graph)
    return len(replaced)


def attention_for_interleaved_qkv(model, num_heads):
    """Each self-attention of the export -> onnxruntime's fused ``Attention`` (com.microsoft).

    onnxruntime's attention fusion matches the batch-first graphs of PyTorch exports (Q, K, V
    products, a 2-D 0/1 mask); ours is sequence-first around one product by the Q/K/V weight
    interleaved per head (``..._qkv_weight``, see ``gluonbert.export.fused_attention``), with
    an additive mask from ``valid_lens``. So we fuse it ourselves: the input turned
    batch-first, the weight de-interleaved to Q | K | V, ``valid_lens`` flattened (multiple
    choice runs batch x choices sequences) as the mask index (keys from it on are padding, as
    in our mask), and the output turned back. Returns how many it rewrote."""
    graph = model.graph
    if not any(i.name == 'valid_lens' for i in graph.input):
        return 0
    weights = {tensor.name: tensor for tensor in graph.initializer}
    readers = onnx_graph.readers(graph)
    order = list(graph.node)
    mask_index = 'valid_lens_int32'
    before = {}  # id of a W_o product -> the nodes to put before it
    for index, node in enumerate(order):
        if node.op_type != 'MatMul' or not node.input[1].endswith('qkv_weight_transposed'):
            continue
        weight = onnx.numpy_helper.to_array(weights[node.input[1]])  # (in, 3 * hidden)
        in_units, hidden = weight.shape[0], weight.shape[1] // 3
        head = hidden // num_heads
        bias_add = [r for r in readers.get(node.output[0], [])
                    if r.op_type == 'Add' and r.input[1] in weights]
        qkv = bias_add[0].output[0] if bias_add else node.output[0]
        bias = (onnx.numpy_helper.to_array(weights[bias_add[0].input[1]]) if bias_add
                else np.zeros(3 * hidden, np.float32))
        output_product = _first_dense_after(order[index + 1:], qkv, weights)
        name = node.input[1][:-len('qkv_weight_transposed')] + 'attention'
        graph.initializer.extend([
            onnx.numpy_helper.from_array(np.ascontiguousarray(
                weight.reshape(in_units, num_heads, 3, head).transpose(0, 2, 1, 3)
                .reshape(in_units, 3 * hidden)), f'{name}_weight'),
            onnx.numpy_helper.from_array(np.ascontiguousarray(
                bias.reshape(num_heads, 3, head).transpose(1, 0, 2).reshape(3 * hidden)),
                f'{name}_bias')])
        before[id(output_product)] = [
            helper.make_node('Transpose', [node.input[0]], [f'{name}_input'], perm=[1, 0, 2],
                             name=f'{name}_batch_first'),
            helper.make_node('Attention', [f'{name}_input', f'{name}_weight', f'{name}_bias',
                                           mask_index], [f'{name}_output'],
                             domain='com.microsoft', num_heads=num_heads, name=name),
            helper.make_node('Transpose', [f'{name}_output'], [f'{name}_seq_first'],
                             perm=[1, 0, 2], name=f'{name}_seq_first')]
        output_product.input[0] = f'{name}_seq_first'
    if not before:
        return 0
    graph.initializer.append(onnx.numpy_helper.from_array(np.array([-1], np.int64),
                                                          'valid_lens_flat_shape'))
    nodes = [helper.make_node('Reshape', ['valid_lens', 'valid_lens_flat_shape'],
                              ['valid_lens_flat'], name='valid_lens_flat'),
             helper.make_node('Cast', ['valid_lens_flat'], [mask_index],
                              to=onnx.TensorProto.INT32, name=mask_index)]
    for node in graph.node:
        nodes.extend(before.get(id(node), []) + [node])
    del graph.node[:]
    graph.node.extend(nodes)
    if not any(o.domain == 'com.microsoft' for o in model.opset_import):
        model.opset_import.append(helper.make_opsetid('com.microsoft', 1))
    _drop_dead_nodes(graph)
    return len(before)


def _first_dense_after(nodes, tensor, weights):
    """The first product by a constant weight downstream of ``tensor`` in ``nodes``
    (topological order): attention's output projection, after Q.K^T and weights.V."""
    reached = {tensor}
    for node in nodes:
        if any(name in reached for name in node.input):
            if node.op_type == 'MatMul' and node.input[1] in weights:
                return node
            reached.update(node.output)
    raise OptimizeError(f'no output projection found after {tensor}: not a gluonbert export')


def _restores_leading_axes(reshape, flatten, producers):
    """Whether ``reshape`` is mx2onnx's own end of a dense layer: back to the input's leading
    axes, ``Concat(Slice(Shape(x)), units)``, not a reshape of the model's (a head's)."""
    concat = producers.get(reshape.input[1])
    sliced = producers.get(concat.input[0]) if concat and concat.op_type == 'Concat' else None
    shape = producers.get(sliced.input[0]) if sliced and sliced.op_type == 'Slice' else None
    return shape is not None and shape.op_type == 'Shape' and shape.input[0] == flatten.input[0]


def _attributes(node):
    return {a.name: helper.get_attribute_value(a) for a in node.attribute}


def _drop_dead_nodes(graph):
    """Remove nodes whose outputs nothing reads, then initializers nothing reads."""
    wanted = {output.name for output in graph.output}
    kept = []
    for node in reversed(graph.node):
        if any(out in wanted for out in node.output):
            kept.append(node)
            wanted.update(node.input)
    del graph.node[:]
    graph.node.extend(reversed(kept))
    read = {name for node in graph.node for name in node.input}
    tensors = [tensor for tensor in graph.initializer if tensor.name in read]
    del graph.initializer[:]
    graph.initializer.extend(tensors)


def basic_optimizations(model, path):
    """onnxruntime's basic graph optimizations (constant folding, redundant nodes), saved to
    ``path``: what ``optimize_model`` runs first (its own call imports torch)."""
    options = ort.SessionOptions()
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_BASIC
    options.optimized_model_filepath = path
    options.log_severity_level = 3
    ort.InferenceSession(model.SerializeToString(), options, providers=['CPUExecutionProvider'])


def optimize(folder, tolerance=1e-4, require_fusions=False, calibration=None,
             calibration_limit=CALIBRATION_LIMIT):
    """Write ``model.opt.onnx`` and ``model.opt.int8.onnx`` into ``folder``; return the
    report (also written as ``optimize.json``). ``calibration``: a file of input lines (as
    ``export/predict.py`` reads them), whose first ``calibration_limit`` examples set the
    int8 graph's smoothing (``quantize``). Raises OptimizeError and writes nothing when the
    optimised graph (or the smoothed one) differs from ``model.onnx`` beyond ``tolerance``,
    or, with ``require_fusions``, when a fusion did not apply everywhere."""
    from onnxruntime.transformers.fusion_options import FusionOptions
    from onnxruntime.transformers.optimizer import optimize_model
    model, metadata = read_export(folder)
    encoder = metadata['encoder']
    examples, calibration_batches = (
        (0, None) if calibration is None
        else calibration_feeds(folder, calibration, calibration_limit))
    rewritten = dict(layer_norm_bias=add_for_negated_subtraction(model),
                     dense_layers=matmul_for_flattened_gemm(model))
    rewritten['attention'] = attention_for_interleaved_qkv(model, encoder['num_heads'])
    with tempfile.TemporaryDirectory() as scratch:
        basic = os.path.join(scratch, 'basic.onnx')
        basic_optimizations(model, basic)
        options = FusionOptions('bert')
        # Its symbolic shape inference fails on mx2onnx's shape arithmetic, and skip-LayerNorm
        # fusion gives up without shapes; the comparison below checks the fused graph instead
        options.enable_shape_inference = False
        optimizer = optimize_model(basic, model_type='bert', num_heads=encoder['num_heads'],
                                   hidden_size=encoder['num_hiddens'], opt_level=0,
                                   optimization_options=options)
        fused_ops = optimizer.get_fused_operator_statistics()
        optimized = os.path.join(scratch, OPTIMIZED)
        optimizer.save_model_to_file(optimized)
        quantized = os.path.join(scratch, OPTIMIZED_INT8)
        int8, smoothed = quantize(optimized, quantized, calibration_batches, session_options())
        if smoothed is not None:
            int8['smoothing'].update(calibration=calibration, examples=examples)
        uses_gelu = any(node.op_type == 'Erf' for node in model.graph.node)
        fusions = fusion_table(fused_ops, expected_fusions(encoder, uses_gelu))
        missing = [name for name, row in fusions.items() if row['fused'] < row['expected']]
        if require_fusions and missing:
            raise OptimizeError(f'fusions not applied everywhere: {", ".join(missing)}; '
                                f'nothing was written')
        plain = session(os.path.join(folder, MODEL))
        batches = random_batches(metadata, seed=0)
        float_diff = compare(plain, session(optimized), batches)
        if not float_diff['max_abs_diff'] <= tolerance:
            raise OptimizeError(f'the optimised graph differs from {MODEL} by '
                                f'{float_diff["max_abs_diff"]:.2e} > tolerance={tolerance}; '
                                f'nothing was written')
        smoothed_diff = None
        if smoothed is not None:  # the same products, only the scales moved
            smoothed_diff = compare(plain, session(smoothed.SerializeToString()), batches)
            if not smoothed_diff['max_abs_diff'] <= tolerance:
                raise OptimizeError(f'the smoothed graph differs from {MODEL} by '
                                    f'{smoothed_diff["max_abs_diff"]:.2e} > '
                                    f'tolerance={tolerance}; nothing was written')
        int8_diff = compare(plain, session(quantized), batches)
        report = dict(onnx=onnx.__version__, onnxruntime=ort.__version__,
                      rewritten_for_fusion=rewritten, fusions=fusions,
                      fused_operators=fused_ops, int8=int8, tolerance=tolerance,
                      optimized_vs_export=float_diff, smoothed_vs_export=smoothed_diff,
                      int8_vs_export=int8_diff,
                      files=[OPTIMIZED, OPTIMIZED_INT8, REPORT])
        for name in (OPTIMIZED, OPTIMIZED_INT8):
            atomic_write(os.path.join(folder, name),
                         functools.partial(shutil.copyfile, os.path.join(scratch, name)))
    write_json(os.path.join(folder, REPORT), report)
    _list_in_export_json(folder, report['files'])
    return report


def fusion_table(fused_ops, expected):
    """``{fusion: {'fused': count, 'expected': count}}`` from the optimizer's statistics."""
    return {name: {'fused': sum(fused_ops.get(op, 0) for op in FUSIONS[name]),
                   'expected': count} for name, count in expected.items()}


def session_options():
    options = ort.SessionOptions()
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    options.log_severity_level = 3
    return options


def session(model):
    return ort.InferenceSession(model, session_options(), providers=['CPUExecutionProvider'])


def calibration_feeds(folder, path, limit):
    """``(examples, feeds)``: the first ``limit`` examples of ``path`` (input lines as
    ``export/predict.py`` reads them, blank lines skipped), encoded by the export's tokenizer
    and task as ``Predictor`` serves them, in its batches of rows of about one length."""
    try:
        predictor = Predictor(folder)
        with open(path, 'rb') as f:
            lines = [(number, line) for number, line in read_lines(f.read(), path)
                     if line.strip()][:limit]
        examples = predictor.examples(lines, path)
        features = predictor.task.encode(examples, predictor.tokenizer, predictor.vocab,
                                         predictor.max_len, predictor.label_names)
    except OSError as error:
        raise OptimizeError(f'--calibration {path!r}: {error.strerror or error}; expected a '
                            f'file of input lines as export/predict.py reads them') from None
    except (ExportFolderError, TaskDataError) as error:
        raise OptimizeError(f'--calibration {path!r}: {error}') from None
    feeds = [dict(zip(('tokens', 'segments', 'valid_lens'), (a.astype(np.int64) for a in batch)))
             for _, batch in length_batches(features.inputs, 64)]
    return len(examples), feeds


def random_batches(metadata, seed=0):
    """Feeds of random ids with the export's inputs: lengths 1, max_len and between, batch
    sizes 1 to 16, each batch with one full-length sequence and random valid lengths."""
    rng = np.random.RandomState(seed)
    max_len, vocab_size = metadata['max_len'], len(metadata['vocab'])
    choices = 2 if 'choices' in metadata['inputs']['tokens']['axes'] else None
    shapes = [(1, 1), (3, max_len), (2, max(1, max_len // 2)), (5, max(1, min(7, max_len - 1))),
              (16, max_len)]
    batches = []
    for batch_size, seq_len in shapes:
        lead = (batch_size,) if choices is None else (batch_size, choices)
        valid_lens = rng.randint(1, seq_len + 1, lead)
        valid_lens.flat[0] = seq_len
        split = rng.randint(0, valid_lens + 1)[..., None]
        positions = np.arange(seq_len)
        segments = (positions >= split) & (positions < valid_lens[..., None])
        batches.append({'tokens': rng.randint(0, vocab_size, lead + (seq_len,)),
                        'segments': segments.astype(np.int64), 'valid_lens': valid_lens})
    return batches


def compare(reference, candidate, batches):
    """Max abs difference of ``candidate``'s outputs from ``reference``'s over ``batches``,
    and how often the two pick the same label (the argmax of the first output)."""
    max_diff, agree, total = 0.0, 0, 0
    names = [output.name for output in reference.get_outputs()]
    for feeds in batches:
        expected = reference.run(names, feeds)
        got = candidate.run(names, feeds)
        shapes = [(g.shape, e.shape) for g, e in zip(got, expected) if g.shape != e.shape]
        if shapes:
            raise OptimizeError(f'the rewritten graph gives outputs of shapes '
                                f'{[g for g, _ in shapes]} instead of {[e for _, e in shapes]}; '
                                f'nothing was written')
        max_diff = max(max_diff, *(float(np.abs(g - e).max()) for g, e in zip(got, expected)))
        if expected[0].ndim >= 1 and expected[0].shape[-1] > 1:
            agree += int((got[0].argmax(-1) == expected[0].argmax(-1)).sum())
            total += expected[0][..., 0].size
    return {'max_abs_diff': max_diff, 'label_agreement': agree / total if total else None,
            'batches': len(batches)}


def _list_in_export_json(folder, files):
    path = os.path.join(folder, EXPORT)
    if os.path.isfile(path):
        with open(path, encoding='utf-8') as f:
            description = json.load(f)
        description['files'] = list(dict.fromkeys(description.get('files', []) + files))
        write_json(path, description)


def describe(report):
    lines = [f"onnxruntime {report['onnxruntime']}, onnx {report['onnx']}",
             f'{"fusion":<16}{"fused":>7}{"of":>5}']
    for name, row in report['fusions'].items():
        note = '' if row['fused'] >= row['expected'] else '   NOT APPLIED everywhere'
        lines.append(f'{name:<16}{row["fused"]:>7}{row["expected"]:>5}{note}')
    smoothing = report['int8']['smoothing']
    lines.append(f"int8 smoothing: SmoothQuant, alpha {smoothing['alpha']}, "
                 f"{smoothing['products']} products, {smoothing['examples']} examples of "
                 f"{smoothing['calibration']}" if smoothing else
                 'int8 smoothing: none (no --calibration: int8 changes more labels)')
    for label, key in (('optimised', 'optimized_vs_export'), ('smoothed', 'smoothed_vs_export'),
                       ('int8', 'int8_vs_export')):
        diff = report[key]
        if diff is None:
            continue
        agreement = ('' if diff['label_agreement'] is None
                     else f', same label {diff["label_agreement"]:.1%}')
        lines.append(f'{label} vs model.onnx: max |diff| {diff["max_abs_diff"]:.2e}'
                     f'{agreement} ({diff["batches"]} batches)')
    return '\n'.join(lines)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    parser.add_argument('folder', help='the folder written by gluonbert.export.export_onnx')
    parser.add_argument('--tolerance', type=float, default=1e-4,
                        help='largest max abs difference of the optimised float32 graph from '
                             'model.onnx (default 1e-4)')
    parser.add_argument('--require-fusions', action='store_true',
                        help='fail, writing nothing, unless every fusion applied everywhere')
    parser.add_argument('--calibration', metavar='FILE',
                        help='input lines as export/predict.py reads them (sentences like '
                             'those the model will serve; the training texts do) that set '
                             'the int8 model\'s activation smoothing; without it int8 changes '
                             'more labels (docs/export-and-serving.md#int8-accuracy)')
    parser.add_argument('--calibration-limit', type=int, default=CALIBRATION_LIMIT,
                        help='use the first N examples of --calibration (default %(default)s)')
    args = parser.parse_args(argv)
    logging.getLogger().setLevel(logging.ERROR)  # the tools' advice on every dynamic shape
    if not args.tolerance > 0:
        parser.error(f'--tolerance {args.tolerance}: expected a positive number')
    if args.calibration_limit < 1:
        parser.error(f'--calibration-limit {args.calibration_limit}: expected at least 1')
    try:
        report = optimize(args.folder, args.tolerance, args.require_fusions, args.calibration,
                          args.calibration_limit)
    except OptimizeError as error:
        print(f'error: {error}', file=sys.stderr)
        return 2
    print(describe(report))
    print(f'wrote {", ".join(report["files"])} in {args.folder}')
    return 0


if __name__ == '__main__':
    sys.exit(main())
