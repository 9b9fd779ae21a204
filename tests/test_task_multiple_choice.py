"""Multiple choice: Cosmos QA / SWAG readers, the (batch, choices, seq) encoding, accuracy, and
a real training step on the multiple-choice head."""
import os

import mxnet as mx
import numpy as np
import pytest
from task_training import fine_tune, tiny_task_head

from gluonbert.data.vocab import Vocab
from gluonbert.tasks import TaskDataError, get_task
from gluonbert.tasks.choices import ChoiceExample, accuracy, encode_choices, read_choices

COSMOS = os.path.join(os.path.dirname(__file__), '..', '..', 'shared', 'data', 'cosmos-qa',
                      'valid.csv')
SWAG_CSV = ('video-id,fold-ind,startphrase,sent1,sent2,gold-source,ending0,ending1,ending2,'
            'ending3,label\n'
            'v1,0,"He sits, then","He sits down.",Then he,gold,stands up.,eats.,runs.,flies.,1\n'
            'v2,1,x,A cat sleeps.,It,gold,wakes.,barks.,sings.,"talks, loudly.",0\n')


def whitespace(text):
    return text.lower().split()


def vocab_of(*texts):
    return Vocab([t for text in texts for t in whitespace(text)],
                 reserved_tokens=['<pad>', '<cls>', '<sep>'])


def test_swag_csv_reads_sent1_as_context_and_sent2_as_the_start_of_each_ending(tmp_path):
    path = tmp_path / 'swag.csv'
    path.write_text(SWAG_CSV)
    first, second = read_choices(str(path))
    assert (first.context, first.question, first.label) == ('He sits down.', 'Then he', 1)
    assert first.endings == ['stands up.', 'eats.', 'runs.', 'flies.']
    assert second.endings[3] == 'talks, loudly.'


def test_columns_can_be_chosen_and_tsv_and_json_lines_read(tmp_path):
    tsv = tmp_path / 'mine.tsv'
    tsv.write_text('story\tq\ta\tb\tgold\n"It rained\tWhy?\tclouds\tsun\t1\n')
    (example,) = read_choices(str(tsv), ['story', 'q', 'a', 'b'], 'gold')
    assert (example.context, example.endings, example.label) == ('"It rained', ['clouds',
                                                                                'sun'], 1)
    jsonl = tmp_path / 'mine.jsonl'
    jsonl.write_text('{"story": "It rained", "a": "clouds", "b": "sun", "gold": 0}\n')
    (example,) = read_choices(str(jsonl), ['story', '', 'a', 'b'], 'gold')
    assert (example.question, example.label) == ('', 0)


@pytest.mark.parametrize('content, columns, message', [
    ('context,question,answer0,answer1,label\nc,q,a,b,2\n', None,
     r"line 2: label='2'; expected the index of the right ending, 0 to 1"),
    ('context,question,answer0,answer1,label\nc,q,a,b,x\n', None, r"label='x'"),
    ('story,a,b,label\nc,a,b,0\n', None, r'neither Cosmos QA'),
    ('context,question,answer0,answer1,label\nc,q,a,b,0\n', ['context', 'question', 'answer0',
                                                              'answer9'],
     r"line 2: no column 'answer9' \(--text-columns\)"),
])
def test_bad_files_are_one_clear_error(tmp_path, content, columns, message):
    path = tmp_path / 'bad.csv'
    path.write_text(content)
    with pytest.raises(TaskDataError, match=message):
        read_choices(str(path), columns)


def test_a_json_lines_row_without_the_label_others_have_is_refused_naming_it(tmp_path):
    path = tmp_path / 'some.jsonl'
    path.write_text('{"context": "c", "answer0": "a", "answer1": "b"}\n'
                    '{"context": "c", "answer0": "a", "answer1": "b", "label": 1}\n')
    with pytest.raises(TaskDataError, match=r"some.jsonl, line 1: no column 'label' "
                                            r"\(--label-column\)"):
        read_choices(str(path), ['context', '', 'answer0', 'answer1'])


def test_dev_and_test_examples_without_labels_are_refused_before_training_naming_the_line(
        tmp_path):
    path = tmp_path / 'dev.csv'
    path.write_text('id,context,question,answer0,answer1\nq1,c,q,a,b\n')
    task = get_task('multiple-choice')
    examples = task.read(str(path))
    with pytest.raises(TaskDataError, match=rf'^{path}, line 2: no label; this split needs '):
        task.check_gold(examples, None)
    with pytest.raises(TaskDataError, match=rf'^{path}, line 2: no label'):
        task.labels_from(examples)


