"""Extractive QA inputs: SQuAD v1.1 examples -> token windows over long contexts, with labels.

How a context becomes model inputs (as BERT's ``run_squad.py``, with exact character offsets):
1. the context is split into whitespace words as BERT does (spaces, tabs, line breaks, U+202F);
2. each word is tokenized on its own and every token gets the character span it came from in
   the raw context (``token_offsets``), so an answer maps to tokens and back to raw text
   exactly, whatever the tokenizer lower-cases, strips or splits off;
3. the context tokens are cut into windows of ``max_len - len(question) - 3`` tokens whose
   starts are ``doc_stride`` tokens apart: ``doc_stride`` is the STEP between window starts
   (BERT's and GluonNLP's meaning; the overlap of two windows is window length - doc_stride).
   It must be at most the window length, so every context token lands in some window; an
   answer of up to window length - doc_stride + 1 tokens lies whole in some window;
4. each window is ``<cls> question <sep> context-window <sep>`` (segments 0 then 1); its label is
   the answer's first and last token position, or ``(0, 0)`` (``<cls>``) when the answer is
   not wholly inside the window, as BERT labels it.

A gold answer whose ``answer_start`` does not point at its text in the context is refused with
an error. Every gold answer is mapped to the smallest token span covering it and back to raw
text; answers that do not come back identical (a piece straddles the answer's edge) are listed
in the features' ``extra['mismatches']``, questions whose answer lies whole in no window (too
long for the windows) in ``extra['unplaced']``: they train as "no answer" in every window.

Pure Python and numpy (no MXNet): ``export/predict.py`` serves QA with this same code.
Serving API: ``served_example(fields, where)`` reads a line's tab-separated fields
``question, context``; ``encode_examples(examples, tokenizer, vocab, max_len, doc_stride)``
-> ``Features`` (one row per window; ``extra`` holds each context token's character span and
where each window starts); the head's start/end logits of those rows then go to
``qa_answers.nbest_answers`` / ``best_answers`` with the contexts
(``QuestionAnswering.postprocess``).
"""
import json
from dataclasses import dataclass, field

import numpy as np

from .base import Features, TaskDataError

# BERT run_squad's whitespace: the characters that separate words of a context
_WHITESPACE = frozenset(' \t\r\n\u202f')
_CACHE_SIZE = 1 << 18  # words whose token spans are kept


@dataclass
class QAExample:
    """One question on one context; ``answers`` are ``(text, answer_start)`` pairs (empty when
    serving). ``title`` names the article, for splits that keep a passage on one side."""
    qid: str
    question: str
    context: str
    answers: list = field(default_factory=list)
    title: str = ''

    @property
    def gold_texts(self):
        return [text for text, _ in self.answers]


def read_squad(path):
    """The ``QAExample``s of a SQuAD v1.1 JSON file, in file order.

    Raises ``TaskDataError`` for a file that is not SQuAD-shaped, a question without answers, or
    an answer whose text is not at its ``answer_start`` in the context.
    """
    with open(path, encoding='utf-8') as f:
        try:
            dataset = json.load(f)
        except json.JSONDecodeError as error:
            raise TaskDataError(f'{path}: not JSON ({error}); expected a SQuAD v1.1 '
                                f'file') from None
    if not isinstance(dataset, dict) or not isinstance(dataset.get('data'), list):
        raise TaskDataError(f'{path}: expected a SQuAD v1.1 JSON object with a "data" list of '
                         f'articles')
    examples = []
    for article in dataset['data']:
        title = _field(article, 'title', path, 'article')
        for paragraph in _field(article, 'paragraphs', path, f'article {title!r}'):
            context = _field(paragraph, 'context', path, f'a paragraph of {title!r}')
            for qa in _field(paragraph, 'qas', path, f'a paragraph of {title!r}'):
                qid = _field(qa, 'id', path, f'a question of {title!r}')
                where = f'question {qid}'
                answers = [(_field(a, 'text', path, where), _field(a, 'answer_start', path, where))
                           for a in _field(qa, 'answers', path, where)]
                if not answers:
                    raise TaskDataError(f'{path}: question {qid} has no answers; SQuAD v1.1 '
                                     f'questions have at least one')
                for text, start in answers:
                    check_answer_in_context(context, text, start, f'{path}: question {qid}')
                examples.append(QAExample(qid, _field(qa, 'question', path, where), context,
                                          answers, title))
    if not examples:
        raise TaskDataError(f'{path}: holds no questions')
    return examples


