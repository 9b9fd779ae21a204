"""Extractive QA outputs: start/end logits of an example's windows -> its n best answer texts.

One rule over all windows of an example (google-research/bert #783): a span is a start and an
end token of the context, end not before start, at most ``max_answer_len`` tokens long, whose
start token is in the window where that token has most context (``extra['max_context']``),
so each span is scored in exactly one window; its score is start logit + end logit there.
The search is exact (every such span of every window), not BERT's top-20 starts x ends
shortcut. ``<cls>`` (no answer) is never a candidate: every SQuAD v1.1 question has one.
The answer text is the raw context between the span's first and last token's characters.

Pure numpy (no MXNet): ``export/predict.py`` serves QA with this same code.
"""
import numpy as np


def window_spans(start_logits, end_logits, char_starts, max_context, max_answer_len, n_best):
    """The ``n_best`` best spans of one window as ``(score, start, end)``, best first."""
    context = np.flatnonzero(char_starts >= 0)
    if not len(context):
        return []
    first, last = context[0], context[-1] + 1
    starts = start_logits[first:last].astype(np.float64)
    ends = end_logits[first:last].astype(np.float64)
    scores = starts[:, None] + ends[None, :]
    length = np.arange(last - first)[None, :] - np.arange(last - first)[:, None]
    allowed = (length >= 0) & (length < max_answer_len) & max_context[first:last, None]
    scores = np.where(allowed, scores, -np.inf)
    flat = scores.reshape(-1)
    count = min(n_best, int(allowed.sum()))
    if count == 0:
        return []
    top = np.argpartition(-flat, count - 1)[:count]
    top = top[np.argsort(-flat[top], kind='stable')]
    width = last - first
    return [(float(flat[i]), first + i // width, first + i % width) for i in top]


def nbest_answers(features, start_logits, end_logits, contexts, n_best=20, max_answer_len=30):
    """Per example (in ``contexts`` order), its ``n_best`` answers, best first, as dicts
    ``{'text', 'score', 'probability', 'start_char', 'end_char'}`` (probability: softmax of
    the scores over the n-best list, as BERT reports it); empty when no span qualifies.

    ``features`` are the windows (``qa_windows.encode_examples``) the logits, each
    ``(num_windows, max_len)``, were computed on; ``contexts`` the raw context of each
    example.
    """
    if n_best < 1 or max_answer_len < 1:
        raise ValueError(f'n_best={n_best}, max_answer_len={max_answer_len}: expected both >= 1')
    start_logits, end_logits = np.asarray(start_logits), np.asarray(end_logits)
    shape = features.tokens.shape
    if start_logits.shape != shape or end_logits.shape != shape:
        raise ValueError(f'logits of shapes {start_logits.shape} and {end_logits.shape}; '
                         f'expected {shape}, one row per window')
    char_starts, char_ends = features.extra['char_starts'], features.extra['char_ends']
    candidates = [[] for _ in contexts]
    for w, example in enumerate(features.example_index):
        for score, start, end in window_spans(start_logits[w], end_logits[w], char_starts[w],
                                              features.extra['max_context'][w],
                                              max_answer_len, n_best):
            candidates[example].append((score, int(char_starts[w, start]),
                                        int(char_ends[w, end])))
    results = []
    for context, spans in zip(contexts, candidates):
        spans = sorted(spans, key=lambda span: -span[0])[:n_best]
        scores = np.array([score for score, _, _ in spans])
        probs = np.exp(scores - scores.max()) if len(spans) else scores
        probs = probs / probs.sum() if len(spans) else probs
        results.append([dict(text=context[s:e], score=score, probability=float(p),
                             start_char=s, end_char=e)
                        for (score, s, e), p in zip(spans, probs)])
    return results


def best_answers(features, start_logits, end_logits, contexts, max_answer_len=30):
    """The best answer text of each example (``''`` when no span qualifies)."""
    return [nbest[0]['text'] if nbest else ''
            for nbest in nbest_answers(features, start_logits, end_logits, contexts, 1,
                                       max_answer_len)]
