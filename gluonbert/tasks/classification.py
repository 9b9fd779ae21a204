"""Sequence classification: one text or a pair -> one label of any label set, read from the
training file and saved with the model; accuracy, macro-F1 and MCC. ``snli`` and ``sick``
are presets: d2l's NLI label order and the data sets' own columns."""
import collections

import numpy as np

from ..metrics import classification_metrics
from .base import ExportedHead, TaskDataError, check_labelled, check_not_empty
from .sentences import TextTask, encode_text_examples, read_text_examples
from .serving import probability_lines


class ClassificationTask(TextTask):
    """Labels are strings; their ids are their positions in the sorted label set."""
    name = 'classification'
    main_metric = 'accuracy'
    greater_is_better = True

    def read(self, path, text_columns=None, label_column='label', fmt=None, quoting=False):
        return read_text_examples(path, text_columns, label_column, fmt, quoting)

    def labels_from(self, examples):
        check_labelled(check_not_empty(examples, 'the training split'))
        self._record_texts(examples)
        labels = sorted({e.label for e in examples})
        if len(labels) < 2:
            raise TaskDataError(f'the training split has one label {labels}; expected at '
                                f'least two classes')
        return labels

    def check_gold(self, examples, labels):
        check_labelled(examples)
        self.label_ids(examples, labels)

    def label_ids(self, examples, labels):
        """The label ids of ``examples``; TaskDataError for a label not seen in training."""
        ids = {label: i for i, label in enumerate(labels)}
        out = np.empty(len(examples), dtype=np.float32)
        for row, example in enumerate(examples):
            if example.label not in ids:
                raise TaskDataError(f'{example.where}: label {example.label!r} is not one of '
                                    f'the training labels {list(labels)}')
            out[row] = ids[example.label]
        return out

    def encode(self, examples, tokenizer, vocab, max_len, labels):
        features = encode_text_examples(examples, tokenizer, vocab, max_len,
                                        lambda exs: self.label_ids(exs, labels))
        features.extra['labels'] = list(labels)
        return features

    def head(self, bert, labels):
        from ..model.heads import BERTForSequenceClassification
        return BERTForSequenceClassification(bert, len(labels))

    def objective(self, net):
        """The head's cross-entropy, with the training accuracy logged beside the loss (and
        R-Drop able to wrap it)."""
        from ..train.finetune import ClassificationLoss
        return ClassificationLoss(net, net.loss)

    def postprocess(self, outputs, features, examples):
        """The predicted label name of each example."""
        names = features.extra['labels']
        return [names[i] for i in np.asarray(outputs).argmax(axis=1)]

    def output_header(self, label_names, examples):
        """TSV: ``label``, then one ``p_<label>`` column per label."""
        return '\t'.join(['label'] + [f'p_{name}' for name in label_names])

    def output_lines(self, examples, features, outputs):
        """The predicted label and each label's probability."""
        return probability_lines(self.postprocess(outputs, features, examples), outputs)

    @classmethod
    def exported_head(cls, model):
        """``BERTForSequenceClassification`` with more than one label, or d2l's
        ``BERTClassifier``: ``logits``."""
        from .. import compat
        from ..model import BERTClassifier
        from ..model.heads import BERTForSequenceClassification
        if isinstance(model, BERTClassifier):
            return ExportedHead({'logits': ('batch', 'labels')},
                                compat.dense_units(model.output)[0])
        if isinstance(model, BERTForSequenceClassification) and model.num_labels != 1:
            return ExportedHead({'logits': ('batch', 'labels')}, model.num_labels)
        return None

    def metrics(self, predictions, examples):
        check_labelled(examples)
        return classification_metrics([e.label for e in examples], list(predictions))

    def baseline(self, train_examples, eval_examples):
        """Always the training split's most frequent label."""
        check_labelled(train_examples)
        majority = collections.Counter(e.label for e in train_examples).most_common(1)[0][0]
        return self.metrics([majority] * len(eval_examples), eval_examples)
