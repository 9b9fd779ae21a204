"""The engine's data-parallel step: 1, 2 or 3 contexts on any local KVStore give the
parameters of one context on the same batches, for pretraining and fine-tuning, uneven and
too-small batches included; a too-small batch leaves named idle contexts."""
import mxnet as mx
import numpy as np
import pytest
from mxnet import gluon, init

from gluonbert import BERTModel
from gluonbert.data.synthetic import synthetic_pretraining_batch
from gluonbert.distributed import create_kvstore
from gluonbert.distributed.kvstore import resolve_update_on_kvstore
from gluonbert.train.engine import Engine, IdleDevicesWarning
from gluonbert.train.finetune import ClassificationLoss
from gluonbert.train.pretrain import PretrainingLoss, PretrainingObjective, train_bert
from gluonbert.train.sharding import shard_sizes, worker_slice
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


def sgd_trainer(net, kvstore):
    """A plain gluon.Trainer on a KVStore of type ``kvstore`` (created and checked)."""
    return gluon.Trainer(net.collect_params(), *SGD, kvstore=create_kvstore(kvstore),
                         update_on_kvstore=resolve_update_on_kvstore(kvstore))


def pretraining_engine(net, contexts, trainer):
    objective = PretrainingObjective(net, gluon.loss.SoftmaxCELoss(), VOCAB_SIZE)
    objective.hybridize(static_alloc=True, static_shape=True)
    return Engine(PretrainingLoss(objective), trainer, contexts)


def pretrained_values(contexts, kvstore):
    net = tiny_bert(contexts)
    engine = pretraining_engine(net, contexts, sgd_trainer(net, kvstore))
    for batch in pretraining_batches():
        engine.step(batch)
    return values(net._collect_params_with_prefix())


def finetuned_values(contexts, kvstore):
    net, _ = tiny_classifier(contexts=contexts)
    engine = Engine(ClassificationLoss(net, gluon.loss.SoftmaxCELoss()),
                    sgd_trainer(net, kvstore), contexts)
    for i, size in enumerate(BATCH_SIZES):
        engine.step(random_batch(np.random.RandomState(i), size))
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


@pytest.mark.filterwarnings('ignore::gluonbert.train.engine.IdleDevicesWarning')
@pytest.mark.parametrize('kvstore', ['device', 'local'])
@pytest.mark.parametrize('num_contexts', [2, 3])
def test_pretraining_on_several_contexts_gives_the_one_context_parameters(
        num_contexts, kvstore, one_context_pretrained):
    assert_same_values(pretrained_values(contexts_of(num_contexts), kvstore),
                       one_context_pretrained)


@pytest.mark.filterwarnings('ignore::gluonbert.train.engine.IdleDevicesWarning')
@pytest.mark.parametrize('kvstore', ['device', 'local'])
@pytest.mark.parametrize('num_contexts', [2, 3])
def test_finetuning_on_several_contexts_gives_the_one_context_parameters(
        num_contexts, kvstore, one_context_finetuned):
    assert_same_values(finetuned_values(contexts_of(num_contexts), kvstore),
                       one_context_finetuned)


def test_a_batch_smaller_than_the_contexts_runs_on_fewer_and_names_the_idle_ones():
    contexts = contexts_of(3)
    net, _ = tiny_classifier(contexts=contexts)
    engine = Engine(ClassificationLoss(net, gluon.loss.SoftmaxCELoss()),
                    sgd_trainer(net, 'device'), contexts)
    with pytest.warns(IdleDevicesWarning, match=r'a batch of 2 samples left cpu\(2\) without'):
        outcome = engine.step(random_batch(np.random.RandomState(0), 2))
    assert outcome.action == 'applied'
    assert {ctx for _, ctx in engine._sums} == {mx.cpu(0), mx.cpu(1)}  # statistics of 2 shards


def test_the_step_composes_with_the_bert_trainer_on_its_kvstore(one_context_finetuned):
    contexts = contexts_of(2)
    net, _ = tiny_classifier(contexts=contexts)
    store = create_kvstore('local')
    trainer = BERTTrainer(net, 'sgd', lr=0.5, wd=0.0, optimizer_params={'momentum': 0.9},
                          kvstore=store, quiet=True)
    engine = Engine(ClassificationLoss(net, gluon.loss.SoftmaxCELoss()), trainer, contexts)
    for i, size in enumerate(BATCH_SIZES):
        engine.step(random_batch(np.random.RandomState(i), size))
    assert trainer.trainer._kvstore is store
    assert_same_values(values(net._collect_params_with_prefix()), one_context_finetuned)


def test_train_bert_runs_on_a_trainer_of_any_local_kvstore(one_context_pretrained):
    contexts = contexts_of(2)
    net = tiny_bert(contexts)
    trainer = sgd_trainer(net, 'local')
    batches = [[mx.nd.array(a, dtype=a.dtype) for a in batch] for batch in pretraining_batches()]
    train_bert(batches, net, gluon.loss.SoftmaxCELoss(), VOCAB_SIZE, contexts, len(batches),
               trainer=trainer, quiet=True)
    assert_same_values(values(net._collect_params_with_prefix()), one_context_pretrained)


def test_parameters_on_other_contexts_are_refused():
    net = tiny_bert(contexts_of(1))
    with pytest.raises(ValueError, match=r"is on \[cpu\(0\)\], the contexts are "
                                         r"\[cpu\(0\), cpu\(1\)\]; .*reset_ctx"):
        pretraining_engine(net, contexts_of(2), sgd_trainer(net, 'device'))


def test_a_distributed_store_given_by_name_is_refused():
    net = tiny_bert(contexts_of(1))
    trainer = gluon.Trainer(net.collect_params(), *SGD, kvstore='dist_sync')
    with pytest.raises(ValueError, match="kvstore='dist_sync' given by name; create it with "
                                         "gluonbert.distributed.create_kvstore"):
        pretraining_engine(net, contexts_of(1), trainer)


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
