"""onnxruntime sessions for exported heads: CPU, every graph optimization on."""
import onnxruntime as ort


def inference_session(model, threads=None):
    """An ``onnxruntime.InferenceSession`` on ``model`` (a path or serialized bytes) with all
    graph optimizations (constant folding, LayerNorm/GELU/MatMul fusions); ``threads`` sets
    the intra-op threads (default: onnxruntime's choice, one per physical core)."""
    options = ort.SessionOptions()
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    options.log_severity_level = 3  # errors only: not a warning per pruned initializer
    if threads is not None:
        options.intra_op_num_threads = threads
    return ort.InferenceSession(model, options, providers=['CPUExecutionProvider'])
