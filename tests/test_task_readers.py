"""Task files: CSV, TSV and JSON Lines columns, CoNLL sentences, and the errors users meet."""
import pytest

from gluonbert.tasks import TaskDataError, get_task
from gluonbert.tasks.readers import read_conll, read_table


def write(path, text, mode='w'):
    if isinstance(text, bytes):
        path.write_bytes(text)
    else:
        path.write_text(text, encoding='utf-8')
    return str(path)


def test_tsv_keeps_raw_quotes_and_strips_texts(tmp_path):
    path = write(tmp_path / 'd.tsv', 'sentence\tlabel\n"so" he said \t1\nplain "x\t0\n')
    examples = get_task('classification').read(path)
    assert [e.texts for e in examples] == [('"so" he said',), ('plain "x',)]
    assert [e.label for e in examples] == ['1', '0']
    assert examples[1].where == f'{path}, line 3'


def test_tsv_with_quoting_asked_reads_quoted_tabs(tmp_path):
    path = write(tmp_path / 'd.tsv', 'text\tlabel\n"a\tb"\tpos\n')
    assert read_table(path, quoting=True)[0].fields == {'text': 'a\tb', 'label': 'pos'}


def test_csv_follows_quoting_rules(tmp_path):
    path = write(tmp_path / 'd.csv', 'premise,hypothesis,label\n"a, b","say ""hi""",yes\n')
    example = get_task('classification').read(path)[0]
    assert example.texts == ('a, b', 'say "hi"') and example.label == 'yes'


def test_json_lines_with_chosen_columns(tmp_path):
    path = write(tmp_path / 'd.jsonl', '{"q": "a b", "r": "c", "y": 2.5}\n\n{"q": "d", "r": "e", '
                                       '"y": 1}\n')
    examples = get_task('regression').read(path, text_columns=['q', 'r'], label_column='y')
    assert [(e.texts, e.label) for e in examples] == [(('a b', 'c'), 2.5), (('d', 'e'), 1.0)]


def test_missing_column_names_the_columns_there_are(tmp_path):
    path = write(tmp_path / 'd.tsv', 'sentence\tlabel\nx\t1\n')
    with pytest.raises(TaskDataError, match=r"line 2: no column 'text' \(--text-columns\); "
                                            r"the columns are 'sentence', 'label'"):
        get_task('classification').read(path, text_columns=['text'])


def test_unguessable_text_columns_ask_for_the_flag(tmp_path):
    path = write(tmp_path / 'd.tsv', 'a\tb\tlabel\nx\ty\t1\n')
    with pytest.raises(TaskDataError, match='choose with --text-columns'):
        get_task('classification').read(path)


def test_row_with_another_field_count_names_its_line(tmp_path):
    path = write(tmp_path / 'd.tsv', 'sentence\tlabel\nx\t1\ny\t0\textra\n')
    with pytest.raises(TaskDataError, match=r'd.tsv, line 3: 3 fields, the header has 2'):
        get_task('classification').read(path)


def test_non_utf8_file_is_one_error_naming_the_byte(tmp_path):
    path = write(tmp_path / 'd.tsv', b'sentence\tlabel\ncaf\xe9\t1\n')
    with pytest.raises(TaskDataError, match=r"not UTF-8 \(byte 18 is b'\\xe9'\)"):
        get_task('classification').read(path)


def test_empty_split_is_refused(tmp_path):
    path = write(tmp_path / 'd.tsv', 'sentence\tlabel\n')
    with pytest.raises(TaskDataError, match='holds no example'):
        get_task('classification').read(path)


def test_score_that_is_not_a_number_names_its_line(tmp_path):
    path = write(tmp_path / 'd.tsv', 'sentence1\tsentence2\tscore\na\tb\t4.2\nc\td\thigh\n')
    with pytest.raises(TaskDataError, match="line 3: label 'high' in column 'score' is not a "
                                            "finite number"):
        get_task('regression').read(path, label_column='score')


def test_unknown_label_at_test_time_names_the_line_and_the_training_labels(tmp_path):
    from gluonbert.data.tokenization import WhitespaceTokenizer
    from gluonbert.data.vocab import Vocab
    task = get_task('classification')
    train = task.read(write(tmp_path / 't.tsv', 'sentence\tlabel\na\tpos\nb\tneg\n'))
    test = task.read(write(tmp_path / 'e.tsv', 'sentence\tlabel\na\tpos\nb\tmixed\n'))
    vocab = Vocab(['a', 'b'], reserved_tokens=['<pad>', '<cls>', '<sep>'])
    with pytest.raises(TaskDataError, match=r"e.tsv, line 3: label 'mixed' is not one of the "
                                            r"training labels \['neg', 'pos'\]"):
        task.encode(test, WhitespaceTokenizer(), vocab, 8, task.labels_from(train))


def test_conll_word_first_tag_last_docstart_and_blank_lines(tmp_path):
    path = write(tmp_path / 'd.conll', '-DOCSTART- -X- -X- O\n\nEU NNP B-NP B-ORG\n'
                                       'rejects VBZ B-VP O\n\t\n  \nPeter NNP B-NP B-PER\n'
                                       'Blackburn\tNNP\tI-NP\tI-PER\n')
    sentences = read_conll(path)
    assert [s.words for s in sentences] == [['EU', 'rejects'], ['Peter', 'Blackburn']]
    assert [s.tags for s in sentences] == [['B-ORG', 'O'], ['B-PER', 'I-PER']]
    assert sentences[1].where == f'{path}, line 7'