def served_example(fields, where):
    """The ``QAExample`` of one served input line's tab-separated ``fields``:
    ``question<TAB>context``; ``where`` (e.g. 'stdin, line 3') becomes its id."""
    if len(fields) != 2 or not all(f.strip() for f in fields):
        raise TaskDataError(f'{where}: expected question<TAB>context (one tab, both '
                            f'non-empty), found {len(fields) - 1} tabs')
    return QAExample(where, fields[0], fields[1])


def _field(record, key, path, where):
    if not isinstance(record, dict) or key not in record:
        raise TaskDataError(f'{path}: {where} lacks the key {key!r} of the SQuAD v1.1 format')
    return record[key]


def check_answer_in_context(context, text, start, where='answer'):
    """Raise ``TaskDataError`` unless ``context[start:start + len(text)] == text``, a text
    that is not blank."""
    if not isinstance(text, str) or not text.strip():
        raise TaskDataError(f'{where}: answer {text!r} is blank; expected the answer\'s text')
    if not isinstance(start, int) or not 0 <= start <= len(context) - len(text) \
            or context[start:start + len(text)] != text:
        found = context[start:start + len(text)] if isinstance(start, int) else None
        raise TaskDataError(f'{where}: answer {text!r} with answer_start={start!r} is not in '
                            f'its context (found {found!r} there); expected the answer text at '
                            f'that character offset')


def split_words(text):
    """BERT's whitespace words of ``text`` as ``(word, start_char)`` pairs."""
    words, start = [], None
    for i, char in enumerate(text):
        if char in _WHITESPACE:
            if start is not None:
                words.append((text[start:i], start))
                start = None
        elif start is None:
            start = i
    if start is not None:
        words.append((text[start:], start))
    return words


class _Aligner:
    """Character spans of a tokenizer's tokens inside one word.

    Each raw character is folded as the tokenizer folds it (its ``basic_tokenize`` when it has
    one: lower-casing, accent stripping, dropping control characters; else the tokenizer
    itself), so the tokens, without WordPiece's ``##``, spell the folded word. A word whose
    tokens do not (e.g. a context-dependent lower-casing) gives every token the whole word.
    """

    def __init__(self, tokenizer):
        self.tokenizer = tokenizer
        self._fold = getattr(tokenizer, 'basic_tokenize', tokenizer)
        self._folded, self._words = {}, {}

    def fold(self, char):
        folded = self._folded.get(char)
        if folded is None:
            folded = self._folded[char] = ''.join(self._fold(char))
        return folded

    def __call__(self, word, offset):
        """``(tokens, starts, ends)`` of ``word``, which begins at ``offset`` in the text."""
        cached = self._words.get(word)
        if cached is None:
            if len(self._words) >= _CACHE_SIZE:
                self._words.clear()
            tokens = self.tokenizer(word)
            spans = self._spans(word, tokens) or [(0, len(word))] * len(tokens)
            cached = self._words[word] = tokens, spans
        tokens, spans = cached
        return tokens, [offset + s for s, _ in spans], [offset + e for _, e in spans]

    def _spans(self, word, tokens):
        folded, raw_index = [], []
        for i, char in enumerate(word):
            piece = self.fold(char)
            folded.append(piece)
            raw_index.extend([i] * len(piece))
        folded = ''.join(folded)
        units = (self.tokenizer.basic_tokenize(word) if hasattr(self.tokenizer, 'basic_tokenize')
                 else tokens)
        if ''.join(units) != folded:
            return None
        spans, position, pieces = [], 0, []
        for unit in units:
            unit_pieces = self.tokenizer(unit) if units is not tokens else [unit]
            pieces.extend(unit_pieces)
            if unit_pieces == ['<unk>']:  # a word WordPiece cannot split: the whole unit
                spans.append((position, position + len(unit)))
            else:
                texts = [p[2:] if p.startswith('##') and i else p
                         for i, p in enumerate(unit_pieces)]
                if ''.join(texts) != unit:
                    return None
                start = position
                for text in texts:
                    spans.append((start, start + len(text)))
                    start += len(text)
            position += len(unit)
        if pieces != list(tokens) or any(s == e for s, e in spans):
            return None
        return [(raw_index[s], raw_index[e - 1] + 1) for s, e in spans]


