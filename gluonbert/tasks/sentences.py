"""Examples of one text or a text pair with a label, read from a table's columns.

Shared by the sequence-level tasks (classification, its presets, regression): which columns
hold the texts and the label is chosen by ``text_columns`` and ``label_column``; without
``text_columns`` the usual names are tried (GLUE's ``sentence1``/``sentence2``, ``sentence``,
``premise``/``hypothesis``, ``text``).
"""
from dataclasses import dataclass

import numpy as np

from .base import Features, InputFormatError, Task, TaskDataError, check_not_empty
from .encoding import encode_texts
from .readers import check_label_types, field, read_table, text_field

USUAL_TEXT_COLUMNS = (('sentence1', 'sentence2'), ('sentence',), ('premise', 'hypothesis'),
                      ('text',))


@dataclass
class TextExample:
    """One or two texts, their label (a string, a float, or None) and where they were read."""
    texts: tuple
    label: object
    where: str


class TextTask(Task):
    """A task over one text or a pair. ``texts``: which (1 or 2), taken from the training
    split (``labels_from``) and saved with the model, so that serving refuses a line of the
    other shape (a pair typed with spaces for its tab was served as one text); None: not
    known (folders saved before it was recorded)."""

    def __init__(self, texts=None):
        if texts not in (None, 1, 2):
            raise ValueError(f'texts={texts!r}; expected 1 (one text), 2 (a pair) or None')
        self.texts = texts

    def settings(self):
        return {} if self.texts is None else {'texts': self.texts}

    def served_example(self, fields, where):
        """A line holds ``text`` or ``text_a<TAB>text_b``, as the model was trained (a pair
        model takes exactly one tab per line)."""
        if self.texts == 2 and len(fields) != 2:
            raise InputFormatError(f'{where}: expected text<TAB>text (exactly one tab: the '
                                   f'model was trained on pairs), found {len(fields) - 1} tabs')
        if self.texts == 1 and len(fields) != 1:
            raise InputFormatError(f'{where}: expected one text without tabs (the model was '
                                   f'trained on single texts), found {len(fields) - 1} tabs')
        if len(fields) > 2:
            raise InputFormatError(f'{where}: expected a text or text<TAB>text (at most one '
                                   f'tab), found {len(fields) - 1} tabs')
        return TextExample(tuple(fields), None, where)

    def _record_texts(self, examples):
        counts = {len(example.texts) for example in examples}
        if len(counts) == 1:
            self.texts = counts.pop()


def _text_columns(rows, text_columns, path):
    if text_columns:
        names = tuple(text_columns)
        if not 1 <= len(names) <= 2:
            raise ValueError(f'text_columns={list(names)}; expected one column or two (a pair)')
        return names
    for names in USUAL_TEXT_COLUMNS:
        if all(name in rows[0].fields for name in names):
            return names
    raise TaskDataError(f'{path}: none of the usual text columns '
                        f'{[list(n) for n in USUAL_TEXT_COLUMNS]}; the columns are '
                        f'{list(rows[0].fields)}: choose with --text-columns')


def read_text_examples(path, text_columns=None, label_column='label', fmt=None,
                       quoting=False, convert_label=str, label_kind='label'):
    """``TextExample``s of a CSV, TSV or JSON Lines file; texts are stripped (SST-2's carry
    a trailing space); ``convert_label`` turns the label field into a value (ValueError:
    an error naming the line and ``label_kind``, what was expected). A file without the
    label column gives unlabelled examples."""
    rows = check_not_empty(read_table(path, fmt, quoting), path)
    names = _text_columns(rows, text_columns, path)
    labelled = label_column in rows[0].fields
    if labelled:
        check_label_types(rows, label_column, numbers=convert_label is not str)
    examples = []
    for row in rows:
        texts = tuple(text_field(row, name, '--text-columns').strip() for name in names)
        label = None
        if labelled:
            value = field(row, label_column, '--label-column')
            try:
                label = convert_label(value)
            except (TypeError, ValueError):
                raise TaskDataError(f'{row.where}: label {value!r} in column {label_column!r} '
                                    f'is not a {label_kind}') from None
        examples.append(TextExample(texts, label, row.where))
    return examples


def encode_text_examples(examples, tokenizer, vocab, max_len, label_values=None):
    """``Features`` of text examples; ``label_values(examples)`` -> the labels array, or
    None for unlabelled examples."""
    check_not_empty(examples, 'the split')
    arrays = encode_texts([e.texts for e in examples], tokenizer, vocab, max_len)
    labels = None
    if label_values is not None and all(e.label is not None for e in examples):
        labels = label_values(examples)
    return Features(*arrays, labels=labels, example_index=np.arange(len(examples)))
