"""Mixed precision with MXNet AMP: float16 on GPU, bfloat16 on CPU, and the loss scale.

``mxnet.contrib.amp.init`` rewrites MXNet's operators for the whole process, so it must run
before the model is built and cannot be undone: call ``enable(dtype)`` first thing. What
MXNet 1.9.1 supports (checked on this version):

- ``bfloat16`` on CPU: oneDNN runs ``FullyConnected`` in bfloat16 (the encoder's dense layers
  run on gluonbert's ``gb_dense`` instead, oneDNN 3's matmul: ``gluonbert.model.dense``) and
  keeps embeddings, softmax and LayerNorm in float32; parameters stay float32. It needs MXNet
  built with oneDNN and a CPU with AVX-512 (oneDNN's bfloat16 kernels).
- ``float16`` on GPU only: on CPU MXNet fails with "float16 fully connected layer is
  currently only supported by CuDNN version".

The loss scale: float16 overflows above 65504, so the loss is multiplied by a scale before
``backward`` and the gradient divided by it; the scale halves at each non-finite step and
doubles after ``growth_interval`` finite ones (MXNet's ``LossScaler`` policy). bfloat16 has
float32's range and needs no scaling: its scale stays 1.

The jobs' ``--amp auto`` (their default) picks bfloat16 where it pays: CPU contexts, a CPU
that computes in bfloat16 natively (AVX-512 BF16; on plain AVX-512 oneDNN emulates it, slower
than float32), on AMX tiles where the CPU has them (``runtime.configure_amx``: on this
project's AMX Xeon, oneDNN 2.4's AVX-512 BF16 kernels ran MiniLM at 0.71-0.74x float32, its
AMX ones at 1.18-1.67x), and a model at least ``AUTO_MIN_WIDTH`` wide (narrower models spend
more time casting than their small GEMMs save); float32 everywhere else. ``--amp off`` is
float32.
"""

import mxnet as mx

from .. import compat, runtime

DTYPES = ('float16', 'bfloat16')
# The command line's names for them (``--amp bf16``)
OPTION_NAMES = {'bf16': 'bfloat16', 'fp16': 'float16'}
# The command line's other values: float32, and the choice by CPU and model width
OFF, AUTO = 'off', 'auto'
# The narrowest model ``--amp auto`` trains in bfloat16. On an AMD EPYC with AVX-512 BF16 (2
# cores), all-MiniLM-L6-v2 (384 wide) fine-tunes 1.46x faster in bfloat16 at the same accuracy
# (issue 27); the 128-wide d2l models fine-tune no faster, and 256 (d2l's bert.small,
# bench/finetune_step.py --amp bfloat16) was within the noise of a loaded machine
AUTO_MIN_WIDTH = 384


def cpu_bfloat16_support():
    """``(True, '')`` when AMP can run in bfloat16 on this CPU, else ``(False, reason)``."""
    if not mx.runtime.Features().is_enabled('MKLDNN'):
        return False, 'this MXNet build has no oneDNN (MKLDNN)'
    flags = runtime.cpu_flags()
    if flags is not None and 'avx512bw' not in flags:
        return False, 'this CPU lacks AVX-512, which oneDNN bfloat16 kernels need'
    return True, ''


def cpu_native_bfloat16():
    """``(True, '')`` when this CPU computes bfloat16 GEMMs faster than float32 in this
    process: AVX-512 BF16 instructions (``avx512_bf16`` in /proc/cpuinfo) and, on a CPU with
    AMX, AMX let to oneDNN (``DNNL_MAX_CPU_ISA``, set by ``runtime``); else ``(False, why)``."""
    flags = runtime.cpu_flags() or ()
    if 'avx512_bf16' not in flags:
        return False, 'this CPU lacks AVX-512 BF16'
    if 'amx_bf16' in flags and not runtime.amx_for_onednn():
        return False, (f'AMX is not on for oneDNN ({_amx_off_reason()}), and its AVX-512 BF16 '
                       'kernels run slower than float32 on such a CPU')
    return True, ''


def _amx_off_reason():
    """Why oneDNN has no AMX, from ``runtime.configure_amx``'s line."""
    line = runtime.AMX
    if line.startswith('AMX off (') and line.endswith(')'):
        return line[len('AMX off ('):-1]
    return line or 'DNNL_MAX_CPU_ISA'


def choose(option, contexts, num_hiddens):
    """``(value, note)``: the ``--amp`` value a job runs with (None for float32, or a key of
    ``OPTION_NAMES``) for its option ``option`` on ``contexts`` with a model ``num_hiddens``
    wide (None: unknown), and a note for the job's first line saying which and why."""
    if option not in (AUTO, OFF, None):
        return option, f'{OPTION_NAMES[option]} (--amp {option})'
    if option != AUTO:
        return None, 'float32' + (' (--amp off)' if option == OFF else '')
    why = None
    if {ctx.device_type for ctx in contexts} != {'cpu'}:
        why = 'not on CPU'
    elif num_hiddens is None or num_hiddens < AUTO_MIN_WIDTH:
        why = f'the model is {num_hiddens} wide, under {AUTO_MIN_WIDTH}'
    else:
        for supported, reason in (cpu_bfloat16_support(), cpu_native_bfloat16()):
            if not supported:
                why = reason
                break
    if why:
        return None, f'float32 (--amp auto: {why})'
    isa = 'AMX' if runtime.amx_for_onednn() else 'AVX-512 BF16'
    return 'bf16', f'bfloat16 (--amp auto: {isa}, the model is {num_hiddens} wide)'


