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


def _squad_file(path, titles):
    articles = [{'title': title, 'paragraphs': [{'context': f'{title} lies by the sea .', 'qas': [
        {'id': f'{title}-{q}', 'question': f'where does {title} lie ?',
         'answers': [{'text': 'by the sea', 'answer_start': len(title) + 6}]}
        for q in range(3)]}]} for title in titles]
    path.write_text(json.dumps({'version': '1.1', 'data': articles}))
    return str(path)


def test_split_command_writes_squad_files_by_title_and_counts_questions(tmp_path, capsys):
    from gluonbert.cli import main
    source = _squad_file(tmp_path / 'qa.json', [f'town{i}' for i in range(30)])
    assert main(['split', source, '--out', str(tmp_path / 'out'), '--dev-fraction', '0.2',
                 '--test-fraction', '0.2', '--seed', '1']) == 0
    task = get_task('question-answering')
    parts = {name: task.read(str(tmp_path / 'out' / f'{name}.json'))
             for name in ('train', 'dev', 'test')}
    assert capsys.readouterr().out.strip().endswith(
        ', '.join(f'{name} {len(parts[name])} questions' for name in parts))
    sizes = [len(p) for p in parts.values()]  # 3 questions a title, about 18 + 6 + 6 titles
    assert sum(sizes) == 90 and all(size % 3 == 0 and size > 0 for size in sizes)
    assert sizes[0] == max(sizes)
    titles = [{e.title for e in p} for p in parts.values()]
    assert len(set.union(*titles)) == sum(map(len, titles)) == 30


def test_split_command_groups_table_rows_by_the_column_and_can_leave_out_test(tmp_path):
    from gluonbert.cli import main
    rows = ['context\tquestion\tlabel'] + [f'story {i // 2}\tq{i}\t{i % 2}' for i in range(40)]
    (tmp_path / 'mc.tsv').write_text('\n'.join(rows) + '\n')
    assert main(['split', str(tmp_path / 'mc.tsv'), '--out', str(tmp_path / 'out'),
                 '--test-fraction', '0']) == 0
    assert sorted(os.listdir(tmp_path / 'out')) == ['dev.tsv', 'train.tsv']
    read = {name: (tmp_path / 'out' / f'{name}.tsv').read_text().splitlines()
            for name in ('train', 'dev')}
    assert all(lines[0] == rows[0] for lines in read.values())
    assert sorted(read['train'][1:] + read['dev'][1:]) == sorted(rows[1:])
    stories = [{line.split('\t')[0] for line in lines[1:]} for lines in read.values()]
    assert not stories[0] & stories[1] and len(read['dev']) - 1 == 4


def test_split_command_keeps_the_raw_quotes_of_a_glue_tsv(tmp_path):
    from gluonbert.cli import main
    rows = ['sentence1\tsentence2\tscore'] + [
        f'"He said {i // 2}" and left\tShe said "{i}\t{i % 5}.0' for i in range(40)]
    (tmp_path / 'sts.tsv').write_text('\n'.join(rows) + '\n')
    assert main(['split', str(tmp_path / 'sts.tsv'), '--out', str(tmp_path / 'out'),
                 '--by', 'sentence1']) == 0
    read = [line for name in ('train', 'dev', 'test')
            for line in (tmp_path / 'out' / f'{name}.tsv').read_text().splitlines()[1:]]
    assert sorted(read) == sorted(rows[1:])  # every row as it was, its quotes raw


@pytest.mark.parametrize('args, message', [
    (['--by', 'nope'], "no column 'nope' to split by"),
    (['--dev-fraction', '0.5', '--test-fraction', '0.5'], 'leave nothing to train on'),
])
def test_split_command_refuses_bad_options_in_one_line(tmp_path, capsys, args, message):
    from gluonbert.cli import main
    (tmp_path / 'mc.csv').write_text('context,label\n' + 'a,0\nb,1\nc,0\n' * 5)
    assert main(['split', str(tmp_path / 'mc.csv'), '--out', str(tmp_path / 'o')] + args) == 2
    err = capsys.readouterr().err
    assert message in err and err.count('\n') == 1 and not (tmp_path / 'o').exists()


def test_split_command_never_replaces_a_folder_and_refuses_json_that_is_not_squad(tmp_path,
                                                                                  capsys):
    from gluonbert.cli import main
    source = _squad_file(tmp_path / 'qa.json', [f't{i}' for i in range(10)])
    (tmp_path / 'out').mkdir()
    (tmp_path / 'out' / 'notes.txt').write_text('mine')
    assert main(['split', source, '--out', str(tmp_path / 'out')]) == 2
    assert os.listdir(tmp_path / 'out') == ['notes.txt']
    (tmp_path / 'list.json').write_text('[1, 2]')
    assert main(['split', str(tmp_path / 'list.json'), '--out', str(tmp_path / 'o2')]) == 2
    assert 'expected SQuAD v1.1 JSON' in capsys.readouterr().err
