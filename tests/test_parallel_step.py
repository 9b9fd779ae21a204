"""One data-parallel step: 1, 2 or 3 contexts on any local KVStore give the parameters of one
context on the same batches, for pretraining and fine-tuning, uneven and too-small batches
included; a too-small batch leaves named idle contexts."""
import mxnet as mx
import numpy as np
import pytest
from mxnet import gluon, init

from gluonbert import BERTModel
from gluonbert.distributed import (ClassificationLoss, DataParallel, IdleDevicesWarning,
                                   PretrainingLoss, synthetic_pretraining_batch, worker_slice)
from gluonbert.train.pretrain import PretrainingObjective, train_bert
from gluonbert.train.sharding import shard_sizes
from gluonbert.train.trainer import BERTTrainer
from tiny_bert import random_batch, tiny_classifier, values

VOCAB_SIZE, MAX_LEN = 50, 12
BATCH_SIZES = (7, 5, 2)  # uneven on 2 and 3 contexts; the last leaves a context idle on 3
SGD = ('sgd', {'learning_rate': 0.5, 'momentum': 0.9})


def contexts_of(count):
    return [mx.cpu(i) for i in range(count)]


def pretraining_batches():
    return [synthetic_pretraining_batch(step, size, vocab_size=VOCAB_SIZE, max_len=MAX_LEN)
            for step, size in enumerate(BATCH_SIZES)]


def tiny_bert(contexts):
    mx.random.seed(0)
    net = BERTModel(VOCAB_SIZE, 16, 32, 2, 2, 0.0, max_len=MAX_LEN)
    net.initialize(init.Xavier(), ctx=contexts)
    return net


def pretrained_values(contexts, kvstore):
    net = tiny_bert(contexts)
    objective = PretrainingObjective(net, gluon.loss.SoftmaxCELoss(), VOCAB_SIZE)
    objective.hybridize(static_alloc=True, static_shape=True)
    parallel = DataParallel(net, contexts, kvstore)
    trainer = parallel.trainer(*SGD)
    for batch in pretraining_batches():
        parallel.step(trainer, batch, PretrainingLoss(objective))
    return values(net._collect_params_with_prefix())


def finetuned_values(contexts, kvstore):
    net, _ = tiny_classifier(contexts=contexts)
    parallel = DataParallel(net, contexts, kvstore)
    trainer = parallel.trainer(*SGD)
    loss = ClassificationLoss(net, gluon.loss.SoftmaxCELoss())
    for i, size in enumerate(BATCH_SIZES):
        parallel.step(trainer, random_batch(np.random.RandomState(i), size), loss)
    return values(net._collect_params_with_prefix())


def assert_same_values(actual, expected):
    assert actual.keys() == expected.keys()
    for name, value in expected.items():
        np.testing.assert_allclose(actual[name], value, rtol=1e-5, atol=1e-6, err_msg=name)


@pytest.fixture(scope='module')
def one_context_pretrained():
    return pretrained_values(contexts_of(1), 'device')


@pytest.fixture(scope='module')
def one_context_finetuned():
    return finetuned_values(contexts_of(1), 'device')


@pytest.mark.filterwarnings('ignore::gluonbert.distributed.IdleDevicesWarning')
@pytest.mark.parametrize('kvstore', ['device', 'local'])
@pytest.mark.parametrize('num_contexts', [2, 3])
def test_pretraining_on_several_contexts_gives_the_one_context_parameters(
        num_contexts, kvstore, one_context_pretrained):
    assert_same_values(pretrained_values(contexts_of(num_contexts), kvstore),
                       one_context_pretrained)


@pytest.mark.filterwarnings('ignore::gluonbert.distributed.IdleDevicesWarning')
@pytest.mark.parametrize('kvstore', ['device', 'local'])
@pytest.mark.parametrize('num_contexts', [2, 3])
def test_finetuning_on_several_contexts_gives_the_one_context_parameters(
        num_contexts, kvstore, one_context_finetuned):
    assert_same_values(finetuned_values(contexts_of(num_contexts), kvstore),
                       one_context_finetuned)


