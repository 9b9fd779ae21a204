"""Extractive QA outputs: start/end logits of an example's windows -> its n best answer texts.

One rule over all windows of an example (google-research/bert #783): a span is a start and an
end token of the context, end not before start, at most ``max_answer_len`` tokens long, and it
is scored in exactly one window: of the windows holding the whole span, the one that gives it
most context, min(tokens left of it, tokens right of it) + 0.01 x window length, the first on
ties. That is BERT's ``_check_is_max_context`` applied to the whole span rather than to its
start token alone, so a long answer that starts late in one window and ends in the next is
still found in a window that holds it. The score is start logit + end logit in that window.
The search is exact (every span of every window), not BERT's top-20 starts x ends shortcut.
``<cls>`` (no answer) is never a candidate: every SQuAD v1.1 question has one.
The answer text is the raw context from the span's first token's first character to its last
token's last character.

Pure numpy (no MXNet): ``export/predict.py`` serves QA with this same code.
"""
import numpy as np


def _context_score(a, b, start, length):
    """Context of spans ``[a, b]`` (context token indices) in the window ``[start, start +
    length)``; -inf where the window does not hold the span."""
    inside = (a >= start) & (b < start + length)
    score = np.minimum(a - start, start + length - 1 - b) + 0.01 * length
    return np.where(inside, score, -np.inf)


def window_spans(start_logits, end_logits, first, window, others, max_answer_len, n_best):
    """The ``n_best`` best spans of one window as ``(score, start, end)`` positions, best
    first. ``first`` is the position of its first context token; ``window`` its ``(start
    token, length)`` in the context; ``others`` the ``(start, length)`` of the example's
    other windows."""
    start, length = window
    if length == 0:
        return []
    # spans as (first token i, extra tokens d): a band of max_answer_len ends per start
    i = np.arange(length)[:, None]
    d = np.arange(min(max_answer_len, length))[None, :]
    a, b = start + i, start + i + d
    allowed = i + d < length
    own = _context_score(a, b, start, length)
    if others:
        other_starts, other_lengths = (np.array(x)[:, None, None] for x in zip(*others))
        other = _context_score(a, b, other_starts, other_lengths)
        beaten = (other > own) | ((other == own) & (other_starts < start))
        allowed &= ~beaten.any(axis=0)
    start_scores = start_logits[first:first + length].astype(np.float64)
    end_scores = end_logits[first:first + length].astype(np.float64)
    scores = start_scores[:, None] + end_scores[np.minimum(i + d, length - 1)]
    flat = np.where(allowed, scores, -np.inf).reshape(-1)
    count = min(n_best, int(allowed.sum()))
    if count == 0:
        return []
    top = np.argpartition(-flat, count - 1)[:count]
    top = top[np.argsort(-flat[top], kind='stable')]
    width = d.shape[1]
    return [(float(flat[k]), first + k // width, first + k // width + k % width) for k in top]


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
    in_context = char_starts >= 0
    firsts = in_context.argmax(axis=1)
    windows = list(zip(features.extra['window_start'].tolist(),
                       in_context.sum(axis=1).tolist()))
    rows_of = [[] for _ in contexts]
    for row, example in enumerate(features.example_index):
        rows_of[example].append(row)
    results = []
    for context, rows in zip(contexts, rows_of):
        spans = []
        for row in rows:
            start, length = windows[row]
            others = [windows[r] for r in rows if r != row and windows[r][0] < start + length
                      and start < windows[r][0] + windows[r][1]]  # overlapping windows only
            for score, start, end in window_spans(start_logits[row], end_logits[row],
                                                  firsts[row], windows[row], others,
                                                  max_answer_len, n_best):
                spans.append((score, int(char_starts[row, start]), int(char_ends[row, end])))
        spans = sorted(spans, key=lambda span: -span[0])[:n_best]
        scores = np.array([score for score, _, _ in spans])
        probs = np.exp(scores - scores.max()) if spans else scores
        results.append([dict(text=context[s:e], score=score, probability=float(p / probs.sum()),
                             start_char=s, end_char=e)
                        for (score, s, e), p in zip(spans, probs)])
    return results


def best_answers(features, start_logits, end_logits, contexts, max_answer_len=30):
    """The best answer text of each example (``''`` when no span qualifies)."""
    return [nbest[0]['text'] if nbest else ''
            for nbest in nbest_answers(features, start_logits, end_logits, contexts, 1,
                                       max_answer_len)]
