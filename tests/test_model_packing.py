"""Packed (padding-free) encoding: the numbers of the padded path at every valid token."""
import contextlib

import numpy as onp
import pytest
import mxnet as mx
from mxnet import autograd, init

import gluonbert
from gluonbert import ops
from gluonbert.model.heads import (BERTForMultipleChoice, BERTForQuestionAnswering,
                                   BERTForSequenceClassification, BERTForTokenClassification)
from gluonbert.model import packing
from gluonbert.model.packing import packing_of

pytestmark = pytest.mark.skipif(not ops.enabled('gb_attention'),
                                reason='packing needs the gb_attention kernel')

VOCAB, SEQ_LEN = 30, 12
LENS = [12, 3, 7, 1, 9]


def tiny_bert(dropout=0.0):
    mx.random.seed(0)
    bert = gluonbert.BERTModel(VOCAB, 32, 64, 4, 2, dropout, max_len=16, activation='gelu',
                               embedding_layer_norm=True)
    bert.initialize(init.Xavier())
    return bert


def inputs(lens=LENS, choices=None):
    rng = onp.random.RandomState(0)
    shape = (len(lens),) + ((choices,) if choices else ()) + (SEQ_LEN,)
    lens = onp.array(lens if not choices else [[n] * choices for n in lens], 'float32')
    return (mx.nd.array(rng.randint(1, VOCAB, shape)), mx.nd.array(rng.randint(0, 2, shape)),
            mx.nd.array(lens))


def valid_part(output, valid_lens):
    """The outputs at valid tokens (per-token outputs) or all of them (per-sequence ones)."""
    output = output.asnumpy()
    if output.shape[:2] != valid_lens.shape + (SEQ_LEN,):
        return output
    return output[onp.arange(SEQ_LEN)[None] < valid_lens.asnumpy()[:, None]]


def run(head, batch, packed, *, hybridize, train=True):
    """The head's outputs at valid tokens and the gradients of a loss on them."""
    if hybridize:
        head.hybridize(static_alloc=True, static_shape=True)
    valid_lens = batch[2].reshape(-1)
    mode = contextlib.nullcontext() if packed else packing.padded()
    with autograd.record(train_mode=train), mode:
        outputs = head(batch)
        outputs = outputs if isinstance(outputs, (list, tuple)) else [outputs]
        weights = [mx.nd.array(onp.random.RandomState(i).randn(*o.shape)) for i, o in
                   enumerate(outputs)]
        if outputs[0].shape[:2] == (len(valid_lens), SEQ_LEN):  # per token: valid ones only
            valid = mx.nd.array(onp.arange(SEQ_LEN)[None] < valid_lens.asnumpy()[:, None])
            weights = [w * (valid if w.ndim == 2 else valid.expand_dims(-1)) for w in weights]
        loss = sum((o * w).sum() for o, w in zip(outputs, weights))
    loss.backward()
    grads = {name: p.grad().asnumpy().copy() for name, p in head.collect_params().items()}
    return [valid_part(o, valid_lens) for o in outputs], grads


HEADS = [(BERTForSequenceClassification, (3,), {}), (BERTForTokenClassification, (3,), {}),
         (BERTForQuestionAnswering, (), {}), (BERTForMultipleChoice, (), {'choices': 2})]


@pytest.mark.parametrize('hybridize', [False, True])
@pytest.mark.parametrize('cls,args,batch_options', HEADS, ids=lambda h: getattr(h, '__name__', ''))
def test_packed_heads_give_the_padded_outputs_and_gradients(cls, args, batch_options,
                                                             hybridize):
    head = cls(tiny_bert(), *args, dropout=0.0)
    head.output.initialize(init.Xavier())
    batch = inputs(**batch_options)
    padded_outputs, padded_grads = run(head, batch, False, hybridize=hybridize)
    packed_outputs, packed_grads = run(head, batch, True, hybridize=hybridize)
    for padded, packed in zip(padded_outputs, packed_outputs):
        onp.testing.assert_allclose(packed, padded, rtol=1e-5, atol=1e-5)
    for name, grad in padded_grads.items():
        onp.testing.assert_allclose(packed_grads[name], grad, rtol=1e-4, atol=1e-5,
                                    err_msg=name)


