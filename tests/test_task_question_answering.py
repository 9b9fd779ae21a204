"""Question answering: windows over long contexts, character offsets through WordPiece, the
n-best span search, the SQuAD reader, and a real fine-tuning step on the span head."""
import collections
import json
import os

import mxnet as mx
import numpy as np
import pytest
from task_training import fine_tune, tiny_task_head

from gluonbert.data.wordpiece import WordPieceTokenizer, vocab_from_bert_tokens
from gluonbert.tasks import TaskDataError, get_task
from gluonbert.tasks.qa_answers import best_answers, nbest_answers
from gluonbert.tasks.question_answering import QuestionAnswering
from gluonbert.tasks.qa_windows import (QAExample, encode_examples, read_squad, token_offsets,
                                        window_starts)

SPECIALS = ['[PAD]', '[UNK]', '[CLS]', '[SEP]', '[MASK]']
WORDS = ['un', '##aff', '##able', 'village', '##s', ',', 'in', '1895', '.', '(', '-', '1943',
         ')', 'cafe', 'uber', '##see', 'golden', 'where', 'when']
SQUAD = os.path.join(os.path.dirname(__file__), '..', '..', 'shared', 'data', 'squad-1.1',
                     'dev-v1.1.json')
CONTEXT = 'Unaffable villages, in (1895-1943). Caf\u00e9 \u00dcbersee golden'


def tokenizer_and_vocab(words=WORDS, **options):
    vocab = vocab_from_bert_tokens(SPECIALS + list(words))
    return WordPieceTokenizer(vocab, **options), vocab


def example(answers=(), question='in villages', context=CONTEXT, qid='q1'):
    return QAExample(qid, question, context, list(answers))


def test_doc_stride_is_the_step_between_window_starts():
    assert window_starts(10, 4, 3) == [0, 3, 6]
    assert window_starts(10, 4, 4) == [0, 4, 8]
    assert window_starts(4, 4, 1) == [0]
    with pytest.raises(ValueError, match=r'doc_stride=5: expected 1 to 4'):
        window_starts(10, 4, 5)


def test_every_context_token_lands_in_a_window():
    for num_tokens in range(0, 30):
        for window_len in range(1, 8):
            for stride in range(1, window_len + 1):
                covered = np.zeros(num_tokens, dtype=bool)
                for start in window_starts(num_tokens, window_len, stride):
                    covered[start:start + window_len] = True
                assert covered.all(), (num_tokens, window_len, stride)


def test_tokens_keep_the_raw_characters_they_came_from():
    tokenizer, _ = tokenizer_and_vocab()
    tokens, starts, ends = token_offsets(CONTEXT, tokenizer)
    assert [(t, CONTEXT[s:e]) for t, s, e in zip(tokens, starts, ends)] == [
        ('un', 'Un'), ('##aff', 'aff'), ('##able', 'able'), ('village', 'village'),
        ('##s', 's'), (',', ','), ('in', 'in'), ('(', '('), ('1895', '1895'), ('-', '-'),
        ('1943', '1943'), (')', ')'), ('.', '.'), ('cafe', 'Caf\u00e9'),
        ('uber', '\u00dcber'), ('##see', 'see'), ('golden', 'golden')]


def test_an_unknown_word_spans_its_whole_raw_word():
    tokenizer, _ = tokenizer_and_vocab()
    tokens, starts, ends = token_offsets('in zzz, 1895', tokenizer)
    assert [(t, s, e) for t, s, e in zip(tokens, starts, ends)] == [
        ('in', 0, 2), ('<unk>', 3, 6), (',', 6, 7), ('1895', 8, 12)]


def test_windows_of_a_hand_made_example_hold_the_answer_at_the_right_positions():
    tokenizer, vocab = tokenizer_and_vocab()
    # question: 'in', 'village' (truncated to 2 tokens) -> windows of 12 - 3 - 2 = 7 tokens,
    # starting every 3 tokens over the 17 context tokens: 0, 3, 6, 9, 12
    features = encode_examples([example([('villages', 10)])], tokenizer, vocab, 12,
                               doc_stride=3, max_query_len=2)
    assert len(features) == 5 and features.example_index.tolist() == [0] * 5
    first = vocab.to_tokens(features.tokens[0].tolist())
    assert first == ['<cls>', 'in', 'village', '<sep>', 'un', '##aff', '##able', 'village',
                     '##s', ',', 'in', '<sep>']
    assert features.segments[0].tolist() == [0] * 4 + [1] * 8
    assert features.valid_lens.tolist() == [12, 12, 12, 12, 10]
    last = vocab.to_tokens(features.tokens[4].tolist())
    assert last[4:10] == ['.', 'cafe', 'uber', '##see', 'golden', '<sep>']
    # 'villages' is context tokens 3-4: positions 7-8 in window 0 (context starts at 4),
    # 4-5 in window 1 (starting at token 3); later windows hold no answer: <cls>
    assert features.labels.tolist() == [[7, 8], [4, 5], [0, 0], [0, 0], [0, 0]]
    starts, ends = features.extra['char_starts'], features.extra['char_ends']
    assert CONTEXT[starts[1, 4]:ends[1, 5]] == 'villages'
    assert (starts[:, :4] == -1).all() and starts[4, 9] == -1  # question, specials, <sep>


