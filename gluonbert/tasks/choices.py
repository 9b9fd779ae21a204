"""Multiple choice inputs and accuracy: one context, N candidate endings (SWAG, Cosmos QA).

Each candidate becomes one sequence ``<cls> context <sep> question ending <sep>`` (segments 0
then 1), the pair truncated longest side first (``encoding.truncate_pair``), as HF's
``run_swag.py`` does; an example's candidates stack into the ``(batch, num_choices,
seq_len)`` layout ``BERTForMultipleChoice`` takes. Readers know two layouts by their header
(``id, context, question, answer0..3, label``: Cosmos QA; ``sent1, sent2, ending0..3,
label``: SWAG), or take the columns by name.

Pure Python and numpy (no MXNet): ``export/predict.py`` serves multiple choice with this same
code. Serving API: ``served_example(fields, where)`` reads a line's tab-separated fields
``context, question, ending0, ending1, ...``; ``encode_choices(examples, tokenizer, vocab,
max_len)`` -> ``Features``; the head's ``(batch, num_choices)`` scores then give ``argmax``
per example (``MultipleChoice.postprocess``).
"""
from dataclasses import dataclass

import numpy as np

from .base import Features, TaskDataError, check_not_empty
from ..data.segments import get_tokens_and_segments
from .encoding import pad_sequences, truncate_pair
from .readers import field, read_table, text_field

# Known layouts: (context column, question column, ending column prefix)
LAYOUTS = {'cosmos-qa': ('context', 'question', 'answer'), 'swag': ('sent1', 'sent2', 'ending')}


@dataclass
class ChoiceExample:
    """A context, a question (or the start of the ending, SWAG's ``sent2``; may be empty),
    the candidate endings, the gold index (``None`` when serving), the example's id (the
    ``id`` column, else ``where``) and the file and line it came from."""
    context: str
    question: str
    endings: list
    label: int = None
    qid: str = ''
    where: str = ''


def served_example(fields, where):
    """The ``ChoiceExample`` of one served input line's tab-separated ``fields``:
    ``context<TAB>question<TAB>ending0<TAB>ending1...`` (the question may be empty)."""
    if len(fields) < 4:
        raise TaskDataError(f'{where}: expected context<TAB>question<TAB>ending0<TAB>ending1'
                            f'... (at least two endings), found {len(fields)} fields')
    return ChoiceExample(fields[0], fields[1], list(fields[2:]), None, where, where)


def _layout(header, path):
    for context, question, ending in LAYOUTS.values():
        if context in header and f'{ending}0' in header:
            endings = [c for c in header if c.startswith(ending) and c[len(ending):].isdigit()]
            return context, question, sorted(endings, key=lambda c: int(c[len(ending):]))
    raise TaskDataError(f'{path}: columns {header} are neither Cosmos QA\'s (context, '
                        f'question, answer0, ...) nor SWAG\'s (sent1, sent2, ending0, ...); '
                        f'choose with --text-columns context,question,ending0,ending1,...')


def read_choices(path, text_columns=None, label_column='label', fmt=None, quoting=False):
    """The ``ChoiceExample``s of a CSV, TSV or JSON Lines file (``readers.read_table``).

    ``text_columns`` is ``[context, question, ending0, ending1, ...]`` (the question column may
    be ``''`` for none); by default the columns pick Cosmos QA's or SWAG's layout. A file
    without ``label_column`` gives unlabelled examples; in a file with it, every row has one.
    Labels must be integers in ``[0, number of endings)``.
    """
    rows = check_not_empty(read_table(path, fmt, quoting), path)
    if text_columns is None:
        context, question, endings = _layout(list(rows[0].fields), path)
    else:
        if len(text_columns) < 4:
            raise ValueError(f'text_columns={list(text_columns)}: expected [context, question, '
                             f'ending0, ending1, ...] with at least two endings')
        context, question, *endings = text_columns
    labelled = any(label_column in row.fields for row in rows)  # JSON Lines rows may differ
    examples = []
    for row in rows:
        text = [text_field(row, name, '--text-columns') for name in endings]
        for name, ending in zip(endings, text):
            if not ending.strip():
                raise TaskDataError(f'{row.where}: ending {name!r} is empty; expected the text '
                                    f'of every ending')
        label = _label(row, label_column, len(endings)) if labelled else None
        examples.append(ChoiceExample(
            text_field(row, context, '--text-columns'),
            text_field(row, question, '--text-columns') if question else '', text, label,
            str(row.fields.get('id', row.where)), row.where))
    return examples


def _label(row, column, num_endings):
    value = str(field(row, column, '--label-column')).strip()
    if not (value.isdigit() and int(value) < num_endings):
        raise TaskDataError(f'{row.where}: {column}={value!r}; expected the index of the right '
                            f'ending, 0 to {num_endings - 1}')
    return int(value)


def encode_choices(examples, tokenizer, vocab, max_len):
    """The ``Features`` of ``examples``, which must all have the same number of endings:
    ``tokens``, ``segments`` (int32, (n, num_choices, width)), ``valid_lens`` (float32,
    (n, num_choices)) and ``labels`` (int32, (n,); None unless every example has one); width
    is the longest sequence, at most ``max_len``."""
    counts = {len(example.endings) for example in examples}
    if len(counts) != 1:
        raise TaskDataError(f'examples have {sorted(counts)} endings; expected one number of '
                            f'endings for all of them')
    sequences = []
    for example in examples:
        context = tokenizer(example.context)
        for ending in example.endings:
            left, right = list(context), tokenizer(f'{example.question} {ending}'.strip())
            truncate_pair(left, right, max_len)
            sequences.append(get_tokens_and_segments(left, right))
    tokens, segments, valid_lens = pad_sequences(sequences, vocab, max_len)
    shape = (len(examples), counts.pop())
    labels = None
    if all(example.label is not None for example in examples):
        labels = np.array([example.label for example in examples], dtype=np.int32)
    return Features(tokens.reshape(shape + (-1,)), segments.reshape(shape + (-1,)),
                    valid_lens.reshape(shape), labels)


def accuracy(predictions, examples):
    """The fraction of ``examples`` whose predicted ending index is the gold one."""
    if len(predictions) != len(examples) or not examples:
        raise ValueError(f'{len(predictions)} predictions for {len(examples)} examples; '
                         f'expected one per example, at least one')
    return float(np.mean([int(p) == e.label for p, e in zip(predictions, examples)]))