def token_offsets(text, tokenizer, aligner=None):
    """``(tokens, starts, ends)``: the tokens of ``text`` and the raw character span
    ``text[starts[i]:ends[i]]`` each came from."""
    aligner = aligner or _Aligner(tokenizer)
    tokens, starts, ends = [], [], []
    for word, offset in split_words(text):
        word_tokens, word_starts, word_ends = aligner(word, offset)
        tokens.extend(word_tokens)
        starts.extend(word_starts)
        ends.extend(word_ends)
    return tokens, np.array(starts, dtype=np.int64), np.array(ends, dtype=np.int64)


def answer_token_span(starts, ends, text, answer_start, where='answer'):
    """First and last token covering the characters of an answer."""
    # Token spans run left to right: the first ending after the answer's start, the last
    # starting before its end
    first = int(np.searchsorted(ends, answer_start, side='right'))
    last = int(np.searchsorted(starts, answer_start + len(text), side='left')) - 1
    if first > last:
        raise TaskDataError(f'{where}: answer {text!r} at answer_start={answer_start} covers '
                            f'no token of the context')
    return first, last


def window_starts(num_tokens, window_len, doc_stride):
    """Start token of each window: ``0, doc_stride, 2 * doc_stride, ...`` until a window
    reaches the last token. ``doc_stride`` is the step between starts, so every token is
    covered when ``1 <= doc_stride <= window_len``."""
    if not 1 <= doc_stride <= window_len:
        raise ValueError(f'doc_stride={doc_stride}: expected 1 to {window_len} (the window '
                         f'length), else tokens between windows would be skipped')
    starts = [0]
    while starts[-1] + window_len < num_tokens:
        starts.append(starts[-1] + doc_stride)
    return starts


