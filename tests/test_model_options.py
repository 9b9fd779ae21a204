"""Options beyond d2l (real BERT's choices): GELU, embedding LayerNorm, epsilon, tied decoder."""
import math

import numpy as onp
import mxnet as mx
from mxnet import autograd, init

import gluonbert
from gluonbert.model.transformer import PositionWiseFFN

BERT_LIKE = dict(activation='gelu', embedding_layer_norm=True, layer_norm_eps=1e-12,
                 tie_mlm_decoder=True)


def inputs(batch_size=2, seq_len=7):
    rng = onp.random.RandomState(0)
    return [mx.nd.array(rng.randint(0, 40, (batch_size, seq_len))),
            mx.nd.array(rng.randint(0, 2, (batch_size, seq_len))),
            mx.nd.array([seq_len, 3]), mx.nd.array([[1, 2], [0, 2]])]


def bert(**options):
    net = gluonbert.BERTModel(40, 16, 32, 2, 2, 0.0, max_len=16, **options)
    net.initialize(init.Xavier())
    return net


def test_gelu_is_the_exact_erf_form():
    ffn = PositionWiseFFN(6, 4, activation='gelu')
    ffn.initialize(init.Xavier())
    x = mx.nd.random.normal(shape=(3, 4))
    hidden = ffn.dense1(x).asnumpy()
    gelu = 0.5 * hidden * (1 + onp.vectorize(math.erf)(hidden / math.sqrt(2)))
    expected = gelu @ ffn.dense2.weight.data().asnumpy().T + ffn.dense2.bias.data().asnumpy()
    onp.testing.assert_allclose(ffn(x).asnumpy(), expected, atol=1e-5)


def test_embedding_layer_norm_adds_its_parameters_and_epsilon():
    names = bert(embedding_layer_norm=True, layer_norm_eps=1e-12)._collect_params_with_prefix()
    assert {'encoder.embedding_ln.gamma', 'encoder.embedding_ln.beta'} <= set(names)
    assert 'encoder.embedding_ln.gamma' not in bert()._collect_params_with_prefix()
    ln = bert(layer_norm_eps=1e-12).encoder.blks[0].addnorm1.ln
    assert ln._kwargs['eps'] == 1e-12


def test_tied_decoder_shares_the_token_embedding_and_its_gradient():
    net = bert(tie_mlm_decoder=True)
    assert net.mlm.mlp[2].weight is net.encoder.token_embedding.weight
    with autograd.record():
        loss = net(*inputs())[1].sum()
    loss.backward()
    grad = net.encoder.token_embedding.weight.grad().asnumpy()
    assert onp.abs(grad).sum() > 0
    # one parameter fewer to train than the untied model
    assert len(list(net.collect_params().values())) == len(list(bert().collect_params().values())) - 1


def test_tied_model_round_trips_through_a_file(tmp_path):
    net = bert(**BERT_LIKE)
    path = str(tmp_path / 'tied.params')
    net.save_parameters(path)
    other = bert(**BERT_LIKE)
    other.load_parameters(path)
    for a, b in zip(net(*inputs()), other(*inputs())):
        onp.testing.assert_allclose(a.asnumpy(), b.asnumpy())


def test_bert_like_options_hybridize_to_the_same_numbers():
    net = bert(**BERT_LIKE)
    eager = [o.asnumpy() for o in net(*inputs())]
    net.hybridize(static_alloc=True, static_shape=True)
    for h, e in zip(net(*inputs()), eager):
        onp.testing.assert_allclose(h.asnumpy(), e, atol=1e-5)


def test_gelu_model_differs_from_relu_model_on_the_same_parameters(tmp_path):
    relu, gelu = bert(), bert(activation='gelu')
    path = str(tmp_path / 'p.params')
    relu.save_parameters(path)
    gelu.load_parameters(path)
    assert onp.abs(relu(*inputs())[0].asnumpy() - gelu(*inputs())[0].asnumpy()).max() > 1e-3
