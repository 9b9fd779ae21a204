"""Deterministic splits that keep every passage on one side (SQuAD by article, Cosmos QA by
context), for data sets of which only one labelled file is at hand.

Groups are ordered by a seeded SHA-256 of their name (the same on every machine and Python,
unlike ``hash``); walking that order, each group joins the split whose share of the examples
the running count has reached. So no group is in two splits, shares follow ``fractions`` in
examples, and the same file, fractions and seed give the same split.
"""
import csv
import hashlib
import json
import os

from ..atomic import write_json
from ..json_file import read_json
from .readers import read_table

DEFAULT_FRACTIONS = (('train', 0.8), ('dev', 0.1), ('test', 0.1))


def assign_groups(sizes, fractions=DEFAULT_FRACTIONS, seed=0):
    """``{group: split name}`` for ``sizes`` (``{group: number of examples}``)."""
    names = [name for name, _ in fractions]
    shares = [share for _, share in fractions]
    if len(set(names)) != len(names) or any(s <= 0 for s in shares) \
            or abs(sum(shares) - 1) > 1e-9:
        raise ValueError(f'fractions={fractions}: expected distinct names with positive '
                         f'shares summing to 1')
    order = sorted(sizes, key=lambda group: hashlib.sha256(
        f'{seed}\0{group}'.encode('utf-8')).hexdigest())
    total, ends, running = sum(sizes.values()), [], 0.0
    for share in shares:
        running += share
        ends.append(running * total)
    assignment, count = {}, 0
    for group in order:
        assignment[group] = names[next(k for k, end in enumerate(ends)
                                       if count < end or k == len(ends) - 1)]
        count += sizes[group]
    empty = [name for name in names if name not in assignment.values()]
    if empty:
        raise ValueError(f'{len(sizes)} groups cannot fill the splits {names} with '
                         f'fractions={fractions}: {empty} would be empty')
    return assignment


def split_by_group(items, group_of, fractions=DEFAULT_FRACTIONS, seed=0):
    """``{split name: items}``, items in their original order, each group in one split."""
    sizes = {}
    for item in items:
        sizes[group_of(item)] = sizes.get(group_of(item), 0) + 1
    assignment = assign_groups(sizes, fractions, seed)
    splits = {name: [] for name, _ in fractions}
    for item in items:
        splits[assignment[group_of(item)]].append(item)
    return splits


def check_split_folder(folder):
    """Refuse ``folder`` for the split files unless it is new (or empty) and can be created."""
    from ..atomic import check_creatable
    if os.path.isdir(folder) and os.listdir(folder):
        raise FileExistsError(f'folder={os.fspath(folder)!r} exists and is not empty; expected '
                              f'a new folder for the split files')
    if not os.path.lexists(folder):
        check_creatable(folder)
    elif not os.path.isdir(folder):
        raise FileExistsError(f'folder={os.fspath(folder)!r} is a file; expected a new folder '
                              f'for the split files')


def _split_folder(folder, fractions, extension):
    """The atomic writer of a new folder of split files (``train.json``, ...); an existing
    folder, a previous split included, is never replaced (its files may have been edited)."""
    from ..atomic import atomic_folder
    check_split_folder(folder)
    names = [name + extension for name, _ in fractions]
    return atomic_folder(folder, names, names[0], 'split folder')


def split_squad_file(path, folder, fractions=DEFAULT_FRACTIONS, seed=0):
    """Write ``folder/<split>.json`` (SQuAD v1.1 files) from ``path``, split by article title
    and sized by questions; the folder is written whole or not at all. Returns ``{split
    name: number of questions}``."""
    dataset = _read_squad_json(path)
    sizes = {}
    for article in dataset['data']:
        questions = sum(len(paragraph['qas']) for paragraph in article['paragraphs'])
        sizes[article['title']] = sizes.get(article['title'], 0) + questions
    assignment = assign_groups(sizes, fractions, seed)
    counts = {name: 0 for name, _ in fractions}
    for title, size in sizes.items():
        counts[assignment[title]] += size
    with _split_folder(folder, fractions, '.json') as staging:
        for name, _ in fractions:
            chosen = [a for a in dataset['data'] if assignment[a['title']] == name]
            write_json(os.path.join(staging, f'{name}.json'), dict(dataset, data=chosen),
                       indent=None)
    return counts


def _read_squad_json(path):
    """The parsed SQuAD v1.1 file ``path``; ValueError naming it unless it holds titled
    articles of paragraphs with questions."""
    dataset = read_json(path, 'SQuAD v1.1 JSON (an object with a "data" list of articles)')
    articles = dataset.get('data')
    if not isinstance(articles, list) or not all(
            isinstance(a, dict) and 'title' in a and isinstance(a.get('paragraphs'), list)
            for a in articles):
        raise ValueError(f'{path}: expected SQuAD v1.1 JSON ({{"data": [{{"title": ..., '
                         f'"paragraphs": [...]}}, ...]}})')
    return dataset


def split_file(path, folder, by='context', fractions=DEFAULT_FRACTIONS, seed=0):
    """``split_squad_file`` for a ``.json`` file, else ``split_table_file`` grouped by
    ``by``."""
    if not os.path.isfile(path):
        raise FileNotFoundError(f'file={os.fspath(path)!r} not found')
    if os.path.splitext(path)[1].lower() == '.json':
        return split_squad_file(path, folder, fractions, seed)
    return split_table_file(path, folder, by, fractions, seed)


def split_fractions(dev, test):
    """``(('train', 1 - dev - test), ('dev', dev), ('test', test))`` without the empty
    ones; ValueError unless the training share is positive."""
    if dev + test >= 1:
        raise ValueError(f'--dev-fraction {dev} and --test-fraction {test} leave nothing to '
                         f'train on; expected a sum below 1')
    shares = (('train', 1 - dev - test), ('dev', dev), ('test', test))
    return tuple((name, share) for name, share in shares if share > 0)


def split_table_file(path, folder, column='context', fractions=DEFAULT_FRACTIONS, seed=0):
    """Write ``folder/<split><ext>`` from a CSV, TSV or JSON Lines file, rows grouped by
    ``column`` (Cosmos QA: the context); the folder is written whole or not at all. Returns
    ``{split name: number of rows}``."""
    rows = read_table(path)
    header = list(rows[0].fields) if rows else []
    if column not in header:
        raise ValueError(f'{path}: no column {column!r} to split by; the columns are {header}')
    splits = split_by_group(rows, lambda row: row.fields[column], fractions, seed)
    extension = os.path.splitext(path)[1].lower()
    with _split_folder(folder, fractions, extension) as staging:
        for name, chosen in splits.items():
            with open(os.path.join(staging, name + extension), 'w', encoding='utf-8',
                      newline='') as f:
                if extension in ('.jsonl', '.json', '.ndjson'):
                    f.writelines(json.dumps(row.fields) + '\n' for row in chosen)
                    continue
                table = [header] + [[row.fields[k] for k in header] for row in chosen]
                if extension == '.csv':
                    csv.writer(f).writerows(table)
                    continue
                # TSV as read: split at tabs, GLUE's raw quotes kept (csv would need to escape)
                f.writelines('\t'.join(fields) + '\n' for fields in table)
    return {name: len(chosen) for name, chosen in splits.items()}
