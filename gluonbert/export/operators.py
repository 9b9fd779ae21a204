"""Operators of a traced head against mx2onnx's converters, checked before converting.

mx2onnx stops at the first operator it cannot convert, naming only the operator. We list every
unsupported operator up front with the block that produced it, found from the node name: Gluon
names each node after the prefix of its block (``bertclassifier0_dense0_fwd``).
"""
import json

from mxnet.onnx import get_operator_support

from .. import compat
from .opset import OPSET


class UnsupportedOperatorError(ValueError):
    """The model uses operators that mx2onnx cannot convert to ONNX."""


def check_operators(symbol, model, opset=OPSET):
    """Raise UnsupportedOperatorError naming each operator of ``symbol`` without an ONNX
    converter at ``opset``, with the node and the block of ``model`` that produced it."""
    supported = set(get_operator_support(opset)) | {'null'}
    blocks = _blocks_by_prefix(model)
    problems = []
    for node in json.loads(symbol.tojson())['nodes']:
        if node['op'] in supported:
            continue
        path, block = _producer(node['name'], blocks, model)
        where = f"block '{path}' ({type(block).__name__})" if path else \
            f'the top-level block ({type(block).__name__})'
        hint = (' (a NumPy-mode operator: compute with legacy operators, as '
                'gluonbert.model.legacy.LegacyHybridBlock does)'
                if node['op'].startswith(('_np', '_npi', '_npx')) else '')
        problems.append(f"operator {node['op']!r} in node {node['name']!r} of {where}{hint}")
    if problems:
        raise UnsupportedOperatorError(
            f'mx2onnx (MXNet\'s ONNX exporter, opset {opset}) cannot convert: '
            + '; '.join(problems)
            + f'. Rewrite those blocks with supported operators '
              f'(mxnet.onnx.get_operator_support({opset}) lists them).')


def _blocks_by_prefix(model):
    """``{prefix: (attribute path, block)}`` for ``model`` and every block inside it."""
    found = {}

    def visit(block, path):
        found.setdefault(block.prefix, (path, block))
        for name, child in compat.child_blocks(block).items():
            visit(child, f'{path}.{name}' if path else name)
    visit(model, '')
    return found


def _producer(node_name, blocks, model):
    """The block whose prefix is the longest start of ``node_name`` (else the model)."""
    matches = [prefix for prefix in blocks if node_name.startswith(prefix)]
    return blocks[max(matches, key=len)] if matches else ('', model)
