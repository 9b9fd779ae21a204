"""Text in, text out, for every served task: how an input line becomes an example and how
predictions print. Shared by ``export/predict.py`` (onnxruntime) and ``gluonbert predict``
(MXNet), so that both read the same lines and print the same columns. No MXNet here.

Lines, by task (fields separated by tabs):

- classification, regression: ``text`` or ``text_a<TAB>text_b``; printed as TSV: a header
  (``label`` and one ``p_<label>`` column per label, or the score's name), then one row each;
- token-classification: a sentence, words separated by spaces; printed as CoNLL,
  ``word<TAB>tag`` lines and a blank line after each sentence.
"""
import numpy as np

from .readers import TaggedSentence
from .sentences import TextExample


class InputFormatError(ValueError):
    """An input line the task cannot read; names the source and line."""


def _sequence_example(fields, where):
    if len(fields) > 2:
        raise InputFormatError(f'{where}: expected a text or text<TAB>text (at most one tab), '
                               f'found {len(fields) - 1} tabs')
    return TextExample(tuple(fields), None, where)


def _sentence_example(fields, where):
    return TaggedSentence(' '.join(fields).split(), None, where)


# task name -> how an input line's fields become an example
_EXAMPLES = {'classification': _sequence_example, 'regression': _sequence_example,
             'token-classification': _sentence_example}
SERVED = tuple(_EXAMPLES)


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


def examples_from_lines(task_name, numbered_lines, source):
    """The examples of ``(line number, line)`` pairs; blank lines skipped."""
    make = _EXAMPLES[task_name]
    return [make(line.split('\t'), f'{source}, line {number}')
            for number, line in numbered_lines if line.strip()]


def header(task_name, label_names):
    """The first output line, or None (CoNLL output has none)."""
    if task_name == 'regression':
        return (label_names or ['score'])[0]
    if task_name == 'classification':
        return '\t'.join(['label'] + [f'p_{name}' for name in label_names])
    return None


def softmax(logits):
    logits = np.asarray(logits, np.float64)
    probs = np.exp(logits - logits.max(axis=-1, keepdims=True))
    return probs / probs.sum(axis=-1, keepdims=True)


def format_predictions(task_name, examples, predictions, outputs):
    """The output lines of one batch: ``predictions`` from the task's ``postprocess`` of the
    head's ``outputs``."""
    if task_name == 'regression':
        return [f'{score:.6f}' for score in predictions]
    if task_name == 'classification':
        return ['\t'.join([label] + [f'{p:.6f}' for p in row])
                for label, row in zip(predictions, softmax(outputs))]
    lines = []
    for example, tags in zip(examples, predictions):
        lines.extend(f'{word}\t{tag}' for word, tag in zip(example.words, tags))
        lines.append('')
    return lines
