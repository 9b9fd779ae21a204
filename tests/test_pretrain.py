"""Pretraining: losses fall on real WikiText-2, sharding gives one device's update, and the
d2l chapter's helpers and checkpoint layout work."""
import json
import os

import numpy as onp
import pytest
import mxnet as mx
from mxnet import gluon, init, np

import d2l.mxnet as d2l
import gluonbert
from gluonbert.data import embedded_slice_dir
from gluonbert.train.pretrain import _get_batch_loss_bert, train_bert
from gluonbert.train.sharding import shard_batch, shard_sizes


def small_bert(vocab_size, seed=0, dropout=0.1):
    mx.random.seed(seed)
    net = gluonbert.BERTModel(vocab_size, 32, 64, 2, 2, dropout, max_len=32)
    net.initialize(init.Xavier())
    return net


@pytest.fixture(scope='module')
def wiki():
    """The real WikiText-2 slice shipped with gluonbert, max_len 32."""
    return gluonbert.load_data_wiki(64, 32, embedded_slice_dir(), seed=0, use_cache=False)


def test_mlm_and_nsp_losses_fall_over_300_steps_of_real_wikitext(wiki):
    train_iter, vocab = wiki
    net = small_bert(len(vocab))
    trainer = gluon.Trainer(net.collect_params(), 'adam', {'learning_rate': 2e-3})
    result = train_bert(train_iter, net, gluon.loss.SoftmaxCELoss(), len(vocab), [mx.cpu()],
                        300, trainer=trainer, quiet=True)
    history = onp.array([h[1:] for h in result['history']])
    first, last = history[:30].mean(axis=0), history[-30:].mean(axis=0)
    assert len(history) == 300
    assert last[0] < first[0] - 2.0, (first, last)  # MLM: from ~ln(vocab) to well below
    assert last[1] < min(first[1], 0.69) - 0.02, (first, last)  # NSP: below chance


def fixed_batch(vocab_size, batch_size=7, seq_len=12, num_preds=3):
    rng = onp.random.RandomState(1)
    return [mx.nd.array(rng.randint(5, vocab_size, (batch_size, seq_len)), dtype='int32'),
            mx.nd.array((onp.arange(seq_len)[None] >= 6).repeat(batch_size, 0), dtype='int32'),
            mx.nd.array(rng.randint(8, seq_len + 1, (batch_size,))),
            mx.nd.array(rng.randint(1, 7, (batch_size, num_preds)), dtype='int32'),
            mx.nd.array(rng.randint(0, 2, (batch_size, num_preds)) | [1, 0, 0]),
            mx.nd.array(rng.randint(0, vocab_size, (batch_size, num_preds)), dtype='int32'),
            mx.nd.array(rng.randint(0, 2, (batch_size,)), dtype='int32')]


@pytest.mark.parametrize('num_devices', [2, 3])
def test_uneven_batch_on_several_devices_gives_the_single_device_update(num_devices):
    vocab_size, batch = 50, fixed_batch(50)  # 7 samples: shards of 4+3 and 3+2+2
    params = []
    for devices in ([mx.cpu(0)], [mx.cpu(i) for i in range(num_devices)]):
        net = small_bert(vocab_size, dropout=0.0)
        net.collect_params().reset_ctx(devices)
        trainer = gluon.Trainer(net.collect_params(), 'sgd', {'learning_rate': 0.5})
        train_bert([batch], net, gluon.loss.SoftmaxCELoss(), vocab_size, devices, 1,
                   trainer=trainer, quiet=True)
        params.append({k: p.data(devices[-1]).asnumpy()
                       for k, p in net._collect_params_with_prefix().items()})
    for name, value in params[0].items():
        onp.testing.assert_allclose(params[1][name], value, atol=1e-6, rtol=1e-5, err_msg=name)