@pytest.mark.parametrize('hybridize', [False, True])
def test_with_dropout_packing_changes_nothing_at_inference(hybridize):
    head = BERTForTokenClassification(tiny_bert(dropout=0.3), 3)
    head.output.initialize(init.Xavier())
    batch = inputs()
    padded, _ = run(head, batch, False, hybridize=hybridize, train=False)
    packed, _ = run(head, batch, True, hybridize=hybridize, train=False)
    onp.testing.assert_allclose(packed[0], padded[0], rtol=1e-5, atol=1e-5)


def test_with_dropout_a_packed_step_is_reproducible_from_the_seed():
    # The row-wise dropouts count packed rows, so their masks are not the padded path's
    head = BERTForTokenClassification(tiny_bert(dropout=0.3), 3)
    head.output.initialize(init.Xavier())
    batch = inputs()
    results = []
    for _ in range(2):
        mx.random.seed(7)
        results.append(run(head, batch, True, hybridize=True))
    onp.testing.assert_array_equal(results[0][0][0], results[1][0][0])
    inference, _ = run(head, batch, True, hybridize=True, train=False)
    assert not onp.allclose(results[0][0][0], inference[0], atol=1e-3)  # dropout did drop
    for name, grad in results[0][1].items():
        assert onp.isfinite(grad).all(), name


def test_packed_attention_draws_the_dropout_mask_of_the_padded_batch():
    rng = onp.random.RandomState(0)
    heads, dim = 2, 4
    lens = onp.array(LENS, 'float32')
    padded_qkv = rng.randn(SEQ_LEN, len(LENS), 3 * heads * dim).astype('float32')
    packed, rows = packing_of(lens, SEQ_LEN, multiple=8)
    positions = packed[:int(lens.sum())].astype(int)
    packed_qkv = onp.zeros((len(packed), padded_qkv.shape[2]), 'float32')
    packed_qkv[:len(positions)] = padded_qkv.transpose(1, 0, 2).reshape(-1, heads * 3 * dim)[
        positions]

    # Gradients from valid tokens only (padded queries' outputs would send some to V and K)
    padded_dout = (onp.arange(SEQ_LEN)[:, None] < lens[None])[..., None] * onp.ones(
        (1, 1, heads * dim), 'float32')
    packed_dout = onp.zeros((len(packed), heads * dim), 'float32')
    packed_dout[:len(positions)] = 1

    def attention(qkv, dout, *extra, **attrs):
        qkv = mx.nd.array(qkv)
        qkv.attach_grad()
        mx.random.seed(3)
        with autograd.record():
            flag = mx.nd.Dropout(mx.nd.ones((1,)), p=0.5)
            out = mx.nd.gb_attention(qkv, flag, mx.nd.array(lens), *map(mx.nd.array, extra),
                                     heads=heads, dropout=0.5, masked=1, **attrs)[0]
        out.backward(mx.nd.array(dout))
        return out.asnumpy(), qkv.grad.asnumpy()

    padded_out, padded_grad = attention(padded_qkv, padded_dout)
    packed_out, packed_grad = attention(packed_qkv, packed_dout, rows, packed=1)
    at_valid = lambda x: x.transpose(1, 0, 2).reshape(-1, x.shape[2])[positions]  # noqa: E731
    onp.testing.assert_allclose(packed_out[:len(positions)], at_valid(padded_out), rtol=1e-5,
                                atol=1e-6)
    onp.testing.assert_allclose(packed_grad[:len(positions)], at_valid(padded_grad),
                                rtol=1e-4, atol=1e-5)
    # Rows that pad the packed batch to a round size: zero output, zero gradient
    assert not packed_out[len(positions):].any() and not packed_grad[len(positions):].any()