def test_each_choice_is_a_pair_of_context_and_question_plus_ending():
    example = ChoiceExample('the cat sat', 'why', ['it was tired', 'no'], 0)
    vocab = vocab_of('the cat sat why it was tired no')
    features = encode_choices([example], whitespace, vocab, 9)
    assert features.tokens.shape == features.segments.shape == (1, 2, 9)
    assert features.valid_lens.tolist() == [[9, 8]]
    # 'the cat sat' + 'why it was tired' = 7 > 9 - 3: the longer side loses its last token
    assert vocab.to_tokens(features.tokens[0, 0].tolist()) == [
        '<cls>', 'the', 'cat', 'sat', '<sep>', 'why', 'it', 'was', '<sep>']
    assert features.segments[0, 0].tolist() == [0] * 5 + [1] * 4
    assert vocab.to_tokens(features.tokens[0, 1].tolist())[:6] == [
        '<cls>', 'the', 'cat', 'sat', '<sep>', 'why']
    assert features.labels.tolist() == [0]


def test_examples_with_different_numbers_of_endings_are_refused():
    examples = [ChoiceExample('a', '', ['b', 'c'], 0), ChoiceExample('a', '', ['b'], 0)]
    with pytest.raises(TaskDataError, match=r'examples have \[1, 2\] endings'):
        encode_choices(examples, whitespace, vocab_of('a b c'), 8)


def test_accuracy_and_the_majority_baseline():
    examples = [ChoiceExample('c', '', ['a', 'b', 'c'], label) for label in (0, 2, 2, 1)]
    assert accuracy([0, 2, 1, 1], examples) == 0.75
    task = get_task('multiple-choice')
    assert task.postprocess(np.array([[0.1, 0.9, 0], [3, 1, 2]]), None, examples[:2]) == [1, 0]
    assert task.baseline(examples[1:3], examples) == {'accuracy': 0.5}


@pytest.mark.skipif(not os.path.exists(COSMOS), reason='../shared/data/cosmos-qa is absent')
def test_the_cosmos_qa_dev_file_reads_as_its_readme_counts():
    examples = read_choices(COSMOS)
    assert len(examples) == 2985 and len({e.qid for e in examples}) == 2985
    assert len({e.context for e in examples}) == 2445
    assert np.bincount([e.label for e in examples]).tolist() == [744, 729, 761, 751]
    assert all(len(e.endings) == 4 and e.question for e in examples)


def test_the_objective_trains_the_multiple_choice_head():
    task = get_task('multiple-choice')
    texts = ['the sky is blue', 'grass is green', 'snow is white', 'coal is black']
    examples = [ChoiceExample(text, 'what colour', ['blue', 'green', 'white', 'black'], i)
                for i, text in enumerate(texts)]
    vocab = vocab_of(*texts, 'what colour')
    features = task.encode(examples, whitespace, vocab, 16, None)
    head = tiny_task_head(task, vocab, 16)
    losses, _ = fine_tune(task, head, features, 40)
    assert losses[-1] < losses[0] / 3
    outputs = task.predict(head, features, [mx.cpu()])
    assert task.metrics(task.postprocess(outputs, features, examples), examples) == {
        'accuracy': 1.0}


@pytest.mark.skipif(not os.path.exists(COSMOS), reason='../shared/data/cosmos-qa is absent')
def test_fine_tuning_on_real_cosmos_qa_questions_lowers_the_loss():
    task = get_task('multiple-choice')
    examples = read_choices(COSMOS)[:8]
    vocab = vocab_of(*(' '.join([e.context, e.question] + e.endings) for e in examples))
    features = task.encode(examples, whitespace, vocab, 64, None)
    assert features.tokens.shape[:2] == (8, 4)
    losses, evaluations = fine_tune(task, tiny_task_head(task, vocab, 64), features, 40,
                                    examples=examples)
    assert losses[-1] < losses[0] / 2
    assert [e['update'] for e in evaluations] == [10, 20, 30, 40]
    assert evaluations[-1]['accuracy'] == 1.0  # the eight questions it trained on
