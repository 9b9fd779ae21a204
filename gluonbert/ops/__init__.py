"""Fast CPU kernels for what MXNet 1.9.1 computes slowly, as an MXNet extension library.

The C++ sources beside this file hold the kernels (``kernels.cc``: ``gb_layer_norm``, whose
backward is ~10x faster than MXNet's, and ``gb_softmax_ce``; ``attention.cc``: ``gb_attention``;
``dropout.cc``: ``gb_dropout``; ``optimizer.cc``: ``gb_adam_update`` and ``gb_sum_sq``, the
optimizer's passes over every parameter; ``dense.cc``: ``gb_dense``, bfloat16 dense layers on
oneDNN 3, linked from the ``onednn-devel-cpu-gomp`` wheel and left out where it is not
installed); ``python -m gluonbert.ops`` (run by ``setup.sh``) compiles them with g++ against
the ``lib_api`` that the MXNet wheel ships (bfloat16 added: see ``compat.lib_api_source``).
Importing this module (as every model block does) loads the library when it is built and up
to date; without it every block falls back to MXNet's own operators, with the same numbers,
and ``status()`` says why.
"""
import contextlib
import contextvars
import glob
import hashlib
import os
import subprocess
import sys

import mxnet as mx

from .. import compat

HERE = os.path.dirname(os.path.abspath(__file__))
SOURCES = sorted(glob.glob(os.path.join(HERE, '*.cc')))
HEADERS = sorted(glob.glob(os.path.join(HERE, '*.h')))
LIBRARY = os.path.join(HERE, '_build', 'libgluonbert_ops.so')
# Sources compiled without -ffast-math and fused multiply-adds: their numbers are MXNet's
EXACT_ROUNDING = ('optimizer.cc',)
# The source that needs oneDNN 3 (the onednn-devel-cpu-gomp wheel: headers and libdnnl.so.3
# in the environment's include/ and lib/)
ONEDNN_SOURCE = 'dense.cc'
ONEDNN_INCLUDE = os.path.join(sys.prefix, 'include')
ONEDNN_LIBRARY = os.path.join(sys.prefix, 'lib', 'libdnnl.so.3')

# The library's operators, each a kernel that ``disabled`` can switch off
KERNELS = ('gb_adam_update', 'gb_attention', 'gb_dense', 'gb_dropout', 'gb_layer_norm',
           'gb_softmax_ce', 'gb_sum_sq')

_state = {'loaded': False, 'why': 'not loaded yet'}
_disabled = contextvars.ContextVar('gluonbert_ops_disabled', default=frozenset())


def _onednn_found():
    return (os.path.exists(os.path.join(ONEDNN_INCLUDE, 'oneapi', 'dnnl', 'dnnl.hpp'))
            and os.path.exists(ONEDNN_LIBRARY))


def _sources():
    """The sources this environment compiles: all but ``ONEDNN_SOURCE`` without oneDNN 3."""
    return [path for path in SOURCES
            if _onednn_found() or os.path.basename(path) != ONEDNN_SOURCE]


def _source_digest():
    digest = hashlib.sha1()
    for path in _sources() + HEADERS:
        with open(path, 'rb') as f:
            digest.update(os.path.basename(path).encode() + b'\0' + f.read())
    digest.update(b'lib_api.cc\0' + compat.lib_api_source().encode())
    return digest.hexdigest()


def _built_digest():
    """The source digest the library was built from, or None."""
    try:
        with open(LIBRARY + '.sha1') as f:
            return f.read().strip()
    except FileNotFoundError:
        return None


