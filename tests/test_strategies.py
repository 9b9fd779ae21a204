"""Fine-tuning strategies: R-Drop, FGM embedding noise and model averaging."""
import numpy as onp
import mxnet as mx
from mxnet import gluon, init

import gluonbert
from gluonbert.train.engine import GluonTrainer, Plain
from gluonbert.train.finetune import ClassificationLoss
from gluonbert.train.strategies import FGM, RDrop, average_parameters, symmetric_kl


def classifier(dropout, seed=0):
    mx.random.seed(seed)
    bert = gluonbert.BERTModel(30, 16, 32, 2, 1, dropout, max_len=12)
    bert.initialize(init.Xavier())
    net = gluonbert.BERTClassifier(bert)
    net.output.initialize(init.Xavier())
    return net


def shards():
    rng = onp.random.RandomState(0)
    return [(mx.nd.array(rng.randint(0, 30, (4, 8))), mx.nd.zeros((4, 8)),
             mx.nd.array([8, 5, 6, 7]), mx.nd.array([0, 1, 2, 1]))]


def grads(net):
    return {k: p.grad().asnumpy().copy() for k, p in net._collect_params_with_prefix().items()}


LOSS = gluon.loss.SoftmaxCELoss()


def losses_of(objective):
    """Per-example losses of ``objective`` on the shards, recorded for backward."""
    with mx.autograd.record():
        return [objective(shard, {})[0] for shard in shards()]


def backward(strategy, net):
    """One batch's backward pass through the engine's ``strategy`` interface."""
    trainer = GluonTrainer(gluon.Trainer(net.collect_params(), 'sgd'))
    objective = ClassificationLoss(net, LOSS)
    strategy.backward(lambda shard: objective(shard, {}), shards(), trainer)


def test_symmetric_kl_is_zero_for_equal_and_positive_for_different_predictions():
    a = mx.nd.array([[1.0, 2.0, 0.5]])
    assert abs(symmetric_kl(a, a).asscalar()) < 1e-7
    p, q = onp.array([0.5, 0.5]), onp.array([0.9, 0.1])
    expected = ((p * onp.log(p / q)).sum() + (q * onp.log(q / p)).sum()) / 2
    onp.testing.assert_allclose(symmetric_kl(mx.nd.array([onp.log(p)]),
                                             mx.nd.array([onp.log(q)])).asnumpy(), [expected],
                                rtol=1e-5)


def test_rdrop_without_dropout_is_plain_cross_entropy():
    net = classifier(dropout=0.0)
    plain = losses_of(ClassificationLoss(net, LOSS))
    rdrop = losses_of(RDrop(ClassificationLoss(net, LOSS), alpha=4.0))
    onp.testing.assert_allclose(rdrop[0].asnumpy(), plain[0].asnumpy(), rtol=1e-5, atol=1e-6)


def test_rdrop_with_dropout_adds_a_positive_consistency_term():
    net = classifier(dropout=0.5)
    mx.random.seed(1)
    without = losses_of(RDrop(ClassificationLoss(net, LOSS), alpha=0.0))
    mx.random.seed(1)
    again = losses_of(RDrop(ClassificationLoss(net, LOSS), alpha=1.0))
    assert (again[0].asnumpy() > without[0].asnumpy()).all()


def test_fgm_with_zero_noise_doubles_the_gradient_and_restores_the_embedding():
    net = classifier(dropout=0.0)
    backward(Plain(), net)
    plain = grads(net)
    embedding = net.encoder.token_embedding.weight
    before = embedding.data().asnumpy().copy()
    backward(FGM(embedding, epsilon=0.0), net)
    for name, grad in grads(net).items():
        onp.testing.assert_allclose(grad, 2 * plain[name], rtol=1e-5, atol=1e-7, err_msg=name)
    assert (embedding.data().asnumpy() == before).all()


def test_fgm_noise_changes_the_gradient_but_not_the_embedding():
    net = classifier(dropout=0.0)
    backward(Plain(), net)
    plain = grads(net)
    embedding = net.encoder.token_embedding.weight
    before = embedding.data().asnumpy().copy()
    backward(FGM(embedding, epsilon=5.0), net)
    assert not onp.allclose(grads(net)['output.weight'], 2 * plain['output.weight'])
    assert (embedding.data().asnumpy() == before).all()


def test_averaging_identical_models_is_the_identity_and_two_models_give_the_mean():
    a, b, target = classifier(0.0, seed=0), classifier(0.0, seed=0), classifier(0.0, seed=5)
    average_parameters([a, b], into=target)
    for name, p in a._collect_params_with_prefix().items():
        assert (target._collect_params_with_prefix()[name].data().asnumpy()
                == p.data().asnumpy()).all()
    c = classifier(0.0, seed=1)
    average_parameters([a, c], into=target)
    w = 'encoder.token_embedding.weight'
    onp.testing.assert_allclose(target._collect_params_with_prefix()[w].data().asnumpy(),
                                (a._collect_params_with_prefix()[w].data().asnumpy()
                                 + c._collect_params_with_prefix()[w].data().asnumpy()) / 2,
                                rtol=1e-6)