def test_conll_line_with_one_column_is_refused(tmp_path):
    path = write(tmp_path / 'd.conll', 'EU B-ORG\nrejects\n')
    with pytest.raises(TaskDataError, match=r"line 2: 'rejects' has one column"):
        read_conll(path)


def test_conll_tag_unseen_in_training_names_its_own_line_not_the_sentence_start(tmp_path):
    from gluonbert.data.tokenization import WhitespaceTokenizer
    from gluonbert.data.vocab import Vocab
    task = get_task('token-classification')
    labels = task.labels_from(read_conll(write(tmp_path / 't.conll', 'a O\nb B-X\n')))
    test = read_conll(write(tmp_path / 'e.conll', 'a O\n\na O\nb O\nb B-Y\n'))
    message = rf"^{tmp_path}/e.conll, line 5: tag 'B-Y' is not one of the training tags"
    with pytest.raises(TaskDataError, match=message):
        task.check_gold(test, labels)
    vocab = Vocab(['a', 'b'], reserved_tokens=['<pad>', '<cls>', '<sep>'])
    with pytest.raises(TaskDataError, match=message):
        task.encode(test, WhitespaceTokenizer(), vocab, 8, labels)


def test_label_sets_come_from_the_training_file(tmp_path):
    path = write(tmp_path / 'd.conll', 'a B-X\nb O\n\nc I-Y\n')
    assert get_task('token-classification').labels_from(read_conll(path)) == [
        'B-X', 'B-Y', 'I-X', 'I-Y', 'O']  # both halves of each entity type
    path = write(tmp_path / 'd.tsv', 'sentence\tlabel\nx\tz\ny\ta\n')
    task = get_task('classification')
    assert task.labels_from(task.read(path)) == ['a', 'z']


@pytest.mark.parametrize('text, shown', [('null', 'null, a JSON null'),
                                         ('["a", "list"]', '["a", "list"], a JSON list'),
                                         ('3', '3, a JSON integer')])
def test_json_lines_text_that_is_not_a_string_names_file_line_and_field(tmp_path, text, shown):
    path = write(tmp_path / 'd.jsonl', '{"text": "a b", "label": "x"}\n'
                                       f'{{"text": {text}, "label": "y"}}\n')
    with pytest.raises(TaskDataError, match=rf"^{path}, line 2: field 'text' is "
                       rf"{shown.replace('[', '.').replace(']', '.')} \(--text-columns\); "
                       rf"expected a text \(a JSON string\)$"):
        get_task('classification').read(path)


@pytest.mark.parametrize('label, kind', [('1.5', 'number'), ('true', 'true/false'),
                                         ('1', 'integer')])
def test_json_lines_label_of_another_type_than_the_columns_is_refused(tmp_path, label, kind):
    path = write(tmp_path / 'd.jsonl', '{"text": "a", "label": "pos"}\n\n'
                                       f'{{"text": "b", "label": {label}}}\n')
    with pytest.raises(TaskDataError, match=rf"^{path}, line 3: field 'label' is {label}, a "
                       rf"JSON {kind} \(--label-column\); the column's labels are JSON string "
                       rf"values \(from {path}, line 1\)$"):
        get_task('classification').read(path)


@pytest.mark.parametrize('task, label', [('classification', 'null'),
                                         ('regression', 'null'), ('regression', '[1]')])
def test_json_lines_null_or_list_label_is_refused(tmp_path, task, label):
    path = write(tmp_path / 'd.jsonl', f'{{"text": "a", "label": {label}}}\n')
    with pytest.raises(TaskDataError, match=rf"line 1: field 'label' is .*, a JSON "
                       rf"(null|list) \(--label-column\); expected a label$"):
        get_task(task).read(path)


def test_json_lines_scores_may_mix_integers_and_numbers_but_not_true(tmp_path):
    path = write(tmp_path / 'd.jsonl', '{"text": "a", "label": 1}\n{"text": "b", "label": 2.5}\n')
    assert [e.label for e in get_task('regression').read(path)] == [1.0, 2.5]
    path = write(tmp_path / 'e.jsonl', '{"text": "a", "label": true}\n')
    with pytest.raises(TaskDataError, match="line 1: label True in column 'label' is not a "
                                            "finite number"):
        get_task('regression').read(path)


def test_json_lines_choice_text_that_is_not_a_string_is_refused(tmp_path):
    path = write(tmp_path / 'd.jsonl', '{"context": "c", "question": null, "answer0": "a", '
                                       '"answer1": "b", "label": 0}\n')
    with pytest.raises(TaskDataError, match=r"line 1: field 'question' is null, a JSON null"):
        get_task('multiple-choice').read(path)


def test_an_empty_multiple_choice_ending_is_refused_naming_line_and_column(tmp_path):
    path = write(tmp_path / 'd.csv', 'context,question,answer0,answer1,label\n'
                                     'c,q,a,b,0\nc,q,a, ,1\n')
    with pytest.raises(TaskDataError, match=r"d.csv, line 3: ending 'answer1' is empty; "
                                            r"expected the text of every ending$"):
        get_task('multiple-choice').read(path)