def test_every_short_span_is_searched_in_exactly_one_window():
    tokenizer, vocab = tokenizer_and_vocab()
    features = encode_examples([example()], tokenizer, vocab, 12, doc_stride=3,
                               max_query_len=2)
    zeros = np.zeros(features.tokens.shape)
    found = [(a['start_char'], a['end_char']) for a in
             nbest_answers(features, zeros, zeros, [CONTEXT], n_best=1000, max_answer_len=4)[0]]
    _, starts, ends = token_offsets(CONTEXT, tokenizer)
    # spans of 1 to 4 of the 17 context tokens; every window holds 7 consecutive tokens
    expected = {(starts[i], ends[j]) for i in range(17) for j in range(i, min(i + 4, 17))}
    assert len(found) == len(set(found)) and set(found) == expected


def test_an_answer_not_in_its_context_is_refused():
    tokenizer, vocab = tokenizer_and_vocab()
    with pytest.raises(TaskDataError, match=r"question q1: answer 'gold' with answer_start=50 "
                                            r"is not in its context \(found 'olde' there\)"):
        encode_examples([example([('gold', 50)])], tokenizer, vocab, 32)


def test_a_gold_answer_inside_a_token_is_reported_and_labelled_by_the_covering_token():
    tokenizer, vocab = tokenizer_and_vocab()
    features = encode_examples([example([('gold', 49), ('1895', 24)])], tokenizer, vocab, 32)
    assert features.extra['mismatches'] == [('q1', 'gold', 'golden')]
    assert features.extra['answers_checked'] == 2
    golden = features.labels[0, 0]
    assert vocab.to_tokens(int(features.tokens[0, golden])) == 'golden'


def test_an_answer_longer_than_the_windows_hold_is_reported():
    tokenizer, vocab = tokenizer_and_vocab()
    # windows 0-6, 3-9, 6-12, ...: tokens 5-10 lie whole in none, 4-9 in window 1
    features = encode_examples([example([(', in (1895-1943', 18)]),
                                example([('s, in (1895-', 17)], qid='q2')],
                               tokenizer, vocab, 12, doc_stride=3, max_query_len=2)
    assert features.extra['unplaced'] == ['q1']
    assert (features.labels[features.example_index == 0] == 0).all()


def test_window_settings_that_would_skip_context_are_refused():
    tokenizer, vocab = tokenizer_and_vocab()
    with pytest.raises(ValueError, match=r'doc_stride=10: expected 1 to 7'):
        encode_examples([example()], tokenizer, vocab, 12, doc_stride=10, max_query_len=2)
    with pytest.raises(ValueError, match='max_len=6, max_query_len=3'):
        encode_examples([example()], tokenizer, vocab, 6, doc_stride=1, max_query_len=3)


def logits_for(features, spans):
    """Start/end logits: 0 everywhere, ``(row, position, value)`` set in ``spans``."""
    start, end = np.zeros(features.tokens.shape), np.zeros(features.tokens.shape)
    for row, s, e, value in spans:
        start[row, s] += value
        end[row, e] += value
    return start, end


def test_nbest_ranks_spans_by_start_plus_end_logits_and_recovers_raw_text():
    tokenizer, vocab = tokenizer_and_vocab()
    features = encode_examples([example()], tokenizer, vocab, 32)  # one window
    # context token i is at position i + 5 ('<cls>', 3 question tokens, '<sep>')
    start, end = logits_for(features, [(0, 5 + 13, 5 + 15, 4.0), (0, 5 + 3, 5 + 4, 3.0)])
    nbest = nbest_answers(features, start, end, [CONTEXT], n_best=3, max_answer_len=5)[0]
    assert [a['text'] for a in nbest[:2]] == ['Caf\u00e9 \u00dcbersee', 'villages']
    assert nbest[0]['score'] == 8.0 and nbest[1]['score'] == 6.0
    assert sum(a['probability'] for a in nbest) == pytest.approx(1.0)
    assert len(nbest) == 3


