"""Stale gradients: which parameters, why, and what each policy does.

The d2l case: a BERTClassifier built from a BERTModel shares its encoder and pooler; training
every parameter of both leaves the MLM and NSP heads without gradient.
"""
import warnings

import mxnet as mx
import numpy as np
import pytest

from gluonbert.train.sharding import shard_batch
from gluonbert.train.stale import StaleGradientError
from gluonbert.train.trainer import BERTTrainer
from tiny_bert import random_batch, summed_loss, tiny_classifier, values

HEADS = {'mlm.mlp.0.weight', 'mlm.mlp.0.bias', 'mlm.mlp.1.gamma', 'mlm.mlp.1.beta',
         'mlm.mlp.2.weight', 'mlm.mlp.2.bias', 'nsp.output.weight', 'nsp.output.bias'}


def one_step(net, trainer, seed=0, size=4):
    trainer.backward(summed_loss(net, random_batch(np.random.RandomState(seed), size)))
    return trainer.step(size)


def test_the_mlm_and_nsp_heads_of_a_classifier_are_reported_unused():
    net, bert = tiny_classifier()
    trainer = BERTTrainer([net, bert], lr=1e-3, quiet=True)
    with pytest.raises(StaleGradientError) as error:
        one_step(net, trainer)
    report = trainer.stale_policy.last_report
    assert {e.name for e in report} == HEADS
    assert {e.reason for e in report} == {'unused'}
    assert all(f'{name}: unused' in str(error.value) for name in HEADS)
    assert 'Stale is not frozen' in str(error.value)


def test_a_tied_mlm_decoder_is_the_token_embedding_and_not_stale():
    net, bert = tiny_classifier(tie_mlm_decoder=True)
    trainer = BERTTrainer([net, bert], lr=1e-3, stale='skip', quiet=True)
    one_step(net, trainer)
    stale = {e.name for e in trainer.stale_policy.last_report}
    assert stale == HEADS - {'mlm.mlp.2.weight'}
    assert 'encoder.token_embedding.weight' in trainer.named


def test_skip_leaves_stale_parameters_untouched_and_updates_the_rest():
    net, bert = tiny_classifier()
    trainer = BERTTrainer([net, bert], lr=1e-2, stale='skip', quiet=True)
    before = values(trainer.named)
    with warnings.catch_warnings():
        warnings.simplefilter('error')
        # scipy, when installed, warns about its own deprecated names inside mx.nd.array
        warnings.simplefilter('ignore', DeprecationWarning)
        outcome = one_step(net, trainer)
    after = values(trainer.named)
    assert outcome.action == 'applied' and set(outcome.stale) == HEADS
    for name in trainer.named:
        assert np.array_equal(before[name], after[name]) == (name in HEADS), name


def test_warn_warns_once_for_the_same_stale_parameters():
    net, bert = tiny_classifier()
    trainer = BERTTrainer([net, bert], lr=1e-3, stale='warn', quiet=True)
    with pytest.warns(UserWarning, match='nsp.output.bias: unused') as record:
        one_step(net, trainer, seed=0)
        one_step(net, trainer, seed=1)
    assert [issubclass(w.category, UserWarning) for w in record].count(True) == 1


def test_expected_stale_parameters_pass_under_the_error_policy():
    net, bert = tiny_classifier()
    trainer = BERTTrainer([net, bert], lr=1e-3, expect_stale=r'^(mlm|nsp)\.', quiet=True)
    assert one_step(net, trainer).action == 'applied'


def test_frozen_parameters_are_not_stale():
    net, bert = tiny_classifier()
    trainer = BERTTrainer([net, bert], lr=1e-3, freeze=r'^(mlm|nsp)\.', quiet=True)
    assert one_step(net, trainer).action == 'applied'
    assert trainer.stale_policy.last_report == []
    assert all(trainer.named[name].grad_req == 'null' for name in HEADS)


def test_a_device_without_data_is_reported_and_adds_nothing_to_the_update():
    devices = [mx.cpu(0), mx.cpu(1)]
    rng = np.random.RandomState(0)
    first, second = random_batch(rng, 4), random_batch(rng, 2)

    two, _ = tiny_classifier(contexts=devices)
    trainer = BERTTrainer(two, 'sgd', lr=0.1, wd=0.0, stale='skip', quiet=True)
    trainer.backward([summed_loss(two, s) for s in shard_batch(first, devices)])
    trainer.step(4)
    # Only cpu(0) gets data: cpu(1) still holds the first step's gradient
    trainer.backward([summed_loss(two, shard_batch(second, devices[:1])[0])])
    trainer.step(2)
    report = trainer.stale_policy.last_report
    assert report and {(e.reason, e.devices) for e in report} == {('idle device', ('cpu(1)',))}

    one, _ = tiny_classifier()
    reference = BERTTrainer(one, 'sgd', lr=0.1, wd=0.0, quiet=True)
    for batch in (first, second):
        reference.backward(summed_loss(one, batch))
        reference.step(batch[0].shape[0])
    expected = values(reference.named)
    for name, param in trainer.named.items():
        for copy in param.list_data():  # both devices hold the same, correct values
            np.testing.assert_allclose(copy.asnumpy(), expected[name], rtol=1e-5, atol=1e-6,
                                       err_msg=f'{name} on {copy.context}')


def test_bad_policy_and_unmatched_expected_pattern_are_errors():
    net, _ = tiny_classifier(hybridize=False)
    with pytest.raises(ValueError, match="stale='ignore'"):
        BERTTrainer(net, lr=1e-3, stale='ignore', quiet=True)
    with pytest.raises(ValueError, match=r"expect_stale='\^mlm' matches no trainable"):
        BERTTrainer(net, lr=1e-3, expect_stale='^mlm', quiet=True)