def default_doc_stride(max_len):
    """BERT's 128 for a max_len of 384, in proportion for other lengths."""
    return max(1, max_len // 3)


def default_max_query_len(max_len):
    """BERT's 64 for a max_len of 384, in proportion for other lengths."""
    return max(1, max_len // 6)


def window_settings(max_len, doc_stride=None, max_query_len=None):
    """``(doc_stride, max_query_len)`` for windows of ``max_len`` tokens, defaults filled in;
    ValueError unless they leave room for the question and a context token and make windows
    that cover every context token."""
    max_query_len = default_max_query_len(max_len) if max_query_len is None else max_query_len
    doc_stride = default_doc_stride(max_len) if doc_stride is None else doc_stride
    min_window = max_len - 3 - max_query_len
    if max_query_len < 1 or min_window < 1:
        raise ValueError(f'max_len={max_len}, max_query_len={max_query_len}: expected room for '
                         f'<cls>, <sep>, <sep>, the question and at least one context token')
    if not 1 <= doc_stride <= min_window:
        raise ValueError(f'doc_stride={doc_stride}: expected 1 to {min_window} (the shortest '
                         f'window: max_len - 3 - max_query_len), so that windows cover every '
                         f'context token')
    return doc_stride, max_query_len


_SPECIALS = ['<cls>', '<sep>', '<pad>', '<unk>']


def _token_ids(vocab):
    """tokens -> ids through ``vocab`` (a d2l ``Vocab`` or a token -> id dict)."""
    mapping = getattr(vocab, 'token_to_idx', vocab)
    for special in _SPECIALS:
        if special not in mapping:
            raise ValueError(f'vocab lacks {special!r}; expected d2l\'s special tokens')
    unk = mapping['<unk>']
    return lambda tokens: [mapping.get(token, unk) for token in tokens]


def encode_examples(examples, tokenizer, vocab, max_len, doc_stride=None, max_query_len=None):
    """The ``Features`` of ``examples`` (``QAExample``s; answers optional), one row per
    window: ``labels`` (int32, (n, 2)) are the answer's start/end positions, ``(0, 0)`` when
    it is not in the window; ``example_index`` the example of each row; ``extra`` holds
    ``char_starts``/``char_ends`` ((n, max_len), the raw context span of each context token,
    -1 elsewhere), ``window_start`` ((n,), the context token each window starts at),
    ``mismatches`` (``(qid, gold, recovered)`` of gold answers that do not round-trip),
    ``answers_checked`` and ``unplaced`` (qids whose answer lies whole in no window).

    ``doc_stride`` (default ``max_len // 3``) is the step between window starts;
    ``max_query_len`` (default ``max_len // 6``) truncates questions. Labels come from each
    example's first answer; every answer is round-tripped to raw text.
    """
    doc_stride, max_query_len = window_settings(max_len, doc_stride, max_query_len)
    to_ids, aligner = _token_ids(vocab), _Aligner(tokenizer)
    specials = dict(zip(_SPECIALS, to_ids(_SPECIALS)))
    rows, mismatches, unplaced, checked, contexts = [], [], [], 0, {}
    for index, example in enumerate(examples):
        query_ids = to_ids(tokenizer(example.question)[:max_query_len])
        if example.context not in contexts:  # SQuAD asks several questions per context
            tokens, starts, ends = token_offsets(example.context, tokenizer, aligner)
            contexts[example.context] = to_ids(tokens), starts, ends
        tokens, starts, ends = contexts[example.context]
        label = None
        for number, (text, answer_start) in enumerate(example.answers):
            where = f'question {example.qid}'
            check_answer_in_context(example.context, text, answer_start, where)
            first, last = answer_token_span(starts, ends, text, answer_start, where)
            recovered = example.context[starts[first]:ends[last]]
            checked += 1
            if recovered != text:
                mismatches.append((example.qid, text, recovered))
            if number == 0:
                label = (first, last)
        window_len = max_len - 3 - len(query_ids)
        windows = [_window(index, query_ids, tokens, starts, ends, start,
                           min(start + window_len, len(tokens)), label, specials)
                   for start in window_starts(len(tokens), window_len, doc_stride)]
        if label is not None and all(w['positions'] == (0, 0) for w in windows):
            unplaced.append(example.qid)
        rows.extend(windows)
    features = _stack(rows, max_len, specials['<pad>'])
    features.extra.update(mismatches=mismatches, answers_checked=checked, unplaced=unplaced)
    return features


def _window(index, query, tokens, starts, ends, start, stop, label, specials):
    """One window's ids (``<cls> query <sep> tokens[start:stop] <sep>``) and bookkeeping."""
    offset = len(query) + 2  # position of the window's first context token
    cls, sep = specials['<cls>'], specials['<sep>']
    ids = [cls] + query + [sep] + tokens[start:stop] + [sep]
    positions = (0, 0)
    if label is not None and start <= label[0] and label[1] < stop:
        positions = (label[0] - start + offset, label[1] - start + offset)
    return dict(index=index, ids=ids, offset=offset, positions=positions, start=start,
                starts=starts[start:stop], ends=ends[start:stop])


def _stack(rows, max_len, pad):
    n = len(rows)
    tokens = np.full((n, max_len), pad, dtype=np.int32)
    segments = np.zeros((n, max_len), dtype=np.int32)
    char_starts = np.full((n, max_len), -1, dtype=np.int64)
    char_ends = np.full((n, max_len), -1, dtype=np.int64)
    for r, row in enumerate(rows):
        ids, offset, width = row['ids'], row['offset'], len(row['starts'])
        tokens[r, :len(ids)] = ids
        segments[r, offset:len(ids)] = 1
        char_starts[r, offset:offset + width] = row['starts']
        char_ends[r, offset:offset + width] = row['ends']
    return Features(
        tokens=tokens, segments=segments,
        valid_lens=np.array([len(row['ids']) for row in rows], dtype=np.float32),
        labels=np.array([row['positions'] for row in rows], dtype=np.int32).reshape(n, 2),
        example_index=np.array([row['index'] for row in rows], dtype=np.int64),
        extra=dict(char_starts=char_starts, char_ends=char_ends,
                   window_start=np.array([row['start'] for row in rows], dtype=np.int64)))
