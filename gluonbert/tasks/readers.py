"""Reading labelled files: tables (CSV, TSV, JSON Lines) and CoNLL token files.

Every reader returns rows with the line they came from, and every error names the file and
the line. TSV is split on tabs with no quote handling (GLUE's files hold raw double quotes:
STS-B has hundreds) unless ``quoting=True``; CSV follows the CSV quoting rules. Files are
read as UTF-8; a file that is not is one error naming it and the byte offset.
"""
import csv
import json
import os
from dataclasses import dataclass

from ..json_file import json_type
from .base import TaskDataError

FORMATS = ('csv', 'tsv', 'jsonl')
_EXTENSIONS = {'.csv': 'csv', '.tsv': 'tsv', '.txt': 'tsv', '.jsonl': 'jsonl', '.json': 'jsonl',
               '.ndjson': 'jsonl'}


@dataclass
class Row:
    """One record of a table: its fields by column name and where it was read."""
    fields: dict
    where: str  # 'file, line N'


def table_format(path, fmt=None):
    """The format of ``path``: ``fmt`` when given, else from its extension."""
    if fmt is not None:
        if fmt not in FORMATS:
            raise ValueError(f'format={fmt!r}; expected one of {FORMATS}')
        return fmt
    found = _EXTENSIONS.get(os.path.splitext(path)[1].lower())
    if found is None:
        raise TaskDataError(f'{path}: cannot tell the format from the extension; expected '
                            f'one of {sorted(_EXTENSIONS)} or an explicit format '
                            f'({", ".join(FORMATS)})')
    return found


def read_text(path):
    """The text of ``path`` (UTF-8, a leading BOM dropped); clear errors for what is not."""
    if not os.path.isfile(path):
        raise TaskDataError(f'{path}: no such file')
    with open(path, 'rb') as f:
        data = f.read()
    try:
        text = data.decode('utf-8')
    except UnicodeDecodeError as error:
        bad = data[error.start:error.start + 1]
        raise TaskDataError(f'{path}: not UTF-8 (byte {error.start} is {bad!r}); expected a '
                            f'UTF-8 text file') from None
    return text[1:] if text.startswith('\ufeff') else text


def read_table(path, fmt=None, quoting=False):
    """The rows of a CSV, TSV or JSON Lines file, fields by column name (the header line of
    CSV and TSV files, the keys of JSON objects)."""
    fmt = table_format(path, fmt)
    text = read_text(path)
    if fmt == 'jsonl':
        return _json_lines(path, text)
    lines = text.split('\n')
    if lines and lines[-1] == '':
        lines.pop()
    if fmt == 'csv' or quoting:
        records = _quoted_records(path, lines, ',' if fmt == 'csv' else '\t')
    else:
        records = [(number, line.rstrip('\r').split('\t')) for number, line in
                   enumerate(lines, 1)]
    if not records:
        raise TaskDataError(f'{path}: empty file; expected a header line and rows')
    (_, header), rows = records[0], []
    for number, values in records[1:]:
        if values == [''] or not any(v.strip() for v in values):
            continue
        if len(values) != len(header):
            raise TaskDataError(f'{path}, line {number}: {len(values)} fields, the header has '
                                f'{len(header)} ({fmt.upper()}' +
                                (', no quote handling' if fmt == 'tsv' and not quoting else '')
                                + ')')
        rows.append(Row(dict(zip(header, values)), f'{path}, line {number}'))
    return rows


def _quoted_records(path, lines, delimiter):
    """``(line number, fields)`` of quoted records, which may span lines."""
    records = []
    reader = csv.reader((line + '\n' for line in lines), delimiter=delimiter, strict=True)
    try:
        start = 1
        for values in reader:
            records.append((start, [v.rstrip('\r') for v in values]))
            start = reader.line_num + 1
    except csv.Error as error:
        raise TaskDataError(f'{path}, line {reader.line_num}: {error}') from None
    return records


def _json_lines(path, text):
    rows = []
    for number, line in enumerate(text.split('\n'), 1):
        if not line.strip():
            continue
        try:
            value = json.loads(line)
        except json.JSONDecodeError as error:
            raise TaskDataError(f'{path}, line {number}: not JSON ({error.msg})') from None
        if not isinstance(value, dict):
            raise TaskDataError(f'{path}, line {number}: a JSON {type(value).__name__}; '
                                f'expected one object per line')
        rows.append(Row(value, f'{path}, line {number}'))
    return rows


def field(row, name, option):
    """The field ``name`` of ``row``; TaskDataError naming the option that chose it and the
    columns the row has."""
    if name not in row.fields:
        raise TaskDataError(f'{row.where}: no column {name!r} ({option}); the columns are '
                            f'{", ".join(map(repr, row.fields))}')
    return row.fields[name]


def text_field(row, name, option):
    """The text in field ``name`` of ``row``: a string, never a JSON null, number or list
    turned into one ("None", "['a', 'list']"); TaskDataError naming the line and field."""
    value = field(row, name, option)
    if not isinstance(value, str):
        raise TaskDataError(f'{row.where}: field {name!r} is {json.dumps(value)}, a JSON '
                            f'{json_type(value)} ({option}); expected a text (a JSON string)')
    return value


def check_label_types(rows, name, numbers=False):
    """TaskDataError naming the line and field where the label column ``name`` holds a null,
    a list or an object, or a value of another JSON type than the column's first (JSON
    Lines: ``1.5`` or ``true`` among string labels would become classes of their own).
    ``numbers``: integers and numbers are one type (scores)."""
    first = None
    for row in rows:
        if name not in row.fields:
            continue
        value = row.fields[name]
        kind = json_type(value)
        if numbers and kind == 'integer':
            kind = 'number'
        if kind in ('null', 'list', 'object'):
            raise TaskDataError(f'{row.where}: field {name!r} is {json.dumps(value)}, a JSON '
                                f'{kind} (--label-column); expected a label')
        if first is None:
            first = kind, row.where
        elif kind != first[0]:
            raise TaskDataError(f'{row.where}: field {name!r} is {json.dumps(value)}, a JSON '
                                f'{kind} (--label-column); the column\'s labels are JSON '
                                f'{first[0]} values (from {first[1]})')


@dataclass
class TaggedSentence:
    """One sentence of a CoNLL file: its words, their tags, where it starts, and the file and
    line number of each word (None for served text)."""
    words: list
    tags: list
    where: str
    path: str = None
    lines: list = None

    def word_where(self, index):
        """Where word ``index`` was read ('file, line N'), else where the sentence starts."""
        if self.lines is None:
            return self.where
        return f'{self.path}, line {self.lines[index]}'


def read_conll(path):
    """The sentences of a CoNLL file: the word in the first column, the tag in the last
    (POS and chunk columns between are ignored), tab or space separated; ``-DOCSTART-`` lines
    skipped; sentences end at blank or whitespace-only lines."""
    sentences, words, tags, lines = [], [], [], []
    for number, line in enumerate(read_text(path).split('\n'), 1):
        fields = line.split()
        if not fields or fields[0] == '-DOCSTART-':
            if words:
                sentences.append(_sentence(path, words, tags, lines))
            words, tags, lines = [], [], []
            continue
        if len(fields) < 2:
            raise TaskDataError(f'{path}, line {number}: {line.strip()!r} has one column; '
                                f'expected the word first and its tag last')
        words.append(fields[0])
        tags.append(fields[-1])
        lines.append(number)
    if words:
        sentences.append(_sentence(path, words, tags, lines))
    return sentences


def _sentence(path, words, tags, lines):
    return TaggedSentence(words, tags, f'{path}, line {lines[0]}', path, lines)
