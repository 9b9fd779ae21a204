"""The ONNX opset of our exports, and mx2onnx held to it without a lasting global patch.

mx2onnx (MXNet 1.9.1) has converters up to opset 13. Asked for the installed onnx's newest opset
(19 in onnx 1.14.1), it still emits opset-13 nodes, e.g. ``ReduceMean`` with an ``axes``
attribute, which opset 18 moved to an input. We pass opset 13 to its converter directly; but
the converter ends with ``onnx.checker.check_graph(graph)``, whose default context is the
newest opset. So for the length of one conversion ``onnx.checker.check_graph`` checks against
opset 13, and the original function is put back afterwards, also on error.
"""
import contextlib
import functools
import threading

import onnx
import onnx.checker

OPSET = 13
_swap_lock = threading.Lock()  # two exports in one process must not restore each other's swap


def checker_context(opset=OPSET):
    """An ``onnx.checker`` context for graphs of ``opset`` (the default context is the newest)."""
    context = onnx.checker.C.CheckerContext()
    context.ir_version = onnx.helper.find_min_ir_version_for([onnx.helper.make_opsetid('', opset)])
    context.opset_imports = {'': opset}
    return context


@contextlib.contextmanager
def graph_checks_at(opset=OPSET):
    """Within the block, ``onnx.checker.check_graph`` checks against ``opset``."""
    with _swap_lock:
        original = onnx.checker.check_graph
        onnx.checker.check_graph = functools.partial(original, ctx=checker_context(opset))
        try:
            yield
        finally:
            onnx.checker.check_graph = original
