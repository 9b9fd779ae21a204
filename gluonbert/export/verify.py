"""Verification of an export: the ONNX checker, then onnxruntime against MXNet on random and
real batches of several batch sizes and lengths, from length 1 to ``max_len``.

The export is refused when a difference exceeds ``tolerance`` beyond float32's own resolution
at that value, ``|onnx - mxnet| - 4 * eps32 * |mxnet|``: below magnitude 200 that is the plain
absolute difference (to 1e-4), but question answering adds -1e4 to padded positions, where one
float32 step is 1e-3. Both the plain and the resolution-adjusted maxima are reported.
"""
from dataclasses import dataclass, field

import mxnet as mx
import numpy as np
import onnx
from mxnet import autograd
from mxnet.util import np_array, np_shape

from ..model import packing
from .session import inference_session
from .signature import INPUT_DTYPE, MODEL_DTYPES

EPS32 = float(np.finfo(np.float32).eps)
REAL_BATCH_SIZES = (1, 4, 16)


class VerificationError(RuntimeError):
    """onnxruntime's outputs differ from MXNet's by more than the tolerance."""


@dataclass
class VerificationReport:
    """Max abs difference of onnxruntime against MXNet, overall and per batch; ``beyond``:
    the difference beyond float32 resolution, which the tolerance bounds."""
    tolerance: float
    max_abs_diff: float = 0.0
    max_beyond_float32: float = 0.0
    batches: list = field(default_factory=list)  # dicts: source, shape, max_abs_diff, beyond

    def add(self, source, shape, got, expected):
        diff = max(float(np.abs(g - e).max()) for g, e in zip(got, expected))
        beyond = max(float((np.abs(g - e) - 4 * EPS32 * np.abs(e)).max())
                     for g, e in zip(got, expected))
        self.batches.append({'source': source, 'shape': list(shape), 'max_abs_diff': diff,
                             'beyond_float32': beyond})
        self.max_abs_diff = max(self.max_abs_diff, diff)
        self.max_beyond_float32 = max(self.max_beyond_float32, beyond)
        return beyond <= self.tolerance

    def table(self):
        rows = [f"{b['source']:<7} {'x'.join(map(str, b['shape'])):<12} "
                f"{b['max_abs_diff']:>9.2e} {b['beyond_float32']:>12.2e}" for b in self.batches]
        return '\n'.join(['source  shape        max |diff|  beyond fp32'] + rows)


def verify(model_proto, model, signature, vocab_size, max_len, examples=None,
           tolerance=1e-4, seed=0):
    """Check ``model_proto`` with onnx.checker, then compare onnxruntime with ``model``;
    raise VerificationError when an output differs beyond ``tolerance``."""
    onnx.checker.check_model(model_proto, full_check=True)  # against the model's own opset
    session = inference_session(model_proto.SerializeToString())
    report = VerificationReport(tolerance)
    batches = [('random', b) for b in random_batches(signature, vocab_size, max_len, seed)]
    if examples is not None:
        batches += [('real', b) for b in real_batches(signature, examples, max_len)]
    failures = []
    for source, batch in batches:
        expected = mxnet_outputs(model, signature, batch)
        got = session.run(list(signature.outputs), {k: v.astype(INPUT_DTYPE)
                                                     for k, v in batch.items()})
        if not report.add(source, batch['tokens'].shape, got, expected):
            failures.append(f"{source} batch {batch['tokens'].shape}: "
                            f"{report.batches[-1]['max_abs_diff']:.2e}")
    if failures:
        raise VerificationError(f'onnxruntime differs from MXNet beyond tolerance={tolerance} '
                                f'on {len(failures)} of {len(batches)} batches ('
                                + '; '.join(failures) + '); nothing was written.\n'
                                + report.table())
    return report


def mxnet_outputs(model, signature, batch):
    """The model's outputs on ``batch`` (numpy arrays by input name), in inference mode, on
    the model's device, with the dtypes of d2l's data pipeline."""
    device = next(iter(model.collect_params().values())).list_ctx()[0]
    # Padded, as the graph was traced: the same numbers at padding positions too
    with np_array(False), np_shape(False), autograd.predict_mode(), packing.padded():
        inputs = [mx.nd.array(batch[name], ctx=device, dtype=MODEL_DTYPES[name])
                  for name in signature.inputs]
        outputs = model(tuple(inputs)) if signature.takes_tuple else model(*inputs)
    outputs = outputs if isinstance(outputs, (list, tuple)) else [outputs]
    return [out.asnumpy() for out in outputs]


def random_batches(signature, vocab_size, max_len, seed=0):
    """Batches of random ids: lengths 1, max_len and two in between, batch sizes 1 to 5; each
    batch holds one full-length sequence, the others random valid lengths."""
    rng = np.random.RandomState(seed)
    shapes = [(1, 1), (3, max_len), (2, max(1, max_len // 2)), (5, max(1, min(7, max_len - 1)))]
    choices = 2 if 'choices' in signature.inputs['tokens'] else None
    batches = []
    for batch_size, seq_len in shapes:
        lead = (batch_size,) if choices is None else (batch_size, choices)
        valid_lens = rng.randint(1, seq_len + 1, lead)
        valid_lens.flat[0] = seq_len
        positions = np.arange(seq_len)
        split = rng.randint(0, valid_lens + 1)[..., None]  # where the second segment starts
        segments = (positions >= split) & (positions < valid_lens[..., None])
        batches.append({'tokens': rng.randint(0, vocab_size, lead + (seq_len,)),
                        'segments': segments.astype(np.int64), 'valid_lens': valid_lens})
    return batches


def real_batches(signature, examples, max_len):
    """Batches of ``REAL_BATCH_SIZES`` consecutive examples, each cut to its longest valid
    length, and the first four at their full padded length."""
    arrays = _as_numpy_examples(signature, examples, max_len)
    count = len(arrays['tokens'])
    batches, start = [], 0
    for size in REAL_BATCH_SIZES:
        rows = np.arange(start, start + size) % count
        start += size
        batch = {name: array[rows] for name, array in arrays.items()}
        longest = int(batch['valid_lens'].max())
        batches.append({name: array if name == 'valid_lens' else array[..., :longest]
                        for name, array in batch.items()})
    batches.append({name: array[np.arange(4) % count] for name, array in arrays.items()})
    return batches


def _as_numpy_examples(signature, examples, max_len):
    if not isinstance(examples, (list, tuple)) or len(examples) != 3:
        raise ValueError('examples must be the tuple (tokens, segments, valid_lens) of real '
                         "inputs, e.g. the arrays of d2l's SNLIBERTDataset")
    arrays = {}
    for name, array in zip(signature.inputs, examples):
        array = array.asnumpy() if hasattr(array, 'asnumpy') else np.asarray(array)
        if array.ndim != len(signature.inputs[name]):
            raise ValueError(f'examples: {name} has shape {array.shape}; expected axes '
                             f'{signature.inputs[name]}')
        if name != 'valid_lens' and array.shape[-1] > max_len:
            raise ValueError(f'examples: {name} has sequence length {array.shape[-1]}, longer '
                             f'than max_len={max_len}')
        arrays[name] = np.rint(array).astype(np.int64)
    if not len(arrays['tokens']):
        raise ValueError('examples holds no example')
    return arrays
