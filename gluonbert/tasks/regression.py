"""Sequence regression: one text or a pair -> a score (STS-B's 0-5 similarity); Pearson and
Spearman correlations. The label column is read as a number, never as classes (STS-B's
string scores must not become 26 labels)."""
import numpy as np

from ..metrics import regression_metrics
from .base import ExportedHead, TaskDataError, check_labelled, check_not_empty
from .sentences import TextTask, encode_text_examples, read_text_examples


def _score(value):
    if isinstance(value, bool):  # JSON true is no score, though float(True) is 1.0
        raise ValueError(value)
    score = float(value)
    if not np.isfinite(score):
        raise ValueError(value)
    return score


class RegressionTask(TextTask):
    name = 'regression'
    main_metric = 'pearson'
    greater_is_better = True

    def read(self, path, text_columns=None, label_column='label', fmt=None, quoting=False):
        return read_text_examples(path, text_columns, label_column, fmt, quoting, _score,
                                  'finite number')

    def labels_from(self, examples):
        check_labelled(check_not_empty(examples, 'the training split'))
        self._record_texts(examples)
        if len({e.label for e in examples}) < 2:
            raise TaskDataError('every training score is the same; expected varied scores')
        return None

    def check_gold(self, examples, labels):
        check_labelled(examples)

    def encode(self, examples, tokenizer, vocab, max_len, labels):
        return encode_text_examples(
            examples, tokenizer, vocab, max_len,
            lambda exs: np.array([e.label for e in exs], dtype=np.float32))

    def head(self, bert, labels):
        from ..model.heads import BERTForSequenceClassification
        return BERTForSequenceClassification(bert, 1)

    def postprocess(self, outputs, features, examples):
        return [float(score) for score in np.asarray(outputs).reshape(-1)]

    def output_header(self, label_names, examples):
        """The score's name (``score`` when it has none), then one score per line."""
        return (label_names or ['score'])[0]

    def output_lines(self, examples, features, outputs):
        return [f'{score:.6f}' for score in self.postprocess(outputs, features, examples)]

    @classmethod
    def exported_head(cls, model):
        """``BERTForSequenceClassification`` with one output: ``scores``."""
        from ..model.heads import BERTForSequenceClassification
        if isinstance(model, BERTForSequenceClassification) and model.num_labels == 1:
            return ExportedHead({'scores': ('batch',)}, label_kind='score')
        return None

    def metrics(self, predictions, examples):
        check_labelled(examples)
        return regression_metrics([e.label for e in examples], predictions)

    def baseline(self, train_examples, eval_examples):
        """Always the training split's mean score (correlations are 0 by definition)."""
        check_labelled(train_examples)
        mean = float(np.mean([e.label for e in train_examples]))
        return self.metrics([mean] * len(eval_examples), eval_examples)
