"""Task metrics against cases computed by hand."""
import pytest

from gluonbert.metrics import classification_metrics, entity_metrics, regression_metrics


def test_accuracy_macro_f1_and_mcc_of_three_classes():
    # a: P 1/2 R 1/2 F1 .5; b: P 2/3 R 1 F1 .8; c: F1 0. MCC: (3*5 - 10) / sqrt(12 * 16)
    got = classification_metrics(['a', 'a', 'b', 'b', 'c'], ['a', 'b', 'b', 'b', 'a'])
    assert got['accuracy'] == pytest.approx(0.6)
    assert got['macro_f1'] == pytest.approx(1.3 / 3)
    assert got['mcc'] == pytest.approx(5 / 192 ** 0.5)


def test_majority_prediction_has_mcc_zero():
    got = classification_metrics([0, 0, 1], [0, 0, 0])
    assert got['mcc'] == 0 and got['accuracy'] == pytest.approx(2 / 3)
    assert got['macro_f1'] == pytest.approx((0.8 + 0) / 2)


def test_pearson_spearman_and_mse():
    got = regression_metrics([1, 2, 3, 4], [1, 3, 2, 4])
    assert got['pearson'] == pytest.approx(0.8)   # cov 4 / var 5
    assert got['spearman'] == pytest.approx(0.8)
    assert got['mse'] == pytest.approx(0.5)


def test_spearman_averages_tied_ranks():
    # gold ranks 1, 2.5, 2.5, 4 against 1, 2, 3, 4: 4.5 / sqrt(4.5 * 5)
    got = regression_metrics([1, 2, 2, 3], [1, 2, 3, 4])
    assert got['spearman'] == pytest.approx(4.5 / 22.5 ** 0.5)


def test_constant_predictions_correlate_zero_not_nan():
    assert regression_metrics([1, 2, 3], [2, 2, 2])['pearson'] == 0.0


def test_entities_are_scored_as_seqeval_default_mode():
    gold = [['B-PER', 'I-PER', 'O', 'B-LOC'], ['B-ORG', 'O']]
    pred = [['B-PER', 'I-PER', 'O', 'I-LOC'], ['B-PER', 'O']]
    # entities: gold PER, LOC, ORG; predicted PER, LOC (a bare I- opens one), PER; 2 right
    got = entity_metrics(gold, pred)
    assert got['precision'] == pytest.approx(2 / 3)
    assert got['recall'] == pytest.approx(2 / 3)
    assert got['f1'] == pytest.approx(2 / 3)
    assert got['accuracy'] == pytest.approx(4 / 6)


def test_an_entity_with_a_wrong_span_counts_as_wrong():
    got = entity_metrics([['B-PER', 'I-PER', 'O']], [['B-PER', 'O', 'O']])
    assert got['precision'] == 0 and got['recall'] == 0 and got['f1'] == 0


def test_all_outside_predictions_score_zero_f1():
    got = entity_metrics([['B-PER', 'O'], ['O', 'B-LOC']], [['O', 'O'], ['O', 'O']])
    assert got['f1'] == 0 and got['accuracy'] == pytest.approx(0.5)


def test_mismatched_lengths_are_refused():
    with pytest.raises(ValueError, match='sentence 0: 1 predicted tags for 2 words'):
        entity_metrics([['O', 'O']], [['O']])
    with pytest.raises(ValueError, match='2 predictions for 1 gold values'):
        classification_metrics(['a'], ['a', 'b'])
