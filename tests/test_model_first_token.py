"""Pooling heads compute the last block at the ``<cls>`` tokens only: the numbers of the
whole encoder's output at position 0, padded or packed, hybridized or not."""
import contextlib

import numpy as onp
import pytest
import mxnet as mx
from mxnet import autograd, init

import gluonbert
from gluonbert.model import packing
from gluonbert.model.heads import BERTForMultipleChoice, BERTForSequenceClassification

VOCAB, SEQ_LEN, LENS = 30, 12, [12, 3, 7, 1, 9]


def tiny_bert():
    mx.random.seed(0)
    bert = gluonbert.BERTModel(VOCAB, 32, 64, 4, 2, 0.0, max_len=16, activation='gelu',
                               embedding_layer_norm=True)
    bert.initialize(init.Xavier())
    return bert


def batch(choices=None):
    rng = onp.random.RandomState(0)
    shape = (len(LENS),) + ((choices,) if choices else ()) + (SEQ_LEN,)
    lens = onp.array(LENS if not choices else [[n] * choices for n in LENS], 'float32')
    return (mx.nd.array(rng.randint(1, VOCAB, shape)), mx.nd.array(rng.randint(0, 2, shape)),
            mx.nd.array(lens))


def whole_encoder_scores(head, tokens, segments, valid_lens):
    """The head's scores from the whole encoder's output at position 0 (d2l's way)."""
    flat = [x.reshape((-1, SEQ_LEN)) for x in (tokens, segments)]
    cls = head.encoder(*flat, valid_lens.reshape(-1))[:, 0]
    scores = head.output(head.dropout(head.hidden(cls)))
    return scores.reshape(tokens.shape[:2]) if tokens.ndim == 3 else scores


def outputs_and_grads(head, compute):
    with autograd.record():
        scores = compute()
        weights = mx.nd.array(onp.random.RandomState(1).randn(*scores.shape))
        loss = (scores * weights).sum()
    loss.backward()
    return scores.asnumpy(), {name: p.grad().asnumpy().copy()
                              for name, p in head.collect_params().items()}


@pytest.mark.parametrize('packed', [True, False], ids=['packed', 'padded'])
@pytest.mark.parametrize('hybridize', [False, True])
@pytest.mark.parametrize('cls,args,choices', [(BERTForSequenceClassification, (3,), None),
                                              (BERTForMultipleChoice, (), 2)],
                         ids=['sequence', 'choice'])
def test_pooling_heads_give_the_whole_encoders_outputs_and_gradients(cls, args, choices,
                                                                     hybridize, packed):
    head = cls(tiny_bert(), *args, dropout=0.0)
    head.output.initialize(init.Xavier())
    inputs = batch(choices)
    expected, expected_grads = outputs_and_grads(
        head, lambda: whole_encoder_scores(head, *inputs))
    if hybridize:
        head.hybridize(static_alloc=True, static_shape=True)
    mode = contextlib.nullcontext() if packed else packing.padded()
    with mode:
        got, grads = outputs_and_grads(head, lambda: head(inputs))
    onp.testing.assert_allclose(got, expected, rtol=1e-5, atol=1e-6)
    assert grads.keys() == expected_grads.keys()
    for name, grad in grads.items():
        onp.testing.assert_allclose(grad, expected_grads[name], rtol=1e-4, atol=1e-6,
                                    err_msg=name)
    # The last block's feed-forward gets gradient: its work is not skipped, only narrowed
    assert onp.abs(grads[[n for n in grads if 'dense2_weight' in n][-1]]).sum() > 0
