"""Text in, text out, for every served task: input lines become examples and predictions
print as the task says (``Task.served_example``, ``output_header``, ``output_lines``; each
task's module documents its lines). Shared by ``export/predict.py`` (onnxruntime) and
``gluonbert predict`` (MXNet), so that both read the same lines and print the same columns.
No MXNet here.
"""
import numpy as np

from .base import InputFormatError

__all__ = ['InputFormatError', 'examples_from_lines', 'probability_lines', 'read_lines']


def read_lines(data, source):
    """``(line number, line)`` of UTF-8 bytes; InputFormatError naming the first line that
    is not UTF-8."""
    lines = []
    for number, raw in enumerate(data.split(b'\n'), 1):
        try:
            lines.append((number, raw.decode('utf-8').rstrip('\r')))
        except UnicodeDecodeError as error:
            raise InputFormatError(f'{source}, line {number}: not UTF-8 (byte '
                                   f'{raw[error.start:error.start + 1]!r} at column '
                                   f'{error.start + 1}); expected UTF-8 text') from None
    return lines


def examples_from_lines(task, numbered_lines, source):
    """The examples of ``(line number, line)`` pairs for ``task``; blank lines skipped. A
    line of the wrong shape is a ``TaskDataError`` naming it."""
    examples = [task.served_example(line.split('\t'), f'{source}, line {number}')
                for number, line in numbered_lines if line.strip()]
    task.check_served(examples)
    return examples


def softmax(logits):
    logits = np.asarray(logits, np.float64)
    probs = np.exp(logits - logits.max(axis=-1, keepdims=True))
    return probs / probs.sum(axis=-1, keepdims=True)


def probability_lines(predictions, logits):
    """``prediction<TAB>p_0<TAB>p_1...`` per row: each prediction, then the softmax of its
    row of ``logits``."""
    return ['\t'.join([str(prediction)] + [f'{p:.6f}' for p in row])
            for prediction, row in zip(predictions, softmax(logits))]
