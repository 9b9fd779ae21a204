"""The ``multiple-choice`` task: one context, N candidate endings (SWAG, Cosmos QA), scored by
``BERTForMultipleChoice`` on ``(batch, num_choices, seq_len)`` inputs, accuracy.

Reading and encoding are ``choices`` (pure numpy, shared with ``export/predict.py``).
"""
import collections

import numpy as np

from .base import ExportedHead, InputFormatError, Task, check_labelled, check_not_empty
from .choices import accuracy, encode_choices, read_choices, served_example
from .serving import probability_lines


class MultipleChoice(Task):
    """Pick the right ending. ``read(path, text_columns=[context, question, ending0, ...],
    label_column='label')``; without ``text_columns`` the header tells Cosmos QA or SWAG."""
    name = 'multiple-choice'
    main_metric = 'accuracy'
    greater_is_better = True

    def read(self, path, text_columns=None, label_column='label', fmt=None, quoting=False):
        return read_choices(path, text_columns, label_column, fmt, quoting)

    def labels_from(self, examples):
        """None (the labels are ending indices, checked as read); every training example
        must have one."""
        check_labelled(check_not_empty(examples, 'the training split'))
        return None

    def check_gold(self, examples, labels):
        """Every dev or test example has its right ending's index (each one is within its
        endings, checked as read)."""
        check_labelled(examples)

    def encode(self, examples, tokenizer, vocab, max_len, labels=None):
        return encode_choices(examples, tokenizer, vocab, max_len)

    def head(self, bert, labels=None):
        from ..model.heads import BERTForMultipleChoice
        return BERTForMultipleChoice(bert)

    def postprocess(self, outputs, features, examples):
        """The index of the best-scored ending of each example."""
        return np.asarray(outputs).argmax(axis=1).tolist()

    def served_example(self, fields, where):
        """A line holds ``context<TAB>question<TAB>ending0<TAB>ending1...`` (the question may
        be empty)."""
        return served_example(fields, where)

    def check_served(self, examples):
        """As many endings on every line."""
        for example in examples:
            if len(example.endings) != len(examples[0].endings):
                raise InputFormatError(
                    f'{example.qid}: {len(example.endings)} endings; expected '
                    f'{len(examples[0].endings)}, as on {examples[0].qid} (the output has one '
                    f'probability column per ending)')

    def output_header(self, label_names, examples):
        """TSV: ``choice`` (the index of the chosen ending), then one probability per ending,
        ``p_0`` to ``p_<N-1>``."""
        count = len(examples[0].endings) if examples else 0
        return '\t'.join(['choice'] + [f'p_{i}' for i in range(count)])

    def output_lines(self, examples, features, outputs):
        return probability_lines(self.postprocess(outputs, features, examples), outputs)

    @classmethod
    def exported_head(cls, model):
        from ..model.heads import BERTForMultipleChoice
        if isinstance(model, BERTForMultipleChoice):
            return ExportedHead({'logits': ('batch', 'choices')}, choices=True, label_kind=None)
        return None

    def metrics(self, predictions, examples):
        check_labelled(examples)
        return {'accuracy': accuracy(predictions, examples)}

    def baseline(self, train_examples, eval_examples):
        """Always the ending index most often right in training."""
        majority = collections.Counter(e.label for e in train_examples).most_common(1)[0][0]
        return self.metrics([majority] * len(eval_examples), eval_examples)
