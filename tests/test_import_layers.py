"""gluonbert's modules import one way: no module imports, at its top or inside a function,
one that imports it back (directly or through others), and no folder (``pretrained/``,
``tasks/``, ...) imports one that imports it back: ``tasks/`` builds task models on what
``pretrained/`` loads, never the other way. A deferred import hides a cycle from Python, not
from the reader, so imports inside functions count too."""
import ast
import os

ROOT = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), 'gluonbert')

def modules():
    """``{module name: (path, whether it is a package's __init__)}`` of gluonbert."""
    found = {}
    for folder, _, files in os.walk(ROOT):
        for name in files:
            if name.endswith('.py'):
                path = os.path.join(folder, name)
                parts = os.path.relpath(path[:-3], os.path.dirname(ROOT)).split(os.sep)
                package = parts[-1] == '__init__'
                found['.'.join(parts[:-1] if package else parts)] = path, package
    return found


def imported(name, path, package, known):
    """The gluonbert modules that module ``name`` imports anywhere in its file."""
    here = name if package else name.rsplit('.', 1)[0]
    targets = set()
    for node in ast.walk(ast.parse(open(path, encoding='utf-8').read())):
        if isinstance(node, ast.Import):
            targets.update(alias.name for alias in node.names if alias.name in known)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                parts = here.split('.')[:len(here.split('.')) - node.level + 1]
                base = '.'.join(parts + ([node.module] if node.module else []))
            else:
                base = node.module
            if base in known:  # ``from .package import module`` imports the module
                targets.update(f'{base}.{alias.name}' if f'{base}.{alias.name}' in known
                               else base for alias in node.names)
    return targets - {name}


def import_graph():
    known = modules()
    return {name: imported(name, path, package, known) for name, (path, package) in known.items()}


def a_cycle(graph):
    """One cycle of ``graph`` as the list of its modules, first repeated last; None if none."""
    state, trail = {}, []

    def visit(name):
        state[name] = 'open'
        trail.append(name)
        for target in sorted(graph[name]):
            if state.get(target) == 'open':
                return trail[trail.index(target):] + [target]
            if target not in state:
                found = visit(target)
                if found:
                    return found
        state[name] = 'done'
        trail.pop()
        return None

    for name in sorted(graph):
        if name not in state:
            found = visit(name)
            if found:
                return found
    return None


def test_the_graph_sees_imports_inside_functions_and_relative_ones():
    graph = import_graph()
    assert 'gluonbert.pretrained.saved' in graph['gluonbert.tasks.saved']  # inside functions
    assert 'gluonbert.compat' in graph['gluonbert.pretrained.saved']  # from .. import compat
    assert 'gluonbert.tasks' in graph['gluonbert.tasks.saved']  # from . import rebuilt_task


def test_no_gluonbert_module_imports_one_that_imports_it_back():
    cycle = a_cycle(import_graph())
    assert cycle is None, ' -> '.join(cycle)


def test_no_gluonbert_folder_imports_one_that_imports_it_back():
    def layer(name):  # gluonbert.tasks.saved -> gluonbert.tasks
        return '.'.join(name.split('.')[:2])
    graph = {}
    for name, targets in import_graph().items():
        graph.setdefault(layer(name), set()).update(layer(t) for t in targets)
    graph = {name: targets - {name} for name, targets in graph.items()}
    cycle = a_cycle(graph)
    assert cycle is None, ' -> '.join(cycle)
