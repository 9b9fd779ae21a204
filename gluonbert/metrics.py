"""Classification metrics: accuracy and a confusion matrix that prints as a table."""
import numpy as np


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