def build(compiler='g++'):
    """Compile ``SOURCES`` into ``LIBRARY`` unless it is already built from these sources;
    True when it compiled."""
    digest = _source_digest()
    if os.path.exists(LIBRARY) and _built_digest() == digest:
        return False
    mxnet_dir = os.path.dirname(mx.__file__)
    build_dir = os.path.dirname(LIBRARY)
    os.makedirs(build_dir, exist_ok=True)
    # -Wno-psabi: the kernels' vector types are only ever inlined, so the calling convention
    # GCC warns of never applies
    flags = ['-O3', '-fPIC', '-std=c++11', '-fopenmp', '-Wno-psabi',
             '-I', os.path.join(mxnet_dir, 'include')]
    objects = []
    # Linked by absolute path (rpath): the environment's lib/ is not on the loader's path
    link = (['-L', os.path.dirname(ONEDNN_LIBRARY), '-l:libdnnl.so.3',
             '-Wl,-rpath,' + os.path.dirname(ONEDNN_LIBRARY)] if _onednn_found() else [])
    try:
        for source in _sources():
            objects.append(os.path.join(build_dir, os.path.basename(source)[:-3] + '.o'))
            # -ffast-math lets g++ vectorize exp() with glibc's libmvec; compiled, not linked,
            # with it: linking with it would switch denormals off in every process that
            # loads the library. The optimizer's kernels round as MXNet's do instead
            precision = (['-fno-math-errno', '-ffp-contract=off']
                         if os.path.basename(source) in EXACT_ROUNDING else ['-ffast-math'])
            includes = (['-I', ONEDNN_INCLUDE]
                        if os.path.basename(source) == ONEDNN_SOURCE else [])
            subprocess.run([compiler, '-c', *precision, *flags, *includes, source,
                            '-o', objects[-1]], check=True)
        lib_api = os.path.join(build_dir, 'lib_api.cc')
        with open(lib_api, 'w') as f:
            f.write(compat.lib_api_source())
        objects.append(os.path.join(build_dir, 'lib_api.o'))
        subprocess.run([compiler, '-c', *flags, lib_api, '-o', objects[-1]], check=True)
        partial = LIBRARY + '.partial'
        subprocess.run([compiler, '-shared', '-fopenmp', *objects, *link, '-o', partial],
                       check=True)
    finally:
        for obj in objects + [os.path.join(build_dir, 'lib_api.cc')]:
            if os.path.exists(obj):
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
        _state['why'] = (f'{LIBRARY} is older than its sources in {HERE} '
                         f'(run: python -m gluonbert.ops)')
        return False
    try:
        compat.load_library(LIBRARY)
    except OSError as error:  # a broken build must not break import
        _state['why'] = f'{LIBRARY} did not load ({error}); rebuild: python -m gluonbert.ops'
        return False
    _state.update(loaded=True, why='loaded')
    return True


def status():
    """A line saying whether the kernels are in use, and if not, why."""
    return _state['why']


def enabled(kernel=None):
    """Whether graphs built now may use ``kernel`` (one of ``KERNELS``), or all of them: the
    library is loaded and they are not switched off by ``disabled``."""
    off = _disabled.get()
    if kernel:  # gb_dense is not built where oneDNN 3 is not installed
        return _state['loaded'] and kernel not in off and hasattr(mx.nd, kernel)
    return _state['loaded'] and not off


def usable_for(param, kernel):
    """Whether a graph computing with ``param`` may use ``kernel``: it is enabled and
    ``param`` lives on CPUs only (float32, or bfloat16 under AMP: the kernels take the
    bfloat16 that AMP's dense layers give)."""
    return enabled(kernel) and all(ctx.device_type == 'cpu' for ctx in param.list_ctx())


def disabled(*kernels):
    """A context in which graphs are built with MXNet's own operators in place of ``kernels``
    (default: all of them, as ONNX export needs, which converts nothing else; naming some
    allows A/B comparisons)."""
    unknown = set(kernels) - set(KERNELS)
    if unknown:
        raise ValueError(f'kernels={sorted(unknown)} are not gluonbert kernels; expected some '
                         f'of {KERNELS}')
    return _switched_off(frozenset(kernels or KERNELS))


@contextlib.contextmanager
def _switched_off(kernels):
    token = _disabled.set(_disabled.get() | kernels)
    try:
        yield
    finally:
        _disabled.reset(token)


load()  # on import, so that the kernels are registered before any block builds a graph