def test_batch_loss_equals_d2l_per_shard(np_mode):
    vocab_size = 50
    ref = d2l.BERTModel(vocab_size, 32, 64, 2, 2, 0.0, max_len=32)
    ref.initialize(init.Xavier())
    batch = [np.array(a.asnumpy(), dtype=a.dtype) for a in fixed_batch(vocab_size)]
    ref(*batch[:2], batch[2], batch[3])
    net = small_bert(vocab_size, dropout=0.0)
    net.collect_params()  # same structure: copy d2l's values in
    for name, param in net._collect_params_with_prefix().items():
        param.set_data(ref._collect_params_with_prefix()[name].data())
    loss = gluon.loss.SoftmaxCELoss()
    shards = [[a] for a in batch]
    ours = _get_batch_loss_bert(net, loss, vocab_size, *shards)
    theirs = d2l._get_batch_loss_bert(ref, loss, vocab_size, *shards)
    for a, b in zip(ours, theirs):
        onp.testing.assert_allclose(float(a[0]), float(b[0]), rtol=1e-5)


def test_shards_are_balanced_and_a_too_small_batch_is_refused():
    assert shard_sizes(10, 4) == [3, 3, 2, 2]
    assert [s[0].shape[0] for s in shard_batch([mx.nd.zeros((5, 2))], [mx.cpu(0), mx.cpu(1)])] \
        == [3, 2]
    with pytest.raises(ValueError, match='a batch of 2 samples cannot be split across 3 devices'):
        shard_sizes(2, 3)
    with pytest.raises(ValueError, match='batch item 1 has 4 samples, item 0 has 5'):
        shard_batch([mx.nd.zeros((5, 2)), mx.nd.zeros((4, 2))], [mx.cpu()])


def test_checkpoint_folder_loads_as_the_chapter_does(tmp_path, wiki):
    _, vocab = wiki
    net = small_bert(len(vocab))
    folder = str(tmp_path / 'bert.small')
    gluonbert.save_pretrained(net, vocab, folder, config=net.config)
    assert sorted(os.listdir(folder)) == ['config.json', 'pretrained.params', 'vocab.json']
    # The chapter's own reading: a JSON list of tokens, then BERTModel.load_parameters
    with open(os.path.join(folder, 'vocab.json')) as f:
        assert json.load(f) == vocab.idx_to_token
    bert, loaded_vocab = gluonbert.load_pretrained_model(folder, dropout=0.0)
    assert loaded_vocab.idx_to_token == vocab.idx_to_token and bert.config['dropout'] == 0.0
    tokens = mx.nd.array([[2, 3, 4]])
    onp.testing.assert_allclose(bert(tokens, mx.nd.zeros((1, 3)))[0].asnumpy(),
                                net(tokens, mx.nd.zeros((1, 3)))[0].asnumpy(), atol=1e-6)


def test_loading_a_folder_without_parameters_names_what_is_missing(tmp_path):
    with pytest.raises(FileNotFoundError, match='pretrained.params not found'):
        gluonbert.load_pretrained_model(str(tmp_path))


def test_a_vocab_that_does_not_fit_the_parameters_is_named(tmp_path, wiki):
    _, vocab = wiki
    folder = str(tmp_path / 'bert.small')
    gluonbert.save_pretrained(small_bert(len(vocab)), vocab, folder)
    with open(os.path.join(folder, 'vocab.json'), 'w') as f:
        json.dump(vocab.idx_to_token[:-3], f)
    with pytest.raises(ValueError, match=r'its token embedding \(2871, 32\) does not match '
                                         r'vocab.json \(2868 tokens\)'):
        gluonbert.load_pretrained_model(folder, 32, 64, 2, 2, 0.1, 32)


def test_a_head_with_another_number_of_labels_names_the_parameter(tmp_path, wiki):
    from gluonbert.data.tokenization import WhitespaceTokenizer
    from gluonbert.tasks import get_task
    from gluonbert.tasks.saved import load_task_model, save_task_model
    _, vocab = wiki
    bert, task = small_bert(len(vocab)), get_task('classification')
    net = task.head(bert, ['a', 'b', 'c'])
    net.output.initialize()
    folder = str(tmp_path / 'finetuned')
    save_task_model(net, bert, vocab, WhitespaceTokenizer(), folder, task, ['a', 'b', 'c'], 32)
    config_path = os.path.join(folder, 'config.json')
    with open(config_path) as f:
        config = json.load(f)
    config['labels'] = ['a', 'b']
    with open(config_path, 'w') as f:
        json.dump(config, f)
    with pytest.raises(ValueError, match=r'parameter output.weight has shape \(3, 32\) in the '
                                         r'file, but the model .* expects \(2, 32\)'):
        load_task_model(folder)
