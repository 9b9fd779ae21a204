"""Who writes and who reads each tensor of an ONNX graph: the lookups that ``optimize.py``'s
rewrites and ``quantize.py``'s smoothing walk a graph by."""


def producers(graph):
    """``{tensor name: the node that writes it}``."""
    return {output: node for node in graph.node for output in node.output}


def readers(graph):
    """``{tensor name: the nodes that read it, in graph order}`` (a node that reads a tensor
    twice is listed twice)."""
    found = {}
    for node in graph.node:
        for name in node.input:
            found.setdefault(name, []).append(node)
    return found
