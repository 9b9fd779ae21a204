"""Multiple choice inputs and accuracy: one context, N candidate endings (SWAG, Cosmos QA).

Each candidate becomes one sequence ``<cls> context <sep> question ending <sep>`` (segments 0
then 1), the pair truncated longest side first, as HF's ``run_swag.py`` does; an example's
candidates stack into the ``(batch, num_choices, seq_len)`` layout ``BERTForMultipleChoice``
takes. Readers know two layouts by their header (``id, context, question, answer0..3, label``:
Cosmos QA; ``sent1, sent2, ending0..3, label``: SWAG), or take the columns by name.

Pure Python and numpy (no MXNet): ``export/predict.py`` serves multiple choice with this same
code. Serving API: ``encode_choices([ChoiceExample(context, question, endings)], tokenizer,
vocab, max_len)`` -> ``Features``; the model's ``(batch, num_choices)`` scores then give
``argmax`` per example.
"""
import csv
import json
import os
from dataclasses import dataclass

import numpy as np

from .base import Features, TaskDataError

# Known layouts: (context column, question column, ending column prefix)
LAYOUTS = {'cosmos-qa': ('context', 'question', 'answer'), 'swag': ('sent1', 'sent2', 'ending')}


@dataclass
class ChoiceExample:
    """A context, a question (or the start of the ending, SWAG's ``sent2``; may be empty),
    the candidate endings and the gold index (``None`` when serving)."""
    context: str
    question: str
    endings: list
    label: int = None
    qid: str = ''


def read_rows(path):
    """``(header, rows)`` of a CSV (RFC-4180 quoting), TSV (no quoting) or JSON Lines file,
    rows as dicts, each with its line number under ``None``."""
    extension = os.path.splitext(path)[1].lower()
    with open(path, encoding='utf-8', newline='') as f:
        if extension in ('.jsonl', '.json'):
            rows = []
            for number, line in enumerate(f, 1):
                if line.strip():
                    try:
                        row = json.loads(line)
                    except json.JSONDecodeError as error:
                        raise TaskDataError(f'{path}, line {number}: not JSON ({error})') from None
                    if not isinstance(row, dict):
                        raise TaskDataError(f'{path}, line {number}: expected a JSON object')
                    rows.append({**{k: str(v) for k, v in row.items()}, None: number})
            return (list(rows[0]) if rows else []), rows
        reader = (csv.reader(f) if extension == '.csv'
                  else csv.reader(f, delimiter='\t', quoting=csv.QUOTE_NONE))
        header, rows = next(reader, []), []
        for fields in reader:
            if not any(field.strip() for field in fields):
                continue
            if len(fields) != len(header):
                raise TaskDataError(f'{path}, line {reader.line_num}: {len(fields)} fields; '
                                 f'expected {len(header)}, one per header column')
            rows.append({**dict(zip(header, fields)), None: reader.line_num})
        return header, rows


def _layout(header, path):
    for name, (context, question, ending) in LAYOUTS.items():
        if context in header and f'{ending}0' in header:
            return context, question, sorted((c for c in header if c.startswith(ending)
                                              and c[len(ending):].isdigit()),
                                             key=lambda c: int(c[len(ending):]))
    raise TaskDataError(f'{path}: header {header} is neither Cosmos QA\'s (context, question, '
                     f'answer0, ...) nor SWAG\'s (sent1, sent2, ending0, ...); pass '
                     f'text_columns=[context, question, ending0, ending1, ...]')


def read_choices(path, text_columns=None, label_column='label', id_column=None):
    """The ``ChoiceExample``s of a CSV, TSV or JSON Lines file.

    ``text_columns`` is ``[context, question, ending0, ending1, ...]`` (the question column may
    be ``''`` for none); by default the header picks Cosmos QA's or SWAG's layout. A file
    without ``label_column`` gives unlabelled examples. Labels must be integers in
    ``[0, num_endings)``.
    """
    header, rows = read_rows(path)
    if not rows:
        raise TaskDataError(f'{path}: holds no examples')
    if text_columns is None:
        context, question, endings = _layout(header, path)
    else:
        if len(text_columns) < 4:
            raise ValueError(f'text_columns={list(text_columns)}: expected [context, question, '
                             f'ending0, ending1, ...] with at least two endings')
        context, question, *endings = text_columns
    wanted = [c for c in [context, question, *endings] if c]
    missing = [c for c in wanted if c not in header]
    if missing:
        raise TaskDataError(f'{path}: no column {missing[0]!r}; the header has {header}')
    labelled = label_column in header
    id_column = id_column or ('id' if 'id' in header else None)
    examples = []
    for row in rows:
        label = _label(row, label_column, len(endings), path) if labelled else None
        examples.append(ChoiceExample(row[context], row[question] if question else '',
                                      [row[c] for c in endings], label,
                                      row[id_column] if id_column else str(row[None])))
    return examples


def _label(row, column, num_endings, path):
    value = row.get(column, '').strip()
    if not (value.isdigit() and int(value) < num_endings):
        raise TaskDataError(f'{path}, line {row[None]}: {column}={value!r}; expected the index of '
                         f'the right ending, 0 to {num_endings - 1}')
    return int(value)


def truncate_pair(first, second, max_tokens):
    """Drop tokens from the end of the longer list (the second on ties) until both fit."""
    first, second = list(first), list(second)
    while len(first) + len(second) > max_tokens:
        (first if len(first) > len(second) else second).pop()
    return first, second


def encode_choices(examples, tokenizer, vocab, max_len):
    """The ``Features`` of ``examples``, which must all have the same number of endings:
    ``tokens``, ``segments`` (int32, (n, num_choices, max_len)), ``valid_lens`` (float32,
    (n, num_choices)) and ``labels`` (int32, (n,); None unless every example has one)."""
    if max_len < 5:
        raise ValueError(f'max_len={max_len}: expected at least 5 (<cls>, <sep>, <sep> and a '
                         f'token of each side)')
    counts = {len(example.endings) for example in examples}
    if len(counts) != 1:
        raise TaskDataError(f'examples have {sorted(counts)} endings; expected one number of '
                         f'endings for all of them')
    mapping = getattr(vocab, 'token_to_idx', vocab)
    unk = mapping['<unk>']
    num_choices = counts.pop()
    shape = (len(examples), num_choices, max_len)
    tokens = np.full(shape, mapping['<pad>'], dtype=np.int32)
    segments = np.zeros(shape, dtype=np.int32)
    valid_lens = np.zeros(shape[:2], dtype=np.float32)
    for i, example in enumerate(examples):
        context = tokenizer(example.context)
        for j, ending in enumerate(example.endings):
            second = tokenizer(f'{example.question} {ending}'.strip())
            left, right = truncate_pair(context, second, max_len - 3)
            pieces = ['<cls>', *left, '<sep>', *right, '<sep>']
            tokens[i, j, :len(pieces)] = [mapping.get(token, unk) for token in pieces]
            segments[i, j, len(left) + 2:len(pieces)] = 1
            valid_lens[i, j] = len(pieces)
    labels = None
    if all(example.label is not None for example in examples):
        labels = np.array([example.label for example in examples], dtype=np.int32)
    return Features(tokens, segments, valid_lens, labels)


def accuracy(predictions, examples):
    """The fraction of ``examples`` whose predicted ending index is the gold one."""
    if len(predictions) != len(examples) or not examples:
        raise ValueError(f'{len(predictions)} predictions for {len(examples)} examples; '
                         f'expected one per example, at least one')
    return float(np.mean([int(p) == e.label for p, e in zip(predictions, examples)]))
