"""Task heads: each learns a small synthetic task, and each loss means what it says."""
import numpy as onp
import pytest
import mxnet as mx
from mxnet import autograd, gluon, init

import gluonbert
from gluonbert.model.heads import (IGNORE_LABEL, BERTForMultipleChoice, BERTForQuestionAnswering,
                                   BERTForSequenceClassification, BERTForTokenClassification)

VOCAB, SEQ_LEN = 20, 10


def tiny_bert(seed=0):
    mx.random.seed(seed)
    bert = gluonbert.BERTModel(VOCAB, 32, 64, 2, 2, 0.0, max_len=16)
    bert.initialize(init.Xavier())
    return bert


def make_head(cls, *args, **kwargs):
    head = cls(tiny_bert(), *args, **kwargs)
    head.output.initialize(init.Xavier())
    return head


def fit(head, make_batch, steps=150, lr=3e-3):
    """Train ``head`` on fresh synthetic batches; returns the last batch's outputs and labels."""
    trainer = gluon.Trainer(head.collect_params(), 'adam', {'learning_rate': lr})
    rng = onp.random.RandomState(0)
    for _ in range(steps):
        inputs, labels = make_batch(rng)
        with autograd.record():
            loss = head.loss(head(inputs), labels)
        loss.backward()
        trainer.step(labels.shape[0])
    inputs, labels = make_batch(rng, 200)
    return head(inputs), labels


def sequences(rng, batch_size, lens=None):
    tokens = rng.randint(5, VOCAB, (batch_size, SEQ_LEN))
    lens = rng.randint(4, SEQ_LEN + 1, batch_size) if lens is None else lens
    return tokens, lens


def as_inputs(tokens, lens):
    return (mx.nd.array(tokens), mx.nd.zeros(tokens.shape), mx.nd.array(lens))


def test_sequence_classification_learns_whether_a_token_occurs():
    def batch(rng, n=32):
        tokens, lens = sequences(rng, n)
        tokens[tokens == 5] = 6
        labels = rng.randint(0, 2, n)
        where = rng.randint(0, 4, n)  # inside every valid length (>= 4)
        tokens[labels == 1, where[labels == 1]] = 5
        return as_inputs(tokens, lens), mx.nd.array(labels)
    logits, labels = fit(make_head(BERTForSequenceClassification, 2), batch)
    assert (logits.argmax(axis=1).asnumpy() == labels.asnumpy()).mean() > 0.9


def test_regression_with_one_label_learns_a_count_with_squared_error():
    def batch(rng, n=32):
        tokens, lens = sequences(rng, n, lens=onp.full(n, SEQ_LEN))
        return as_inputs(tokens, lens), mx.nd.array((tokens < 10).sum(axis=1) / 2.0)
    head = make_head(BERTForSequenceClassification, 1)
    inputs, targets = batch(onp.random.RandomState(1), 200)
    before = head.loss(head(inputs), targets).mean().asscalar()
    predictions, targets = fit(head, batch, steps=200)
    assert predictions.shape == targets.shape == (200,)
    after = head.loss(predictions, targets).mean().asscalar()
    assert after < before / 5 and after < 0.5


def test_token_classification_learns_a_per_token_rule_and_ignores_padding():
    def batch(rng, n=32):
        tokens, lens = sequences(rng, n)
        labels = tokens % 2
        labels[onp.arange(SEQ_LEN)[None] >= lens[:, None]] = IGNORE_LABEL
        return as_inputs(tokens, lens), mx.nd.array(labels)
    logits, labels = fit(make_head(BERTForTokenClassification, 2), batch)
    scored = labels.asnumpy() != IGNORE_LABEL
    assert (logits.argmax(axis=2).asnumpy() == labels.asnumpy())[scored].mean() > 0.95


def test_token_loss_is_the_mean_over_scored_tokens_only():
    logits = mx.nd.array([[[0, 0], [5, 0], [0, 9]]])
    loss = BERTForTokenClassification.loss(None, logits, mx.nd.array([[0, 0, IGNORE_LABEL]]))
    onp.testing.assert_allclose(loss.asnumpy(), [(onp.log(2) + onp.log(1 + onp.exp(-5))) / 2],
                                rtol=1e-5)


def test_question_answering_learns_spans_and_masks_padding():
    def batch(rng, n=32):
        tokens, lens = sequences(rng, n)
        tokens[(tokens == 7) | (tokens == 8)] = 9
        start = rng.randint(0, 2, n)
        end = start + rng.randint(1, 3, n)  # inside every valid length (>= 4)
        tokens[onp.arange(n), start] = 7
        tokens[onp.arange(n), end] = 8
        return as_inputs(tokens, lens), mx.nd.array(onp.stack([start, end], axis=1))
    head = make_head(BERTForQuestionAnswering)
    (start_logits, end_logits), labels = fit(head, batch)
    assert (start_logits.argmax(axis=1).asnumpy() == labels[:, 0].asnumpy()).mean() > 0.9
    assert (end_logits.argmax(axis=1).asnumpy() == labels[:, 1].asnumpy()).mean() > 0.9
    inputs, _ = batch(onp.random.RandomState(3), 8)
    padded = onp.arange(SEQ_LEN)[None] >= inputs[2].asnumpy()[:, None]
    assert padded.any() and (head(inputs)[0].asnumpy()[padded] < -1e3).all()


def test_answer_positions_outside_the_sequence_are_clamped_and_ignored():
    logits = (mx.nd.zeros((2, 4)), mx.nd.zeros((2, 4)))
    loss = BERTForQuestionAnswering.loss(None, logits, mx.nd.array([[1, 2], [9, 2]]))
    onp.testing.assert_allclose(loss.asnumpy(), [onp.log(4), onp.log(4) / 2], rtol=1e-5)


def test_multiple_choice_flattens_choices_and_picks_the_marked_one():
    def batch(rng, n=32, choices=3):
        tokens = rng.randint(6, VOCAB, (n, choices, SEQ_LEN))
        answer = rng.randint(0, choices, n)
        tokens[onp.arange(n), answer, rng.randint(0, 4, n)] = 5
        lens = rng.randint(4, SEQ_LEN + 1, (n, choices))
        return (mx.nd.array(tokens), mx.nd.zeros(tokens.shape), mx.nd.array(lens)), \
            mx.nd.array(answer)
    logits, labels = fit(make_head(BERTForMultipleChoice), batch)
    assert logits.shape == (200, 3)
    assert (logits.argmax(axis=1).asnumpy() == labels.asnumpy()).mean() > 0.9


def test_multiple_choice_refuses_two_dimensional_tokens():
    head = make_head(BERTForMultipleChoice)
    with pytest.raises(ValueError, match=r'tokens must have shape \(batch_size, num_choices'):
        head((mx.nd.ones((2, 5)), mx.nd.zeros((2, 5)), mx.nd.array([5, 5])))


def test_heads_run_hybridized_and_under_set_np(np_mode):
    head = make_head(BERTForSequenceClassification, 3)
    tokens, lens = sequences(onp.random.RandomState(0), 4)
    inputs = tuple(x.as_np_ndarray() for x in as_inputs(tokens, lens))
    eager = head(inputs).asnumpy()
    head.hybridize(static_alloc=True, static_shape=True)
    onp.testing.assert_allclose(head(inputs).asnumpy(), eager, atol=1e-5)
    assert head.loss(head(inputs), mx.np.array([0, 1, 2, 0])).shape == (4,)
