"""Bad inputs to the blocks fail with an error naming the argument, the value and the expectation."""
import re

import numpy as onp
import pytest
import mxnet as mx
from mxnet import init

import gluonbert

VOCAB, HIDDEN, MAX_LEN = 30, 8, 12


@pytest.fixture(scope='module')
def net():
    model = gluonbert.BERTModel(VOCAB, HIDDEN, 16, 2, 1, 0.0, max_len=MAX_LEN)
    model.initialize(init.Xavier())
    return model


def batch(batch_size=2, seq_len=6, **override):
    arrays = dict(tokens=onp.ones((batch_size, seq_len)), segments=onp.zeros((batch_size, seq_len)),
                  valid_lens=onp.full((batch_size,), seq_len), pred_positions=onp.ones((batch_size, 2)))
    arrays.update(override)
    return [mx.nd.array(arrays[k]) for k in ('tokens', 'segments', 'valid_lens', 'pred_positions')]


@pytest.mark.parametrize('override, message', [
    (dict(tokens=onp.full((2, 6), VOCAB)), f'tokens holds 30.0; expected token ids in [0, {VOCAB})'),
    (dict(tokens=-onp.ones((2, 6))), 'tokens holds -1.0'),
    (dict(segments=onp.full((2, 6), 2)), 'segments holds 2.0; expected 0 (first sentence) or 1'),
    (dict(valid_lens=onp.array([6, 0])), 'valid_lens holds 0.0; expected whole numbers in [1, 6]'),
    (dict(valid_lens=onp.array([7, 6])), 'valid_lens holds 7.0'),
    (dict(valid_lens=onp.array([2.5, 6])), 'valid_lens holds 2.5'),
    (dict(pred_positions=onp.array([[0, 6], [1, 2]])), 'pred_positions holds 6.0; expected positions in [0, 6)'),
    (dict(segments=onp.zeros((2, 5))), 'segments shape (2, 5) differs from tokens shape (2, 6)'),
    (dict(valid_lens=onp.ones((3,))), 'valid_lens must have shape (2,)'),
    (dict(pred_positions=onp.ones((3, 2))), 'pred_positions must have shape (2, num_preds)'),
    (dict(tokens=onp.array([[1, onp.nan, 2, 3, 4, 5]] * 2)), 'tokens holds nan; expected token ids'),
    (dict(tokens=onp.full((2, 6), 2.5)), 'tokens holds 2.5; expected token ids'),
    (dict(pred_positions=onp.array([[0.5, 1], [1, 2]])), 'pred_positions holds 0.5'),
    (dict(pred_positions=onp.array([[onp.nan, 1], [1, 2]])), 'pred_positions holds nan'),
    (dict(valid_lens=onp.array([onp.nan, 6])), 'valid_lens holds nan'),
])
def test_bad_input_is_named_in_the_error(net, override, message):
    with pytest.raises(ValueError, match=re.escape(message)):
        net(*batch(**override))


@pytest.mark.parametrize('shape', [(0, 6), (2, 0)])
def test_an_empty_batch_or_zero_length_sequences_are_refused(net, shape, np_mode):
    tokens = mx.np.zeros(shape)  # NumPy mode has zero-size arrays
    with pytest.raises(ValueError, match=re.escape(f'both at least 1, got {shape}')):
        net(tokens, tokens, None)


def test_sequence_longer_than_max_len_is_refused(net):
    with pytest.raises(ValueError, match='sequence length 13 exceeds max_len=12'):
        net(*batch(seq_len=MAX_LEN + 1, pred_positions=onp.ones((2, 2))))


def test_hybridized_model_checks_inputs_too(net):
    net.hybridize(static_alloc=True, static_shape=True)
    try:
        net(*batch())
        with pytest.raises(ValueError, match='tokens holds 30.0'):
            net(*batch(tokens=onp.full((2, 6), VOCAB)))
    finally:
        net.hybridize(False)


def test_classifier_checks_its_input_tuple(net):
    classifier = gluonbert.BERTClassifier(net)
    classifier.output.initialize()
    tokens, segments, valid_lens, _ = batch(segments=onp.full((2, 6), 3))
    with pytest.raises(ValueError, match='segments holds 3.0'):
        classifier((tokens, segments, valid_lens))
    with pytest.raises(ValueError, match=r'the tuple \(tokens, segments, valid_lens\)'):
        classifier((tokens, segments))


def test_mask_lm_checks_positions_against_the_encoded_length():
    mlm = gluonbert.MaskLM(VOCAB, HIDDEN)
    mlm.initialize()
    with pytest.raises(ValueError, match=re.escape('pred_positions holds 4.0; expected positions in [0, 4)')):
        mlm(mx.nd.ones((2, 4, HIDDEN)), mx.nd.array([[0, 4], [1, 1]]))


def test_heads_that_do_not_divide_the_hidden_size_are_refused():
    with pytest.raises(ValueError, match='num_hiddens=10 must be divisible by num_heads=3'):
        gluonbert.BERTEncoder(VOCAB, 10, 16, 3, 1, 0.0)


def test_unknown_activation_is_refused():
    with pytest.raises(ValueError, match=r"activation='swish' is not supported; expected one of \('relu', 'gelu'\)"):
        gluonbert.BERTModel(VOCAB, HIDDEN, 16, 2, 1, 0.0, activation='swish')
