"""Fast CPU kernels for what MXNet 1.9.1 computes slowly, as an MXNet extension library.

``kernels.cc`` holds the kernels (today ``gb_layer_norm``, whose backward is ~10x faster than
MXNet's); ``python -m gluonbert.ops`` (run by ``setup.sh``) compiles it with g++ against the
``lib_api`` that the MXNet wheel ships. Importing this module (as every model block does)
loads the library when it is built and up to date; without it every block falls back to
MXNet's own operators, with the same numbers, and ``status()`` says why.
"""
import contextlib
import contextvars
import hashlib
import os
import subprocess

import mxnet as mx

SOURCE = os.path.join(os.path.dirname(os.path.abspath(__file__)), 'kernels.cc')
LIBRARY = os.path.join(os.path.dirname(SOURCE), '_build', 'libgluonbert_ops.so')

_state = {'loaded': False, 'why': 'not loaded yet'}
_disabled = contextvars.ContextVar('gluonbert_ops_disabled', default=False)


def _source_digest():
    with open(SOURCE, 'rb') as f:
        return hashlib.sha1(f.read()).hexdigest()


def _built_digest():
    """The source digest the library was built from, or None."""
    try:
        with open(LIBRARY + '.sha1') as f:
            return f.read().strip()
    except FileNotFoundError:
        return None


def build(compiler='g++'):
    """Compile ``kernels.cc`` into ``LIBRARY`` unless it is already built from this source;
    True when it compiled."""
    digest = _source_digest()
    if os.path.exists(LIBRARY) and _built_digest() == digest:
        return False
    mxnet_dir = os.path.dirname(mx.__file__)
    build_dir = os.path.dirname(LIBRARY)
    os.makedirs(build_dir, exist_ok=True)
    flags = ['-O3', '-fPIC', '-std=c++11', '-fopenmp', '-I', os.path.join(mxnet_dir, 'include')]
    kernels, lib_api = (os.path.join(build_dir, name) for name in ('kernels.o', 'lib_api.o'))
    # -ffast-math lets g++ vectorize exp() with glibc's libmvec; compiled, not linked, with
    # it: linking with it would switch denormals off in every process that loads the library
    subprocess.run([compiler, '-c', '-ffast-math', *flags, SOURCE, '-o', kernels], check=True)
    subprocess.run([compiler, '-c', *flags, os.path.join(mxnet_dir, 'src', 'lib_api.cc'),
                    '-o', lib_api], check=True)
    partial = LIBRARY + '.partial'
    subprocess.run([compiler, '-shared', '-fopenmp', kernels, lib_api, '-o', partial],
                   check=True)
    for obj in (kernels, lib_api):
        os.remove(obj)
    os.replace(partial, LIBRARY)
    with open(LIBRARY + '.sha1', 'w') as f:
        f.write(digest + '\n')
    return True


def load():
    """Load the library once if it is built from the current source; True when loaded."""
    if _state['loaded']:
        return True
    if not os.path.exists(LIBRARY):
        _state['why'] = f'{LIBRARY} is not built (run: python -m gluonbert.ops)'
        return False
    if _built_digest() != _source_digest():
        _state['why'] = f'{LIBRARY} is older than {SOURCE} (run: python -m gluonbert.ops)'
        return False
    try:
        mx.library.load(LIBRARY, verbose=False)
    except (OSError, mx.base.MXNetError) as error:  # a broken build must not break import
        _state['why'] = f'{LIBRARY} did not load ({error}); rebuild: python -m gluonbert.ops'
        return False
    _state.update(loaded=True, why='loaded')
    return True


def status():
    """A line saying whether the kernels are in use, and if not, why."""
    return _state['why']


def enabled():
    """Whether graphs built now may use the kernels (loaded, and not inside ``disabled()``)."""
    return _state['loaded'] and not _disabled.get()


def usable_for(param):
    """Whether a graph computing with ``param`` may use the kernels: they are enabled, they
    run on CPU in float32 (so not under MXNet AMP), and ``param`` lives on CPUs only."""
    from mxnet.contrib import amp
    return (enabled() and not amp.amp._amp_initialized
            and all(ctx.device_type == 'cpu' for ctx in param.list_ctx()))


@contextlib.contextmanager
def disabled():
    """Build graphs with MXNet's own operators only (ONNX export converts nothing else)."""
    token = _disabled.set(True)
    try:
        yield
    finally:
        _disabled.reset(token)


load()  # on import, so that the kernels are registered before any block builds a graph
