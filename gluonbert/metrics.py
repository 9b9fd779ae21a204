"""Metrics of every task, each as its reference implementation computes it.

Classification: accuracy, macro-F1 and Matthews correlation (scikit-learn); regression:
Pearson and Spearman correlation (scipy); token classification: entity-level precision,
recall and F1 over IOB2 tags as seqeval computes them by default (conlleval's lenient mode, in
which an ``I-`` tag without a ``B-`` still starts an entity), scored on words, never on
sub-words. Also a confusion matrix that prints as a table.
"""
import numpy as np

ENTITY_SCHEME = 'IOB2 tags, seqeval default mode (conlleval-compatible)'


def confusion_matrix(labels, predictions, num_classes):
    """Counts ``matrix[true, predicted]``."""
    matrix = np.zeros((num_classes, num_classes), dtype=np.int64)
    np.add.at(matrix, (np.asarray(labels, dtype=np.int64), np.asarray(predictions, dtype=np.int64)),
              1)
    return matrix


def format_confusion_matrix(matrix, names):
    """Rows are true labels, columns predictions."""
    width = max(10, max(len(n) for n in names) + 1)
    lines = ['true \\ predicted'.ljust(width + 6) + ''.join(n.rjust(width) for n in names)]
    for name, row in zip(names, matrix):
        lines.append(name.ljust(width + 6) + ''.join(str(v).rjust(width) for v in row))
    return '\n'.join(lines)


def _same_length(gold, predicted):
    if len(gold) != len(predicted):
        raise ValueError(f'{len(predicted)} predictions for {len(gold)} gold values; '
                         f'expected one each')
    if not len(gold):
        raise ValueError('no example to score')


def classification_metrics(gold, predicted):
    """``accuracy``, ``macro_f1`` (unweighted mean of the per-class F1 over the classes in
    gold or predictions) and ``mcc`` of label lists."""
    from sklearn.metrics import accuracy_score, f1_score, matthews_corrcoef
    _same_length(gold, predicted)
    return {'accuracy': float(accuracy_score(gold, predicted)),
            'macro_f1': float(f1_score(gold, predicted, average='macro', zero_division=0)),
            'mcc': float(matthews_corrcoef(gold, predicted))}


def regression_metrics(gold, predicted):
    """``pearson`` and ``spearman`` correlations (0 when predictions are constant, where
    they are undefined) and ``mse``."""
    from scipy.stats import pearsonr, spearmanr
    _same_length(gold, predicted)
    gold, predicted = np.asarray(gold, np.float64), np.asarray(predicted, np.float64)
    constant = np.ptp(predicted) == 0 or np.ptp(gold) == 0
    return {'pearson': 0.0 if constant else float(pearsonr(gold, predicted)[0]),
            'spearman': 0.0 if constant else float(spearmanr(gold, predicted)[0]),
            'mse': float(np.mean((gold - predicted) ** 2))}


def entity_metrics(gold, predicted):
    """Entity-level ``precision``, ``recall``, ``f1`` of sentences of word tags (lists of
    lists), as seqeval's default mode computes them, and word-level ``accuracy``."""
    from seqeval.metrics import accuracy_score, f1_score, precision_score, recall_score
    _same_length(gold, predicted)
    for number, (g, p) in enumerate(zip(gold, predicted)):
        if len(g) != len(p):
            raise ValueError(f'sentence {number}: {len(p)} predicted tags for {len(g)} words')
    return {'precision': float(precision_score(gold, predicted, zero_division=0)),
            'recall': float(recall_score(gold, predicted, zero_division=0)),
            'f1': float(f1_score(gold, predicted, zero_division=0)),
            'accuracy': float(accuracy_score(gold, predicted))}
