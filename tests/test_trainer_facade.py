"""BERTTrainer as a whole: optimizer names, KVStore choice, the printed table, NumPy mode."""
import mxnet as mx
import numpy as np
import pytest

from gluonbert.optimizer import GB_AdamW, GB_BERTAdam
from gluonbert.train.sharding import shard_batch
from gluonbert.train.trainer import BERTTrainer
from tiny_bert import MAX_LEN, VOCAB, random_batch, summed_loss, tiny_classifier, values

DEVICES = [mx.cpu(0), mx.cpu(1)]


def test_short_optimizer_names_give_the_gluonbert_optimizers():
    net, _ = tiny_classifier(hybridize=False)
    assert type(BERTTrainer(net, 'bertadam', lr=1e-3, quiet=True).trainer.optimizer) is \
        GB_BERTAdam
    assert type(BERTTrainer(net, lr=1e-3, quiet=True).trainer.optimizer) is GB_AdamW


def test_an_unknown_optimizer_is_an_error():
    net, _ = tiny_classifier(hybridize=False)
    with pytest.raises(ValueError, match="optimizer='adamax2' is not known"):
        BERTTrainer(net, 'adamax2', lr=1e-3, quiet=True)


@pytest.mark.parametrize('kvstore', ['local', 'device'])
def test_the_kvstore_is_selectable_and_gives_the_one_device_result(kvstore):
    batches = [random_batch(np.random.RandomState(i), 4) for i in range(2)]
    one, _ = tiny_classifier()
    reference = BERTTrainer(one, lr=1e-2, quiet=True)
    two, _ = tiny_classifier(contexts=DEVICES)
    trainer = BERTTrainer(two, lr=1e-2, kvstore=kvstore, quiet=True)
    for batch in batches:
        reference.backward(summed_loss(one, batch))
        reference.step(4)
        trainer.backward([summed_loss(two, s) for s in shard_batch(batch, DEVICES)])
        trainer.step(4)
    assert trainer.trainer._kvstore.type == kvstore
    expected = values(reference.named)
    for name, param in trainer.named.items():
        for copy in param.list_data():
            np.testing.assert_allclose(copy.asnumpy(), expected[name], rtol=1e-5, atol=1e-5)


def test_an_asynchronous_kvstore_is_refused():
    net, _ = tiny_classifier(hybridize=False)
    with pytest.raises(ValueError, match="kvstore='dist_async' updates on the servers"):
        BERTTrainer(net, lr=1e-3, kvstore='dist_async', quiet=True)


def test_the_table_is_printed_unless_quiet(capsys):
    net, _ = tiny_classifier(hybridize=False)
    BERTTrainer(net, lr=1e-3)
    printed = capsys.readouterr().out
    assert 'encoder.blks.1.ffn.dense2.weight' in printed and '39 trainable' in printed


def test_everything_frozen_is_an_error():
    net, _ = tiny_classifier(hybridize=False)
    with pytest.raises(ValueError, match='every parameter is frozen'):
        BERTTrainer(net, lr=1e-3, freeze='.', quiet=True)


def test_it_trains_a_classifier_called_with_numpy_arrays(np_mode):
    net, _ = tiny_classifier()
    trainer = BERTTrainer(net, lr=5e-3, quiet=True)
    rng = np.random.RandomState(0)
    batch = (mx.np.array(rng.randint(1, VOCAB, (8, MAX_LEN))), mx.np.zeros((8, MAX_LEN)),
             mx.np.array(rng.randint(5, MAX_LEN + 1, 8)), mx.np.array(rng.randint(0, 3, 8)))
    losses = []
    for _ in range(15):
        loss = summed_loss(net, batch)
        trainer.backward(loss)
        assert trainer.step(8, loss=loss).action == 'applied'
        losses.append(float(loss))
    assert losses[-1] < 0.5 * losses[0]