def test_packing_lays_out_the_valid_tokens_sequence_after_sequence():
    packed, rows = packing_of(onp.array([2, 1, 3]), 4, multiple=4)
    assert packed.tolist() == [0, 1, 4, 8, 9, 10, 0, 0]  # b * seq_len + s; two spare rows
    assert rows.tolist() == [[0, 1, 8, 8], [2, 8, 8, 8], [3, 4, 5, 8]]  # padding: row 8


def test_heads_keep_the_padded_path_where_the_kernel_is_off():
    head = BERTForSequenceClassification(tiny_bert(), 3, dropout=0.0)
    head.output.initialize(init.Xavier())
    batch = inputs()
    expected = head(batch).asnumpy()
    with ops.disabled('gb_attention'):
        assert not head.encoder.packs()
        onp.testing.assert_allclose(head(batch).asnumpy(), expected, rtol=1e-5, atol=1e-5)


def test_the_encoder_refuses_packed_tokens_without_rows():
    bert = tiny_bert()
    tokens, segments, valid_lens = inputs()
    packed, _ = packing_of(valid_lens.asnumpy(), SEQ_LEN)
    with pytest.raises(ValueError, match='packed tokens need'):
        bert.encoder(tokens, segments, valid_lens, mx.nd.array(packed))


def test_a_hybridized_head_switches_between_packed_and_padded_graphs():
    head = BERTForTokenClassification(tiny_bert(), 3, dropout=0.0)
    head.output.initialize(init.Xavier())
    head.hybridize(static_alloc=True, static_shape=True)
    batch = inputs()
    packed = head(batch).asnumpy()
    with packing.padded():
        padded = head(batch).asnumpy()
    padding = onp.arange(SEQ_LEN)[None] >= onp.array(LENS)[:, None]
    # Zero encodings at packed padding: every padding position gets the output layer's bias
    bias = head.output.bias.data().asnumpy()
    onp.testing.assert_allclose(packed[padding], onp.broadcast_to(bias, packed[padding].shape))
    assert not onp.allclose(padded[padding], packed[padding])
    onp.testing.assert_allclose(packed[~padding], padded[~padding], rtol=1e-5, atol=1e-5)
    onp.testing.assert_array_equal(head(batch).asnumpy(), packed)


@pytest.mark.parametrize('hybridize', [False, True])
def test_the_packed_pretraining_objective_gives_the_padded_losses_and_gradients(hybridize):
    from mxnet import gluon
    from gluonbert.train.pretrain import PretrainingObjective
    objective = PretrainingObjective(tiny_bert(), gluon.loss.SoftmaxCELoss(), VOCAB)
    if hybridize:
        objective.hybridize(static_alloc=True, static_shape=True)
    tokens, segments, valid_lens = inputs()
    rng = onp.random.RandomState(1)
    # Predictions at valid tokens (padding's encodings are not the padded path's)
    pred_positions = mx.nd.array([[rng.randint(n), rng.randint(n)] for n in LENS])
    batch = (tokens, segments, valid_lens, pred_positions, mx.nd.ones((len(LENS), 2)),
             mx.nd.array(rng.randint(0, VOCAB, (len(LENS), 2))),
             mx.nd.array(rng.randint(0, 2, len(LENS))))
    results = []
    for mode in (packing.padded, contextlib.nullcontext):
        with autograd.record(), mode():
            sums = objective(*batch)
            loss = sums[0] + sums[2]
        loss.backward()
        results.append(([s.asnumpy() for s in sums],
                        {name: p.grad().asnumpy().copy()
                         for name, p in objective.collect_params().items()
                         if p.grad_req != 'null'}))
    (padded_sums, padded_grads), (packed_sums, packed_grads) = results
    onp.testing.assert_allclose(packed_sums, padded_sums, rtol=1e-5)
    for name, grad in padded_grads.items():
        onp.testing.assert_allclose(packed_grads[name], grad, rtol=1e-4, atol=1e-5,
                                    err_msg=name)