def check_supported(dtype, contexts):
    """Raise ValueError when AMP in ``dtype`` cannot run on ``contexts``."""
    if dtype not in DTYPES:
        raise ValueError(f'amp={dtype!r}; expected None or one of {DTYPES}')
    kinds = {ctx.device_type for ctx in contexts}
    if dtype == 'float16' and kinds != {'gpu'}:
        raise ValueError(f'amp="float16" needs GPU contexts, got {list(contexts)}: MXNet 1.9.1 '
                         f'has no float16 FullyConnected on CPU; use amp="bfloat16" on CPU')
    if dtype == 'bfloat16':
        if kinds != {'cpu'}:
            raise ValueError(f'amp="bfloat16" runs on CPU contexts, got {list(contexts)}; '
                             f'use amp="float16" on GPU')
        supported, why = cpu_bfloat16_support()
        if not supported:
            raise ValueError(f'amp="bfloat16" is not available: {why}')


_enabled = []


def enable(dtype):
    """Switch MXNet AMP on for ``dtype``, before the model is built (once per process)."""
    from mxnet.contrib import amp
    if dtype not in DTYPES:
        raise ValueError(f'dtype={dtype!r}; expected one of {DTYPES}')
    if _enabled and _enabled[0] != dtype:
        raise ValueError(f'AMP is already enabled for {_enabled[0]} in this process; '
                         f'cannot switch to {dtype}')
    if not _enabled:
        # Loading gluonbert's extension library regenerates MXNet's operator functions and
        # would drop AMP's casting wrappers: load it first
        from .. import ops  # noqa: F401
        if dtype == 'bfloat16':
            supported, why = cpu_bfloat16_support()
            if not supported:
                raise ValueError(f'bfloat16 AMP is not available: {why}')
        amp.init(target_dtype=dtype)
        _enabled.append(dtype)


def check_option(option, contexts):
    """The dtype of a job's ``--amp`` value (None, ``'off'``, ``'auto'`` or a key of
    ``OPTION_NAMES``), or None;
    ValueError naming the option when it cannot run on ``contexts``. Enables nothing."""
    if option in (None, OFF, AUTO):  # 'auto' is chosen by ``choose``, never refused
        return None
    dtype = OPTION_NAMES[option]
    try:
        check_supported(dtype, contexts)
    except ValueError as error:
        raise ValueError(f'--amp {option}: {error}') from None
    return dtype


def start(option, contexts, num_hiddens=None, quiet=False):
    """AMP for a job's ``--amp`` value (None, ``'off'``, ``'auto'`` or a key of
    ``OPTION_NAMES``) on ``contexts`` for a model ``num_hiddens`` wide: chosen (``choose``),
    said in one line (``precision: ...``; ``quiet``: not, for a worker that leaves the log to
    the chief), checked, then enabled before the job builds its model. The dtype, or None."""
    option, note = choose(option, contexts, num_hiddens)
    if not quiet:
        print(f'precision: {note}', flush=True)
    dtype = check_option(option, contexts)
    if dtype is not None:
        enable(dtype)
    return dtype


def enabled_dtype():
    """The dtype AMP was enabled for by ``enable``; ``'unknown'`` when the caller ran
    ``mxnet.contrib.amp.init`` directly; None when AMP is off in this process."""
    if _enabled:
        return _enabled[0]
    return 'unknown' if compat.amp_initialized() else None


class LossScaler:
    """A dynamic loss scale (``dynamic=True``) or a fixed one.

    ``scale`` multiplies the loss before backward; ``update(finite)`` is called once per
    update with whether its gradient was finite.
    """

    def __init__(self, scale=2.0 ** 16, *, dynamic=True, growth_interval=2000,
                 max_scale=2.0 ** 24, min_scale=1.0):
        if not scale > 0:
            raise ValueError(f'loss scale={scale}; expected a positive number')
        self.scale, self.dynamic = float(scale), dynamic
        self.growth_interval, self.max_scale, self.min_scale = growth_interval, max_scale, min_scale
        self.finite_in_a_row = 0

    @classmethod
    def for_dtype(cls, dtype):
        """float16: dynamic, from 2**16; bfloat16 or None: fixed at 1."""
        if dtype == 'float16':
            return cls()
        return cls(1.0, dynamic=False)

    def update(self, finite):
        if not self.dynamic:
            return
        if not finite:
            self.scale = max(self.min_scale, self.scale / 2)
            self.finite_in_a_row = 0
            return
        self.finite_in_a_row += 1
        if self.finite_in_a_row == self.growth_interval:
            self.scale = min(self.max_scale, self.scale * 2)
            self.finite_in_a_row = 0

    def state_dict(self):
        return {'scale': self.scale, 'finite_in_a_row': self.finite_in_a_row}

    def load_state_dict(self, state):
        self.scale, self.finite_in_a_row = state['scale'], state['finite_in_a_row']
