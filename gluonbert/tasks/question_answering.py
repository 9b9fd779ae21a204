"""The ``question-answering`` task: SQuAD v1.1 JSON, windows over long contexts, the span head,
n-best span search, and Exact Match / F1 as the official v1.1 script computes them.

Pre-processing is ``qa_windows``, post-processing ``qa_answers``, scoring ``squad_metric``
(all pure numpy, shared with ``export/predict.py``); this module ties them to the head.
"""
import statistics
import sys

from .base import ExportedHead, Task, check_not_empty
from .qa_answers import best_answers, nbest_answers
from .qa_windows import encode_examples, read_squad, served_example, split_words, window_settings
from .squad_metric import ENGLISH_ARTICLES, squad_scores

N_BEST = 20  # the spans a served answer's probability is taken over (BERT's n_best_size)
ANSWER_COLUMNS = ('answer', 'probability', 'score', 'start_char', 'end_char')


class QuestionAnswering(Task):
    """Extractive QA. ``doc_stride`` is the step between window starts (default
    ``max_len // 3``), ``max_query_len`` the question's token budget (default
    ``max_len // 6``), ``max_answer_len`` (tokens) bounds the span search, ``articles`` are
    the words the metric drops (English by default)."""
    name = 'question-answering'
    main_metric = 'f1'
    token_pad = -1e4  # the head's logit for padding
    greater_is_better = True

    def __init__(self, doc_stride=None, max_query_len=None, max_answer_len=30,
                 articles=ENGLISH_ARTICLES):
        for name, value, default in (('doc_stride', doc_stride, 'max_len // 3'),
                                     ('max_query_len', max_query_len, 'max_len // 6')):
            if value is not None and not _is_count(value):
                raise ValueError(f'{name}={value!r}; expected an integer >= 1 (tokens), or '
                                 f'None for {default}')
        if not _is_count(max_answer_len):
            raise ValueError(f'max_answer_len={max_answer_len!r}; expected an integer >= 1 '
                             f'(tokens)')
        if not isinstance(articles, (list, tuple)) or \
                not all(isinstance(word, str) and word for word in articles):
            raise ValueError(f'articles={articles!r}; expected a list of words')
        self.doc_stride, self.max_query_len = doc_stride, max_query_len
        self.max_answer_len, self.articles = max_answer_len, tuple(articles)

    def settings(self):
        """The options as a JSON-able dict, ``QuestionAnswering(**settings)`` rebuilding the
        task: saved with a model and its export so that serving windows and searches spans as
        evaluation did."""
        return {'doc_stride': self.doc_stride, 'max_query_len': self.max_query_len,
                'max_answer_len': self.max_answer_len, 'articles': list(self.articles)}

    def fit_to(self, max_len):
        """Fill in the window settings that default from ``max_len`` (so that the saved
        settings hold the stride trained with) and check that they fit it."""
        self.doc_stride, self.max_query_len = window_settings(max_len, self.doc_stride,
                                                              self.max_query_len)

    def read(self, path, text_columns=None, label_column=None, fmt=None, quoting=False):
        """The questions of a SQuAD v1.1 JSON file, whose fields are fixed: ``label_column``
        and ``quoting`` do not apply, ``text_columns`` and a ``fmt`` other than 'json' are
        refused."""
        if text_columns or fmt not in (None, 'json'):
            raise ValueError(f'text_columns={text_columns!r}, format={fmt!r}: the '
                             f'question-answering task reads SQuAD v1.1 JSON, whose fields '
                             f'are fixed')
        return check_not_empty(read_squad(path), path)

    def encode(self, examples, tokenizer, vocab, max_len, labels=None):
        features = encode_examples(examples, tokenizer, vocab, max_len, self.doc_stride,
                                   self.max_query_len)
        mismatches = features.extra['mismatches']
        if mismatches:
            qid, gold, recovered = mismatches[0]
            print(f'{self.name}: {len(mismatches)} of {features.extra["answers_checked"]} gold '
                  f'answers are not whole tokens; trained on the covering tokens (e.g. '
                  f'question {qid}: {gold!r} -> {recovered!r})', file=sys.stderr)
        unplaced = features.extra['unplaced']
        if unplaced:
            print(f'{self.name}: the answers of {len(unplaced)} questions are longer than a '
                  f'window holds whole (e.g. question {unplaced[0]}); they train as "no '
                  f'answer"; raise max_len or lower doc_stride', file=sys.stderr)
        return features

    def head(self, bert, labels=None):
        from ..model.heads import BERTForQuestionAnswering
        return BERTForQuestionAnswering(bert)

    def postprocess(self, outputs, features, examples):
        """The best answer text of each example."""
        start_logits, end_logits = outputs
        return best_answers(features, start_logits, end_logits,
                            [example.context for example in examples], self.max_answer_len)

    def served_example(self, fields, where):
        """A line holds ``question<TAB>context``; a long context is windowed with the task's
        settings (the stride the model was trained with)."""
        return served_example(fields, where)

    def output_header(self, label_names, examples):
        """TSV: ``answer``, ``probability`` (the softmax of the scores over the n-best spans,
        as BERT reports it), ``score`` (start + end logit), ``start_char`` and ``end_char``
        (the answer is ``context[start_char:end_char]``)."""
        return '\t'.join(ANSWER_COLUMNS)

    def output_lines(self, examples, features, outputs):
        """The best answer of each example; empty cells when no span qualifies."""
        start_logits, end_logits = outputs
        answers = nbest_answers(features, start_logits, end_logits,
                                [example.context for example in examples], N_BEST,
                                self.max_answer_len)
        return [_answer_row(nbest[0]) if nbest else '\t' * (len(ANSWER_COLUMNS) - 1)
                for nbest in answers]

    @classmethod
    def exported_head(cls, model):
        from ..model.heads import BERTForQuestionAnswering
        if isinstance(model, BERTForQuestionAnswering):
            return ExportedHead({'start_logits': ('batch', 'seq'),
                                 'end_logits': ('batch', 'seq')}, label_kind=None)
        return None

    def metrics(self, predictions, examples):
        if len(predictions) != len(examples):
            raise ValueError(f'{len(predictions)} predictions for {len(examples)} examples')
        golds = {example.qid: example.gold_texts for example in examples}
        answers = {example.qid: text for example, text in zip(examples, predictions)}
        return squad_scores(answers, golds, self.articles)

    def baseline(self, train_examples, eval_examples):
        """The first words of each context, as many as the median training answer has."""
        length = round(statistics.median(len(text.split()) for example in train_examples
                                         for text in example.gold_texts[:1]))
        predictions = [' '.join(word for word, _ in split_words(example.context)[:length])
                       for example in eval_examples]
        return self.metrics(predictions, eval_examples)


def _answer_row(answer):
    return (f'{answer["text"]}\t{answer["probability"]:.6f}\t{answer["score"]:.6f}\t'
            f'{answer["start_char"]}\t{answer["end_char"]}')


def _is_count(value):
    return isinstance(value, int) and not isinstance(value, bool) and value >= 1
