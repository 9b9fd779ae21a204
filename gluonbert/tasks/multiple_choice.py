"""The ``multiple-choice`` task: one context, N candidate endings (SWAG, Cosmos QA), scored by
``BERTForMultipleChoice`` on ``(batch, num_choices, seq_len)`` inputs, accuracy.

Reading and encoding are ``choices`` (pure numpy, shared with ``export/predict.py``).
"""
import collections

import numpy as np

from .base import Task, TaskDataError
from .choices import accuracy, encode_choices, read_choices


class MultipleChoice(Task):
    """Pick the right ending. ``read(path, text_columns=[context, question, ending0, ...],
    label_column='label')``; without ``text_columns`` the header tells Cosmos QA or SWAG."""
    name = 'multiple-choice'
    main_metric = 'accuracy'
    greater_is_better = True

    def read(self, path, text_columns=None, label_column='label', fmt=None, quoting=False):
        return read_choices(path, text_columns, label_column, fmt, quoting)

    def encode(self, examples, tokenizer, vocab, max_len, labels=None):
        return encode_choices(examples, tokenizer, vocab, max_len)

    def head(self, bert, labels=None):
        from ..model.heads import BERTForMultipleChoice
        return BERTForMultipleChoice(bert)

    def postprocess(self, outputs, features, examples):
        """The index of the best-scored ending of each example."""
        return np.asarray(outputs).argmax(axis=1).tolist()

    def metrics(self, predictions, examples):
        if any(example.label is None for example in examples):
            raise TaskDataError('examples without labels cannot be scored; expected a '
                                'labelled split')
        return {'accuracy': accuracy(predictions, examples)}

    def baseline(self, train_examples, eval_examples):
        """Always the ending index most often right in training."""
        majority = collections.Counter(e.label for e in train_examples).most_common(1)[0][0]
        return self.metrics([majority] * len(eval_examples), eval_examples)
