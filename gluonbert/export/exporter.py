"""``export_onnx``: a fine-tuned gluonbert head to a verified, self-describing ONNX folder.

The folder holds ``model.onnx`` (and ``model.int8.onnx`` if asked), ``vocab.json`` (d2l's
``idx_to_token`` list), ``labels.json`` (label names in label-id order), ``tokenizer.json``
(the settings of the tokenizer the model was trained with, ``data.tokenization``) and
``export.json`` (inputs, outputs, max_len, tokenizer, task settings, verification). The
vocabulary, label names, max_len, tokenizer and task settings are also in the ONNX model's
``metadata_props``, so the model file alone is enough to serve it.
"""
import json
import os
from dataclasses import dataclass

from .convert import to_onnx
from .folder import (EXPORT_FILE, INT8_FILE, LABELS_FILE, MODEL_FILE, VOCAB_FILE,
                     staged_folder, write_bytes)
from .opset import OPSET
from .operators import check_operators
from .quantize import quantize_int8
from .signature import INPUT_DTYPE, check_label_names, find_encoder, signature_of
from .trace import trace
from .verify import verify
from ..atomic import write_json
from ..data.vocab import Vocab
from ..data.tokenization import (TOKENIZER_FILE, WhitespaceTokenizer, describe_tokenizer,
                                 tokenizer_from_description)

_D2L_SPECIALS = ('<unk>', '<pad>', '<cls>', '<sep>')


@dataclass
class ExportReport:
    """What ``export_onnx`` wrote and how closely onnxruntime matched MXNet."""
    folder: str
    files: list
    head: str
    inputs: dict
    outputs: dict
    max_abs_diff: float
    verification: object            # VerificationReport of model.onnx
    int8_max_abs_diff: float = None  # of model.int8.onnx, when written (not bounded)

    def __str__(self):
        lines = [f'{self.head} exported to {self.folder}: {", ".join(self.files)}',
                 f'max |onnxruntime - mxnet| = {self.max_abs_diff:.2e}, beyond float32 '
                 f'resolution {self.verification.max_beyond_float32:.2e} '
                 f'(tolerance {self.verification.tolerance:g})']
        if self.int8_max_abs_diff is not None:
            lines.append(f'int8 model: max |onnxruntime - mxnet| = {self.int8_max_abs_diff:.2e}')
        return '\n'.join(lines + [self.verification.table()])


def export_onnx(model, folder, vocab, label_names, max_len, *, tokenizer=None, examples=None,
                task_settings=None, tolerance=1e-4, quantize=False, output_names=None,
                overwrite=False):
    """Export the fine-tuned head ``model`` to ONNX in ``folder`` and verify it.

    ``model``: a gluonbert head (``BERTClassifier``, ``gluonbert.model.heads.BERTFor...``) or
    any HybridBlock over a ``BERTEncoder`` called with ``(tokens, segments, valid_lens)``.
    ``vocab``: its vocabulary (a ``Vocab`` or the ``idx_to_token`` list); ``label_names``:
    the class names in label-id order (None for heads without a label set); ``max_len``: the
    longest sequence to serve, at most the encoder's ``max_len``. ``tokenizer``: the one the
    model was trained with (a ``WordPieceTokenizer``, a ``WhitespaceTokenizer`` or its
    ``describe_tokenizer`` dict); default d2l's (lower-case, split on whitespace) for a
    vocabulary with d2l's special tokens. ``examples``: real inputs
    ``(tokens, segments, valid_lens)`` (e.g. a dataset's arrays) verified besides random ones.
    ``task_settings``: the fine-tuning task's ``settings()`` (question answering: its windows
    and span length), so that serving rebuilds the task as it was evaluated.
    The export is refused, and nothing written, when onnxruntime differs from MXNet by more
    than ``tolerance``. ``quantize=True`` also writes a dynamic-int8 ``model.int8.onnx``.
    Works in either ``npx`` mode; returns an ``ExportReport``.
    """
    signature = signature_of(model, output_names)
    label_names = check_label_names(signature, label_names)
    encoder = find_encoder(model)
    tokens = _vocab_tokens(vocab, encoder.vocab_size)
    _check_max_len(max_len, encoder.max_len)
    if not tolerance > 0:
        raise ValueError(f'tolerance={tolerance!r}; expected a positive max abs difference')
    tokenizer = _tokenizer_description(tokenizer, tokens)
    metadata = _metadata(signature, tokens, label_names, max_len, tokenizer, encoder,
                         task_settings)
    with staged_folder(folder, overwrite) as staging:
        symbol, params = trace(model, signature)
        check_operators(symbol, model)
        proto = to_onnx(symbol, params, signature, metadata,
                        doc_string=f'gluonbert {signature.head}; see metadata_props')
        report = verify(proto, model, signature, encoder.vocab_size, max_len, examples,
                        tolerance)
        models = {MODEL_FILE: proto}
        int8_diff = None
        if quantize:
            models[INT8_FILE] = quantize_int8(proto)
            int8_diff = verify(models[INT8_FILE], model, signature, encoder.vocab_size,
                               max_len, examples, tolerance=float('inf')).max_abs_diff
        description = {key: json.loads(value) for key, value in metadata.items()
                       if key not in ('vocab', 'label_names')}
        description.update(opset=OPSET, verification={
            'tolerance': tolerance, 'max_abs_diff': report.max_abs_diff,
            'max_beyond_float32': report.max_beyond_float32, 'batches': report.batches,
            'int8_max_abs_diff': int8_diff})
        files = _write_folder(staging, models, tokens, label_names, tokenizer, description)
    return ExportReport(os.path.abspath(folder), files, signature.head,
                        dict(signature.inputs), dict(signature.outputs), report.max_abs_diff,
                        report, int8_diff)