def test_spans_longer_than_max_answer_len_or_ending_before_they_start_are_skipped():
    tokenizer, vocab = tokenizer_and_vocab()
    features = encode_examples([example()], tokenizer, vocab, 32)
    # best: tokens 0..16 (17 tokens, 18); next: tokens 0..7 (10)
    start, end = logits_for(features, [(0, 5 + 0, 5 + 16, 9.0), (0, 5 + 0, 5 + 7, 0.0)])
    end[0, 5 + 7] = 1.0
    assert best_answers(features, start, end, [CONTEXT], max_answer_len=17) == [CONTEXT]
    assert best_answers(features, start, end, [CONTEXT], max_answer_len=16) == [
        'Unaffable villages, in (']
    # best: start 8, end 7 (10, reversed); next: token 8 alone (7)
    start, end = logits_for(features, [(0, 5 + 8, 5 + 7, 5.0)])
    end[0, 5 + 8] = 2.0
    assert best_answers(features, start, end, [CONTEXT]) == ['1895']


def test_the_search_spans_all_windows_and_scores_a_span_where_it_has_most_context():
    tokenizer, vocab = tokenizer_and_vocab()
    features = encode_examples([example()], tokenizer, vocab, 12, doc_stride=3,
                               max_query_len=2)
    # windows start at context tokens 0, 3, 6, 9, 12 and hold 7 tokens (the last 5); the
    # context starts at position 4. 'cafe' (token 13) has most context in window 3 (2 tokens
    # on its shorter side, 1 in window 4): its score in window 4 does not count, and
    # 'golden' (token 16, only in window 4) wins among one-token answers.
    start, end = logits_for(features, [(4, 4 + 13 - 12, 4 + 13 - 12, 50.0),
                                       (4, 4 + 16 - 12, 4 + 16 - 12, 3.0),
                                       (1, 4 + 5 - 3, 4 + 5 - 3, 2.0)])
    assert best_answers(features, start, end, [CONTEXT], max_answer_len=1) == ['golden']
    start, end = logits_for(features, [(3, 4 + 13 - 9, 4 + 13 - 9, 50.0)])
    assert best_answers(features, start, end, [CONTEXT], max_answer_len=1) == ['Caf\u00e9']
    # tokens 3-8 lie whole only in window 1 (3-9), though token 3 alone has more context in
    # window 0 (0-6): BERT's start-token rule would never find this span, ours does
    start, end = logits_for(features, [(1, 4 + 0, 4 + 5, 9.0)])
    assert best_answers(features, start, end, [CONTEXT], max_answer_len=6) == [
        'villages, in (1895']


def test_examples_get_their_own_answers():
    tokenizer, vocab = tokenizer_and_vocab()
    other = 'when 1943 , golden village'
    features = encode_examples([example(), example(context=other, qid='q2')], tokenizer,
                               vocab, 32)
    assert features.example_index.tolist() == [0, 1]
    start, end = logits_for(features, [(0, 5 + 8, 5 + 8, 1.0), (1, 5 + 1, 5 + 1, 1.0)])
    assert best_answers(features, start, end, [CONTEXT, other]) == ['1895', '1943']


def write_squad(path, articles):
    with open(path, 'w', encoding='utf-8') as f:
        json.dump({'version': '1.1', 'data': articles}, f)


def test_read_squad_gives_every_question_with_its_answers(tmp_path):
    path = tmp_path / 'mini.json'
    write_squad(path, [{'title': 'T', 'paragraphs': [{'context': CONTEXT, 'qas': [
        {'id': 'a', 'question': 'Where?', 'answers': [{'text': 'villages',
                                                        'answer_start': 10}]}]}]}])
    (read,) = read_squad(str(path))
    assert (read.qid, read.title, read.answers) == ('a', 'T', [('villages', 10)])


@pytest.mark.parametrize('qas, message', [
    ([{'id': 'a', 'question': 'Q', 'answers': [{'text': 'village', 'answer_start': 9}]}],
     r"question a: answer 'village' with answer_start=9 is not in its context"),
    ([{'id': 'a', 'question': 'Q', 'answers': []}], 'question a has no answers'),
    ([{'id': 'a', 'question': 'Q', 'answers': [{'text': ' ', 'answer_start': 9}]}],
     r"question a: answer ' ' is blank"),
    ([{'id': 'a', 'answers': [{'text': 'village', 'answer_start': 10}]}],
     "question a lacks the key 'question'"),
])
def test_read_squad_refuses_bad_questions_naming_them(tmp_path, qas, message):
    path = tmp_path / 'bad.json'
    write_squad(path, [{'title': 'T', 'paragraphs': [{'context': CONTEXT, 'qas': qas}]}])
    with pytest.raises(TaskDataError, match=message):
        read_squad(str(path))