def test_a_batch_smaller_than_the_contexts_runs_on_fewer_and_names_the_idle_ones():
    contexts = contexts_of(3)
    net, _ = tiny_classifier(contexts=contexts)
    parallel = DataParallel(net, contexts)
    trainer = parallel.trainer(*SGD)
    loss = ClassificationLoss(net, gluon.loss.SoftmaxCELoss())
    with pytest.warns(IdleDevicesWarning, match=r'a batch of 2 samples left cpu\(2\) without'):
        report = parallel.step(trainer, random_batch(np.random.RandomState(0), 2), loss)
    assert report.idle == (mx.cpu(2),) and report.samples == 2 and report.applied
    assert len(report.terms) == 2  # one shard per busy context


def test_the_step_composes_with_the_bert_trainer_on_its_kvstore(one_context_finetuned):
    contexts = contexts_of(2)
    net, _ = tiny_classifier(contexts=contexts)
    parallel = DataParallel(net, contexts, 'local')
    trainer = BERTTrainer(net, 'sgd', lr=0.5, wd=0.0, optimizer_params={'momentum': 0.9},
                          kvstore=parallel.kvstore, quiet=True)
    loss = ClassificationLoss(net, gluon.loss.SoftmaxCELoss())
    for i, size in enumerate(BATCH_SIZES):
        parallel.step(trainer, random_batch(np.random.RandomState(i), size), loss)
    assert trainer.trainer._kvstore is parallel.kvstore
    assert_same_values(values(net._collect_params_with_prefix()), one_context_finetuned)


def test_train_bert_runs_on_a_trainer_of_any_local_kvstore(one_context_pretrained):
    contexts = contexts_of(2)
    net = tiny_bert(contexts)
    trainer = DataParallel(net, contexts, 'local').trainer(*SGD)
    batches = [[mx.nd.array(a, dtype=a.dtype) for a in batch] for batch in pretraining_batches()]
    train_bert(batches, net, gluon.loss.SoftmaxCELoss(), VOCAB_SIZE, contexts, len(batches),
               trainer=trainer, quiet=True)
    assert_same_values(values(net._collect_params_with_prefix()), one_context_pretrained)


def test_parameters_on_other_contexts_are_refused():
    net = tiny_bert(contexts_of(1))
    with pytest.raises(ValueError, match=r"is on \[cpu\(0\)\], the contexts are "
                                         r"\[cpu\(0\), cpu\(1\)\]; .*reset_ctx"):
        DataParallel(net, contexts_of(2))


def test_a_trainer_on_another_kvstore_is_refused():
    net = tiny_bert(contexts_of(1))
    parallel = DataParallel(net, contexts_of(1), 'local')
    trainer = gluon.Trainer(net.collect_params(), 'sgd', {'learning_rate': 0.1})
    objective = PretrainingObjective(net, gluon.loss.SoftmaxCELoss(), VOCAB_SIZE)
    with pytest.raises(ValueError, match="the trainer sums gradients with kvstore='device', "
                                         "not this DataParallel's 'local' store"):
        parallel.step(trainer, pretraining_batches()[0], PretrainingLoss(objective))


def test_workers_get_balanced_slices_and_a_too_small_batch_leaves_the_last_idle():
    batch = (np.arange(7), np.arange(7) * 10)
    slices = [worker_slice(batch, rank, 3) for rank in range(3)]
    assert [s[0].tolist() for s in slices] == [[0, 1, 2], [3, 4], [5, 6]]
    assert slices[1][1].tolist() == [30, 40]
    assert worker_slice((np.arange(1),), 1, 2) is None
    assert shard_sizes(2, 3, allow_idle=True) == [1, 1, 0]
    with pytest.raises(ValueError, match='rank=2; expected an integer in 0..1'):
        worker_slice(batch, 2, 2)


def test_synthetic_batches_are_the_same_for_the_same_step_in_any_process():
    first, again = (synthetic_pretraining_batch(3, 5, vocab_size=VOCAB_SIZE, max_len=MAX_LEN)
                    for _ in range(2))
    other = synthetic_pretraining_batch(4, 5, vocab_size=VOCAB_SIZE, max_len=MAX_LEN)
    assert all((a == b).all() for a, b in zip(first, again))
    assert not (first[0] == other[0]).all()
