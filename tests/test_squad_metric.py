"""SQuAD v1.1 Exact Match and F1, against hand-computed cases of the official script's rules."""
import pytest

from gluonbert.tasks.squad_metric import (best_over_golds, exact_match, f1, normalize_answer,
                                          squad_scores)


@pytest.mark.parametrize('text, normalized', [
    ('The Cat!', 'cat'),                      # lower, punctuation, article
    ('  an apple   a day ', 'apple day'),     # articles anywhere, whitespace collapsed
    ('theater and them', 'theater and them'),  # articles only as whole words
    ('U.S. Navy', 'us navy'),                 # punctuation dropped, not replaced by a space
    ('state-of-the-art', 'stateoftheart'),    # punctuation goes first, so 'the' is no word
    ('the, the. a', ''),                      # nothing but articles and punctuation
    ('Tom\u2019s caf\u00e9', 'tom\u2019s caf\u00e9'),  # only ASCII punctuation is dropped
    ('A\tB\nC', 'b c'),                       # capital article, tabs and newlines
])
def test_normalize_answer_lowers_and_drops_punctuation_articles_and_extra_space(text, normalized):
    assert normalize_answer(text) == normalized


def test_exact_match_compares_normalized_texts():
    assert exact_match('The Denver Broncos.', 'denver broncos') == 1.0
    assert exact_match('Denver Broncos', 'Broncos') == 0.0


def test_f1_is_the_overlap_of_token_bags():
    # pred {cat, sat}, gold {cat, sat, down}: precision 1, recall 2/3
    assert f1('the cat sat', 'a cat sat down') == pytest.approx(0.8)
    # bags, not sets: one 'cat' and one 'dog' in common out of three tokens each
    assert f1('cat cat dog', 'cat dog dog') == pytest.approx(2 / 3)
    assert f1('cat', 'dog') == 0.0


def test_f1_of_empty_answers_is_zero_as_in_v1_1_while_exact_match_is_one():
    assert f1('the', 'a') == 0.0
    assert exact_match('the', 'a') == 1.0


def test_each_question_takes_its_best_gold_answer():
    golds = ['Denver Broncos', 'the Broncos', 'Broncos of Denver']
    assert best_over_golds(exact_match, 'Broncos', golds) == 1.0
    # 'Denver': F1 2/3 against 'Denver Broncos', 1/2 against 'Broncos of Denver'
    assert best_over_golds(f1, 'Denver', golds) == pytest.approx(2 / 3)


def test_scores_average_over_every_question_in_percent_and_missing_ones_score_zero():
    golds = {'q1': ['Broncos'], 'q2': ['a cat sat down'], 'q3': ['Paris']}
    scores = squad_scores({'q1': 'the Broncos', 'q2': 'cat sat'}, golds)
    assert scores['exact_match'] == pytest.approx(100 / 3)
    assert scores['f1'] == pytest.approx(100 * (1 + 0.8 + 0) / 3)


def test_articles_are_a_setting_for_other_languages():
    assert normalize_answer('Le Chat', articles=('le', 'la', 'les')) == 'chat'
    assert normalize_answer('the chat', articles=('le', 'la', 'les')) == 'the chat'
    assert normalize_answer('the chat', articles=()) == 'the chat'
