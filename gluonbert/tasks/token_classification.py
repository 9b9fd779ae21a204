"""Token classification (NER) on CoNLL files: a tag per word, the label set read from the
training file; the label sits on each word's first sub-word, the other pieces are not scored;
sentences longer than ``max_len`` are split into windows of whole words, so that every word
gets a prediction; entity-level precision, recall and F1 on words (``metrics.ENTITY_SCHEME``).
"""
import collections

import numpy as np

from ..metrics import ENTITY_SCHEME, entity_metrics
from .base import ExportedHead, Features, Task, TaskDataError, check_not_empty
from .encoding import IGNORE_LABEL, encode_words
from .readers import TaggedSentence, read_conll


class TokenClassificationTask(Task):
    name = 'token-classification'
    main_metric = 'f1'
    token_pad = 0.0
    greater_is_better = True
    metrics_note = f'entity-level P/R/F1 on words, {ENTITY_SCHEME}'

    def read(self, path, **columns):
        if columns:
            raise ValueError(f'token-classification reads CoNLL files (word first, tag last); '
                             f'it takes no column options, got {sorted(columns)}')
        return read_conll(path)

    def labels_from(self, examples):
        """The training file's tags, with ``B-X`` and ``I-X`` both in for every entity type
        ``X`` seen (a small training file may hold one without the other)."""
        check_not_empty(examples, 'the training split')
        tags = {tag for sentence in examples for tag in sentence.tags}
        types = {tag[2:] for tag in tags if tag[:2] in ('B-', 'I-')}
        labels = sorted(tags | {f'{prefix}{t}' for t in types for prefix in ('B-', 'I-')})
        if len(labels) < 2:
            raise TaskDataError(f'the training split has one tag {labels}; expected at least '
                                f'two')
        return labels

    def check_gold(self, examples, labels):
        known = set(labels)
        for sentence in examples:
            for index, tag in enumerate(sentence.tags):
                if tag not in known:
                    raise _unseen_tag(sentence, index, labels)

    def encode(self, examples, tokenizer, vocab, max_len, labels):
        check_not_empty(examples, 'the split')
        inputs, (example_index, word_ids) = encode_words([s.words for s in examples],
                                                         tokenizer, vocab, max_len)
        targets = None
        if all(sentence.tags is not None for sentence in examples):
            targets = self._targets(examples, labels, example_index, word_ids)
        return Features(*inputs, labels=targets, example_index=example_index,
                        extra={'word_ids': word_ids, 'labels': list(labels)})

    @staticmethod
    def _targets(examples, labels, example_index, word_ids):
        """Tag ids on each word's first piece, ``IGNORE_LABEL`` elsewhere."""
        ids = {label: i for i, label in enumerate(labels)}
        targets = np.full(word_ids.shape, IGNORE_LABEL, dtype=np.float32)
        for row, (number, words) in enumerate(zip(example_index, word_ids)):
            sentence = examples[number]
            for position in np.flatnonzero(words >= 0):
                tag = sentence.tags[words[position]]
                if tag not in ids:
                    raise _unseen_tag(sentence, words[position], labels)
                targets[row, position] = ids[tag]
        return targets

    def head(self, bert, labels):
        from ..model.heads import BERTForTokenClassification
        return BERTForTokenClassification(bert, len(labels))

    def postprocess(self, outputs, features, examples):
        """The predicted tags of each example's words, gathered from its windows."""
        names = features.extra['labels']
        best = np.asarray(outputs).argmax(axis=-1)
        tags = [[None] * len(sentence.words) for sentence in examples]
        for row, number in enumerate(features.example_index):
            words = features.extra['word_ids'][row]
            for position in np.flatnonzero(words >= 0):
                tags[number][words[position]] = names[best[row, position]]
        return tags

    def served_example(self, fields, where):
        """A line holds a sentence, words separated by spaces."""
        return TaggedSentence(' '.join(fields).split(), None, where)

    def output_lines(self, examples, features, outputs):
        """CoNLL: ``word<TAB>tag`` lines, a blank line after each sentence (no header)."""
        lines = []
        for example, tags in zip(examples, self.postprocess(outputs, features, examples)):
            lines.extend(f'{word}\t{tag}' for word, tag in zip(example.words, tags))
            lines.append('')
        return lines

    @classmethod
    def exported_head(cls, model):
        from ..model.heads import BERTForTokenClassification
        if isinstance(model, BERTForTokenClassification):
            return ExportedHead({'logits': ('batch', 'seq', 'labels')}, model.num_labels)
        return None

    def metrics(self, predictions, examples):
        return entity_metrics([s.tags for s in examples], predictions)

    def baseline(self, train_examples, eval_examples):
        """Every word gets the training split's most frequent tag (``O`` in NER files)."""
        counts = collections.Counter(tag for s in train_examples for tag in s.tags)
        majority = counts.most_common(1)[0][0]
        return self.metrics([[majority] * len(s.words) for s in eval_examples], eval_examples)


def _unseen_tag(sentence, index, labels):
    return TaskDataError(f'{sentence.word_where(index)}: tag {sentence.tags[index]!r} is not '
                         f'one of the training tags {list(labels)}')