def test_task_scores_predictions_and_a_first_words_baseline():
    task = get_task('question-answering')
    examples = [example([('villages', 10)]), example([('Unaffable villages', 0)], qid='q2')]
    assert task.metrics(['villages', 'villages'], examples) == {'exact_match': 50.0,
                                                               'f1': pytest.approx(100 * 5 / 6)}
    # median training answer: 1 word -> 'Unaffable' for both
    assert task.baseline(examples[:1], examples) == {'exact_match': 0.0,
                                                    'f1': pytest.approx(100 * 1 / 3)}


def test_task_settings_rebuild_the_same_task():
    task = QuestionAnswering(doc_stride=7, max_query_len=5, max_answer_len=4,
                             articles=('le', 'la'))
    copy = QuestionAnswering(**json.loads(json.dumps(task.settings())))
    assert copy.settings() == task.settings() and copy.articles == ('le', 'la')
    with pytest.raises(ValueError, match='max_answer_len=0'):
        QuestionAnswering(max_answer_len=0)


def squad_wordpiece(examples, min_count=5):
    """A WordPiece vocabulary of the frequent words of ``examples`` plus every character,
    so rarer words split into pieces."""
    basic = WordPieceTokenizer(vocab_from_bert_tokens(SPECIALS))
    counts, chars = collections.Counter(), set()
    for text in {e.context for e in examples} | {e.question for e in examples}:
        for word in basic.basic_tokenize(text):
            counts[word] += 1
            chars.update(word)
    words = [w for w, n in counts.items() if n >= min_count]
    pieces = sorted(set(words) | chars) + ['##' + c for c in sorted(chars)]
    return tokenizer_and_vocab(pieces)


@pytest.mark.skipif(not os.path.exists(SQUAD), reason='../shared/data/squad-1.1 is absent')
def test_real_squad_articles_round_trip_every_gold_answer_through_windows_and_search():
    examples = [e for e in read_squad(SQUAD) if e.title == 'Super_Bowl_50']
    tokenizer, vocab = squad_wordpiece(examples)
    # windows of at least 128 - 3 - 21 = 104 tokens every 48 hold answers of up to 57 tokens
    features = encode_examples(examples, tokenizer, vocab, 128, doc_stride=48)
    assert features.extra['unplaced'] == []
    answers = sum(len(e.answers) for e in examples)
    assert features.extra['answers_checked'] == answers > 2000
    mismatches = features.extra['mismatches']
    assert len(mismatches) < 0.005 * answers
    assert all(gold in recovered for _, gold, recovered in mismatches)
    # the labels of every window, used as logits, give back each first gold answer
    labelled = features.labels[:, 0] > 0
    assert set(features.example_index[labelled]) == set(range(len(examples)))
    start, end = logits_for(features, [(r, s, e, 1.0) for r, (s, e) in
                                       enumerate(features.labels) if s > 0])
    predicted = best_answers(features, start, end, [e.context for e in examples],
                             max_answer_len=64)
    exact = [p == e.answers[0][0] for p, e in zip(predicted, examples)]
    wrong = {qid for qid, _, _ in mismatches}
    assert all(ok for ok, e in zip(exact, examples) if e.qid not in wrong)
    assert get_task('question-answering').metrics(predicted, examples)['exact_match'] > 99


def test_the_objective_trains_the_span_head_on_encoded_windows():
    task = get_task('question-answering')
    tokenizer, vocab = tokenizer_and_vocab()
    examples = [example([('villages', 10)]), example([('1895', 24)], 'when', qid='q2'),
                example([('golden', 49)], 'where golden', qid='q3')]
    features = task.encode(examples, tokenizer, vocab, 32, None)
    head = tiny_task_head(task, vocab, 32)
    losses, _ = fine_tune(task, head, features, 30)
    assert losses[-1] < losses[0] / 3
    predictions = task.postprocess(task.predict(head, features, [mx.cpu()]), features,
                                   examples)
    assert task.metrics(predictions, examples)['exact_match'] == 100.0


@pytest.mark.skipif(not os.path.exists(SQUAD), reason='../shared/data/squad-1.1 is absent')
def test_fine_tuning_on_real_squad_questions_lowers_the_loss():
    task = get_task('question-answering')
    examples = read_squad(SQUAD)[:8]
    tokenizer, vocab = squad_wordpiece(examples, min_count=1)
    features = task.encode(examples, tokenizer, vocab, 64, None)
    assert len(features) > len(examples)  # long contexts: several windows each
    losses, evaluations = fine_tune(task, tiny_task_head(task, vocab, 64), features, 40,
                                    batch_size=8, examples=examples)
    assert np.mean(losses[-5:]) < np.mean(losses[:5]) / 2  # shuffled batches of 8 windows
    assert [e['update'] for e in evaluations] == [10, 20, 30, 40]
    assert all(0 <= e['f1'] <= 100 and 0 <= e['exact_match'] <= e['f1'] for e in evaluations)
