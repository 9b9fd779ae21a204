"""Splits by passage: deterministic, no group on two sides, shares in examples, real files."""
import json
import os

import pytest

from gluonbert.tasks import get_task
from gluonbert.tasks.group_splits import (assign_groups, split_by_group, split_squad_file,
                                          split_table_file)

DATA = os.path.join(os.path.dirname(__file__), '..', '..', 'shared', 'data')
SQUAD = os.path.join(DATA, 'squad-1.1', 'dev-v1.1.json')
COSMOS = os.path.join(DATA, 'cosmos-qa', 'valid.csv')
ITEMS = [(f'group{g}', i) for g in range(40) for i in range(g % 5 + 1)]


def test_no_group_is_in_two_splits_and_every_item_is_in_one():
    splits = split_by_group(ITEMS, lambda item: item[0])
    groups = {name: {g for g, _ in items} for name, items in splits.items()}
    assert not groups['train'] & groups['dev'] and not groups['train'] & groups['test'] \
        and not groups['dev'] & groups['test']
    assert sorted(sum(splits.values(), [])) == sorted(ITEMS)
    assert splits['train'] == [item for item in ITEMS if item in splits['train']]  # file order


def test_the_split_is_deterministic_and_the_seed_changes_it():
    first = split_by_group(ITEMS, lambda item: item[0], seed=3)
    assert split_by_group(list(ITEMS), lambda item: item[0], seed=3) == first
    assert split_by_group(ITEMS, lambda item: item[0], seed=4) != first


def test_shares_follow_the_fractions_in_examples():
    sizes = {f'g{i}': 1 + i % 3 for i in range(300)}
    assignment = assign_groups(sizes, (('a', 0.5), ('b', 0.3), ('c', 0.2)))
    total = sum(sizes.values())
    share = {name: sum(n for g, n in sizes.items() if assignment[g] == name) / total
             for name in 'abc'}
    assert share == pytest.approx({'a': 0.5, 'b': 0.3, 'c': 0.2}, abs=0.01)


@pytest.mark.parametrize('sizes, fractions, message', [
    ({'a': 5, 'b': 1}, (('train', 0.5), ('dev', 0.3), ('test', 0.2)), 'would be empty'),
    ({'a': 1}, (('train', 0.5), ('dev', 0.6)), 'summing to 1'),
])
def test_impossible_splits_are_refused(sizes, fractions, message):
    with pytest.raises(ValueError, match=message):
        assign_groups(sizes, fractions)


@pytest.mark.skipif(not os.path.exists(SQUAD), reason='../shared/data/squad-1.1 is absent')
def test_squad_dev_splits_by_article_title_into_readable_files(tmp_path):
    counts = split_squad_file(SQUAD, tmp_path / 'squad')
    assert sum(counts.values()) == 10570
    task = get_task('question-answering')
    parts = {name: task.read(str(tmp_path / 'squad' / f'{name}.json'))
             for name in ('train', 'dev', 'test')}
    assert {name: len(examples) for name, examples in parts.items()} == counts
    titles = {name: {e.title for e in examples} for name, examples in parts.items()}
    assert len(titles['train'] | titles['dev'] | titles['test']) == 48
    assert sum(len(t) for t in titles.values()) == 48
    with open(tmp_path / 'squad' / 'test.json') as f:
        assert json.load(f)['version'] == '1.1'
    with pytest.raises(FileExistsError):  # an existing folder is never replaced
        split_squad_file(SQUAD, tmp_path / 'squad')


@pytest.mark.skipif(not os.path.exists(COSMOS), reason='../shared/data/cosmos-qa is absent')
def test_cosmos_qa_splits_by_context_into_readable_files(tmp_path):
    counts = split_table_file(COSMOS, tmp_path / 'cosmos', column='context')
    task = get_task('multiple-choice')
    parts = {name: task.read(str(tmp_path / 'cosmos' / f'{name}.csv'))
             for name in ('train', 'dev', 'test')}
    assert {name: len(examples) for name, examples in parts.items()} == counts
    assert sum(counts.values()) == 2985
    contexts = {name: {e.context for e in examples} for name, examples in parts.items()}
    assert sum(len(c) for c in contexts.values()) == 2445  # each context on one side
    assert sorted(e.qid for p in parts.values() for e in p) == sorted(
        e.qid for e in task.read(COSMOS))