def _write_folder(staging, models, tokens, label_names, tokenizer, description):
    """Write the models, vocab.json, labels.json, tokenizer.json and export.json; return the
    file names."""
    files = list(models) + [VOCAB_FILE] + ([LABELS_FILE] if label_names else []) + \
        ([TOKENIZER_FILE] if tokenizer else []) + [EXPORT_FILE]
    for name, proto in models.items():
        write_bytes(os.path.join(staging, name), proto.SerializeToString())
    write_json(os.path.join(staging, VOCAB_FILE), tokens)
    if label_names:
        write_json(os.path.join(staging, LABELS_FILE), list(label_names))
    if tokenizer:
        write_json(os.path.join(staging, TOKENIZER_FILE), tokenizer)
    write_json(os.path.join(staging, EXPORT_FILE), dict(description, files=files))
    return files


def _vocab_tokens(vocab, vocab_size):
    tokens = getattr(vocab, 'idx_to_token', vocab)
    if not isinstance(tokens, (list, tuple)) or not all(isinstance(t, str) for t in tokens):
        raise TypeError(f'vocab must be a Vocab or its idx_to_token list of strings, got '
                        f'{type(vocab).__name__}')
    if len(tokens) != vocab_size:
        raise ValueError(f'vocab has {len(tokens)} tokens, but the model\'s token embedding '
                         f'has {vocab_size} rows; export with the vocabulary the model was '
                         f'trained with')
    if len(set(tokens)) != len(tokens):
        raise ValueError('vocab holds duplicate tokens; expected each token once')
    return list(tokens)


def _check_max_len(max_len, encoder_max_len):
    if not isinstance(max_len, int) or not 1 <= max_len <= encoder_max_len:
        raise ValueError(f'max_len={max_len!r}; expected an int in [1, {encoder_max_len}] '
                         f'(the encoder\'s position embedding has {encoder_max_len} rows)')


def _tokenizer_description(tokenizer, tokens):
    """The tokenizer's settings as a dict, checked by building it back; None when not given
    and the vocabulary lacks d2l's special tokens (nothing to serve text with)."""
    if tokenizer is None:
        if not all(special in tokens for special in _D2L_SPECIALS):
            return None
        tokenizer = WhitespaceTokenizer()
    description = tokenizer if isinstance(tokenizer, dict) else describe_tokenizer(tokenizer)
    tokenizer_from_description(description, Vocab.from_tokens(tokens))
    return description


def _metadata(signature, tokens, label_names, max_len, tokenizer, encoder, task_settings):
    """``metadata_props`` of the model: every value a JSON string. ``encoder`` gives the sizes
    that onnxruntime's transformer optimizer needs (``export/optimize.py``)."""
    values = {
        'head': signature.head,
        'task': signature.task,
        'task_settings': dict(task_settings or {}),
        'max_len': max_len,
        'inputs': {name: {'dtype': INPUT_DTYPE.__name__, 'axes': list(axes)}
                   for name, axes in signature.inputs.items()},
        'outputs': {name: None if axes is None else list(axes)
                    for name, axes in signature.outputs.items()},
        'tokenizer': tokenizer,
        'vocab': tokens,
        'label_names': None if label_names is None else list(label_names),
        'encoder': {'num_hiddens': encoder.num_hiddens, 'num_heads': encoder.num_heads,
                    'num_blks': len(encoder.blks)},
    }
    return {key: json.dumps(value, ensure_ascii=False) for key, value in values.items()}
