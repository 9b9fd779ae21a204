"""What must be settled before MXNet is imported: the parameter-server role, CPU threads and
the oneDNN instruction set.

``import mxnet`` reads ``DMLC_ROLE``: as ``server`` or ``scheduler`` it turns the process into
a parameter-server node that waits forever for its job, and any other value but ``worker``
(``Worker``, a typo) hangs it too, with no output. A role left in the shell would so hang
``python -m gluonbert --help``; gluonbert checks the variable first and stops with one line.

MXNet 1.9.1 runs its OpenMP kernels on half of the reported cores unless ``OMP_NUM_THREADS``
is set before ``import mxnet`` (one thread on a 2-core machine; d2l's pretraining step runs
1.6x faster with the variable set). We set it to the core count when the user has not, and
say what was chosen.

MXNet 1.9.1's oneDNN (v2.4) leaves Intel AMX out unless ``DNNL_MAX_CPU_ISA`` asks for it, and
Linux refuses AMX instructions to a process that has not asked for them (arch_prctl
``ARCH_REQ_XCOMP_PERM``): oneDNN 2.4 does not ask, so the variable alone dies of an illegal
instruction. On a CPU with AMX we ask and set the variable: bfloat16 GEMMs (``--amp bf16``)
run on AMX tiles, 2.6-3.2x faster than on AVX-512 BF16 (MiniLM's dense layers, forward and both
backward products); float32 GEMMs are unchanged.

MXNet 1.9.1 keeps every oneDNN primitive it makes, one per operator and input shape, unless
``MXNET_MKLDNN_CACHE_NUM`` caps how many each operator keeps. gluonbert's batches change shape
all the time (each cut to its longest sentence, packed rows), and a bfloat16 dense layer's
primitive holds about 10 MiB: evaluating 8,000 SST-2 sentences in bfloat16 on MiniLM grew to
1,606 MiB with every primitive kept, 829 with 16 (float32: 530 either way), at the same speed;
``gluonbert pretrain --amp bf16`` (30 steps) peaked at 4,659 MiB against 3,727 (float32:
2,768) and ran 7% faster; fine-tuning ran at the same speed. We cap it at ``ONEDNN_CACHE``
when the user has not set the variable (MXNet reads it at its first oneDNN primitive).
"""
import os
import sys

LAUNCHER = 'python -m gluonbert.distributed.launch'
ONEDNN_CACHE = 16


def dmlc_role_problem(environ=None):
    """Why importing MXNet with this environment's ``DMLC_ROLE`` would hang, or None.

    Only ``worker`` (set by the launcher for the training command) is safe in a process that
    imports gluonbert; servers and the scheduler run ``import mxnet`` alone."""
    environ = os.environ if environ is None else environ
    role = environ.get('DMLC_ROLE')
    if role is None or role == 'worker':
        return None
    if role in ('server', 'scheduler'):
        return (f'DMLC_ROLE={role!r} is set: importing MXNet would make this process a '
                f'parameter-server node ({role}) that waits forever for its job; unset DMLC_ROLE '
                f'(the launcher, {LAUNCHER}, sets each process\'s role)')
    return (f'DMLC_ROLE={role!r} is set: expected worker, server or scheduler (exactly; '
            f'MXNet hangs on any other value); unset it or start the job with {LAUNCHER}')


def _started_as_command():
    """Whether this process is one of gluonbert's command lines (``python -m gluonbert...`` or
    the ``gluonbert`` script), where errors are one line, rather than a user's program."""
    argv = getattr(sys, 'orig_argv', sys.argv)
    for i, arg in enumerate(argv[:-1]):
        if arg == '-m' and argv[i + 1].split('.')[0] == 'gluonbert':
            return True
    return os.path.basename(sys.argv[0] or '') == 'gluonbert'


def check_dmlc_role():
    """Stop before ``import mxnet`` when ``DMLC_ROLE`` would hang it: a one-line error and
    exit status 2 for gluonbert's commands, a ValueError in a user's program."""
    problem = dmlc_role_problem()
    if problem is None or 'mxnet' in sys.modules:
        return
    if _started_as_command():
        sys.stderr.write(f'gluonbert: error: {problem}\n')
        raise SystemExit(2)
    raise ValueError(problem)


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


# arch_prctl(ARCH_REQ_XCOMP_PERM, XFEATURE_XTILEDATA) on x86-64 Linux
_ARCH_PRCTL, _ARCH_REQ_XCOMP_PERM, _XFEATURE_XTILEDATA = 158, 0x1023, 18


def cpu_flags():
    """The words of /proc/cpuinfo (its CPU flags among them), or None where it cannot be read."""
    try:
        with open('/proc/cpuinfo', encoding='utf-8') as f:
            return frozenset(f.read().split())
    except OSError:
        return None


def amx_for_onednn():
    """Whether ``DNNL_MAX_CPU_ISA`` lets oneDNN use AMX (as ``configure_amx`` sets it)."""
    return 'AMX' in os.environ.get('DNNL_MAX_CPU_ISA', '').upper()


def configure_amx():
    """On a CPU with AMX (``amx_bf16`` in /proc/cpuinfo), ask Linux for AMX and let oneDNN use
    it (``DNNL_MAX_CPU_ISA=AVX512_CORE_AMX``) unless the user set the variable or MXNet is
    already imported; return a one-line description ('' when there is nothing to say). The
    request is made even when the variable is set: a child process inherits the variable, not
    the permission."""
    user = os.environ.get('DNNL_MAX_CPU_ISA')
    if 'amx_bf16' not in (cpu_flags() or ()):
        return f'DNNL_MAX_CPU_ISA={user} (set by the user)' if user else ''
    import ctypes
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.syscall(_ARCH_PRCTL, _ARCH_REQ_XCOMP_PERM, _XFEATURE_XTILEDATA) != 0:
        return 'AMX off (Linux refused it)'
    if user:
        return f'DNNL_MAX_CPU_ISA={user} (set by the user or a parent process)'
    if 'mxnet' in sys.modules:
        return 'AMX off (MXNet imported before gluonbert)'
    os.environ['DNNL_MAX_CPU_ISA'] = 'AVX512_CORE_AMX'
    return 'AMX on for bfloat16'


def configure_onednn_cache():
    """Set ``MXNET_MKLDNN_CACHE_NUM`` to ``ONEDNN_CACHE`` unless the user set it."""
    os.environ.setdefault('MXNET_MKLDNN_CACHE_NUM', str(ONEDNN_CACHE))


check_dmlc_role()
THREADS = configure_threads()
AMX = configure_amx()
configure_onednn_cache()


def describe():
    """One line on the MXNet build, threads and gluonbert's kernels, for start-up logs."""
    import mxnet as mx
    from . import ops
    features = mx.runtime.Features()
    onednn = 'oneDNN on' if features.is_enabled('MKLDNN') else 'oneDNN off'
    amx = f', {AMX}' if AMX else ''
    return (f'MXNet {mx.__version__}, {onednn}{amx}, {THREADS}, gluonbert kernels: '
            f'{ops.status()}')
