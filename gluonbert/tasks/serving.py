"""Text in, text out, for every served task: how an input line becomes an example and how
predictions print. Shared by ``export/predict.py`` (onnxruntime) and ``gluonbert predict``
(MXNet), so that both read the same lines and print the same columns. No MXNet here.

Lines, by task (fields separated by tabs):

- classification, regression: ``text`` or ``text_a<TAB>text_b``, as the model was trained
  (a pair model takes exactly one tab per line); printed as TSV: a header
  (``label`` and one ``p_<label>`` column per label, or the score's name), then one row each;
- token-classification: a sentence, words separated by spaces; printed as CoNLL,
  ``word<TAB>tag`` lines and a blank line after each sentence;
- question-answering: ``question<TAB>context``, a long context windowed with the task's
  settings (the stride the model was trained with); printed as TSV: ``answer``,
  ``probability`` (the softmax of the scores over the n-best spans, as BERT reports it),
  ``score`` (start + end logit), ``start_char`` and ``end_char`` (the answer is
  ``context[start_char:end_char]``), empty cells when no span qualifies;
- multiple-choice: ``context<TAB>question<TAB>ending0<TAB>ending1...`` (the question may be
  empty), as many endings on every line; printed as TSV: ``choice`` (the index of the chosen
  ending) and one probability per ending, ``p_0`` to ``p_<N-1>``.
"""
import functools

import numpy as np

from .base import TaskDataError
from .choices import served_example as served_choice
from .qa_answers import nbest_answers
from .qa_windows import served_example as served_question
from .readers import TaggedSentence
from .sentences import TextExample

N_BEST = 20  # the spans a served answer's probability is taken over (BERT's n_best_size)
ANSWER_COLUMNS = ('answer', 'probability', 'score', 'start_char', 'end_char')


class InputFormatError(TaskDataError):
    """An input line the task cannot read; names the source and line."""


def _sequence_example(fields, where, texts=None):
    """``texts``: 2 for a model trained on pairs, 1 on single texts, None when not known."""
    if texts == 2 and len(fields) != 2:
        raise InputFormatError(f'{where}: expected text<TAB>text (exactly one tab: the model '
                               f'was trained on pairs), found {len(fields) - 1} tabs')
    if texts == 1 and len(fields) != 1:
        raise InputFormatError(f'{where}: expected one text without tabs (the model was '
                               f'trained on single texts), found {len(fields) - 1} tabs')
    if len(fields) > 2:
        raise InputFormatError(f'{where}: expected a text or text<TAB>text (at most one tab), '
                               f'found {len(fields) - 1} tabs')
    return TextExample(tuple(fields), None, where)


def _sentence_example(fields, where):
    return TaggedSentence(' '.join(fields).split(), None, where)


# task name -> how an input line's fields become an example
_EXAMPLES = {'classification': _sequence_example, 'regression': _sequence_example,
             'token-classification': _sentence_example, 'question-answering': served_question,
             'multiple-choice': served_choice}
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


def served_kind(task):
    """The served task ``task`` reads and prints as: its own name, or that of the task it
    presets (``snli`` serves as ``classification``)."""
    for cls in type(task).__mro__:
        if getattr(cls, 'name', None) in _EXAMPLES:
            return cls.name
    raise ValueError(f'task {task.name!r} is not served; served tasks: {", ".join(SERVED)}')


def examples_from_lines(task, numbered_lines, source):
    """The examples of ``(line number, line)`` pairs for ``task``; blank lines skipped. A
    line of the wrong shape is a ``TaskDataError`` naming it."""
    kind = served_kind(task)
    make = _EXAMPLES[kind]
    if make is _sequence_example:
        make = functools.partial(make, texts=task.texts)
    examples = [make(line.split('\t'), f'{source}, line {number}')
                for number, line in numbered_lines if line.strip()]
    if kind == 'multiple-choice':
        for example in examples:
            if len(example.endings) != len(examples[0].endings):
                raise InputFormatError(
                    f'{example.qid}: {len(example.endings)} endings; expected '
                    f'{len(examples[0].endings)}, as on {examples[0].qid} (the output has one '
                    f'probability column per ending)')
    return examples


def header(task, label_names, examples):
    """The first output line for ``examples``, or None (CoNLL output has none)."""
    kind = served_kind(task)
    if kind == 'regression':
        return (label_names or ['score'])[0]
    if kind == 'classification':
        return '\t'.join(['label'] + [f'p_{name}' for name in label_names])
    if kind == 'question-answering':
        return '\t'.join(ANSWER_COLUMNS)
    if kind == 'multiple-choice':
        count = len(examples[0].endings) if examples else 0
        return '\t'.join(['choice'] + [f'p_{i}' for i in range(count)])
    return None


def softmax(logits):
    logits = np.asarray(logits, np.float64)
    probs = np.exp(logits - logits.max(axis=-1, keepdims=True))
    return probs / probs.sum(axis=-1, keepdims=True)


def format_predictions(task, examples, features, outputs):
    """The output lines of one batch of ``examples``, from the head's ``outputs`` on their
    ``features`` (``task.encode``)."""
    kind = served_kind(task)
    if kind == 'question-answering':
        start_logits, end_logits = outputs
        answers = nbest_answers(features, start_logits, end_logits,
                                [example.context for example in examples], N_BEST,
                                task.max_answer_len)
        return [_answer_row(nbest[0]) if nbest else '\t' * (len(ANSWER_COLUMNS) - 1)
                for nbest in answers]
    predictions = task.postprocess(outputs, features, examples)
    if kind == 'regression':
        return [f'{score:.6f}' for score in predictions]
    if kind in ('classification', 'multiple-choice'):
        return ['\t'.join([str(label)] + [f'{p:.6f}' for p in row])
                for label, row in zip(predictions, softmax(outputs))]
    lines = []
    for example, tags in zip(examples, predictions):
        lines.extend(f'{word}\t{tag}' for word, tag in zip(example.words, tags))
        lines.append('')
    return lines


def _answer_row(answer):
    return (f'{answer["text"]}\t{answer["probability"]:.6f}\t{answer["score"]:.6f}\t'
            f'{answer["start_char"]}\t{answer["end_char"]}')
