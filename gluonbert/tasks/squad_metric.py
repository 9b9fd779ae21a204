"""Exact Match and F1 for extractive QA, exactly as SQuAD v1.1's official ``evaluate-v1.1.py``.

An answer is normalised by lower-casing, dropping ``string.punctuation``, dropping the articles
(``\\b(a|an|the)\\b``) and collapsing whitespace, in that order. EM is equality of normalised
texts; F1 is the overlap F1 of their whitespace tokens as bags (0 when nothing overlaps, even
for two empty answers, as v1.1 computes it). Each question scores its best over its gold
answers; the totals average over every question, an unanswered one scoring 0, times 100.

The articles are English; ``articles`` takes another language's list (HF datasets PR #4030).
Pure Python (no MXNet), so that serving code can score with it too.
"""
import re
import string
from collections import Counter

ENGLISH_ARTICLES = ('a', 'an', 'the')
_PUNCTUATION = frozenset(string.punctuation)


def _article_pattern(articles):
    if not articles:
        return None
    return re.compile(r'\b(' + '|'.join(re.escape(a) for a in articles) + r')\b')


_ENGLISH = _article_pattern(ENGLISH_ARTICLES)


def normalize_answer(text, articles=ENGLISH_ARTICLES):
    """``text`` lower-cased, without punctuation and articles, whitespace collapsed."""
    pattern = _ENGLISH if tuple(articles) == ENGLISH_ARTICLES else _article_pattern(articles)
    text = ''.join(ch for ch in text.lower() if ch not in _PUNCTUATION)
    if pattern is not None:
        text = pattern.sub(' ', text)
    return ' '.join(text.split())


def exact_match(prediction, gold, articles=ENGLISH_ARTICLES):
    """1.0 when the normalised texts are equal, else 0.0."""
    return float(normalize_answer(prediction, articles) == normalize_answer(gold, articles))


def f1(prediction, gold, articles=ENGLISH_ARTICLES):
    """Token-bag overlap F1 of the normalised texts (0.0 when they share no token)."""
    predicted = normalize_answer(prediction, articles).split()
    expected = normalize_answer(gold, articles).split()
    same = sum((Counter(predicted) & Counter(expected)).values())
    if same == 0:
        return 0.0
    precision, recall = same / len(predicted), same / len(expected)
    return 2 * precision * recall / (precision + recall)


def best_over_golds(metric, prediction, golds, articles=ENGLISH_ARTICLES):
    """The best ``metric(prediction, gold)`` over the gold answers of one question."""
    if not golds:
        raise ValueError('golds is empty: every SQuAD v1.1 question has at least one answer')
    return max(metric(prediction, gold, articles) for gold in golds)


def squad_scores(predictions, golds, articles=ENGLISH_ARTICLES):
    """``{'exact_match', 'f1'}`` in percent over every question of ``golds``.

    ``golds`` maps question id -> list of gold answer texts; ``predictions`` maps question
    id -> predicted text. A question without a prediction scores 0, as in the official script.
    """
    if not golds:
        raise ValueError('golds is empty: no question to score')
    em = f1_sum = 0.0
    for qid, answers in golds.items():
        if qid in predictions:
            em += best_over_golds(exact_match, predictions[qid], answers, articles)
            f1_sum += best_over_golds(f1, predictions[qid], answers, articles)
    return {'exact_match': 100.0 * em / len(golds), 'f1': 100.0 * f1_sum / len(golds)}
