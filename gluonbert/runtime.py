"""CPU thread settings, chosen before MXNet is imported.

MXNet 1.9.1 runs its OpenMP kernels on half of the reported cores unless ``OMP_NUM_THREADS``
is set before ``import mxnet`` (one thread on a 2-core machine; d2l's pretraining step runs
1.6x faster with the variable set). We set it to the core count when the user has not, and
say what was chosen.
"""
import os
import sys


def configure_threads():
    """Set ``OMP_NUM_THREADS`` to the number of usable cores, unless the user set it or
    MXNet is already imported (then it is too late); return a one-line description."""
    cores = len(os.sched_getaffinity(0)) if hasattr(os, 'sched_getaffinity') else os.cpu_count()
    if 'OMP_NUM_THREADS' in os.environ:
        return f'OMP_NUM_THREADS={os.environ["OMP_NUM_THREADS"]} (set by the user)'
    if 'mxnet' in sys.modules:
        return 'OMP_NUM_THREADS unset and MXNet already imported: MXNet uses half the cores'
    os.environ['OMP_NUM_THREADS'] = str(cores)
    return f'OMP_NUM_THREADS={cores} (all {cores} cores; set the variable to override)'


THREADS = configure_threads()


def describe():
    """One line on the MXNet build, threads and gluonbert's kernels, for start-up logs."""
    import mxnet as mx
    from . import ops
    features = mx.runtime.Features()
    onednn = 'oneDNN on' if features.is_enabled('MKLDNN') else 'oneDNN off'
    return f'MXNet {mx.__version__}, {onednn}, {THREADS}, gluonbert kernels: {ops.status()}'
