"""Checkpoints: exact resume, atomic verified files, fallback to the last good one, no pickle."""
import json
import os
import pickle
import random

import mxnet as mx
import numpy as np
import pytest

from gluonbert.train.state import CheckpointError, read_checkpoint
from gluonbert.train.trainer import BERTTrainer
from tiny_bert import MAX_LEN, VOCAB, random_batch, summed_loss, tiny_classifier, values


def global_rng_batch(size=4):
    """A batch drawn from the global NumPy and Python generators, which checkpoints restore."""
    batch = list(random_batch(np.random, size))
    order = list(range(size))
    random.shuffle(order)
    batch[3] = batch[3][mx.nd.array(order)]
    return tuple(batch)


def make(tmp_path, init_seed=0, devices=None, dropout=0.2, **options):
    net, _ = tiny_classifier(init_seed, dropout=dropout, contexts=devices)
    options.setdefault('checkpoint_dir', str(tmp_path / 'ckpt'))
    trainer = BERTTrainer(net, 'adamw', lr=1e-2, schedule='linear', warmup_steps=2,
                          num_training_steps=8, seed=7, quiet=True, **options)
    return net, trainer


def train(net, trainer, updates, size=4):
    for _ in range(updates):
        trainer.backward(summed_loss(net, global_rng_batch(size)))
        trainer.step(size)


def start_rngs():
    np.random.seed(3)
    random.seed(3)


def test_a_resumed_run_ends_bit_identical_to_an_uninterrupted_one(tmp_path):
    start_rngs()
    net, trainer = make(tmp_path / 'a')
    train(net, trainer, 6)
    straight = values(trainer.named)

    start_rngs()
    net, trainer = make(tmp_path / 'b')
    train(net, trainer, 3)
    trainer.save({'batch': 3})
    np.random.seed(99)  # anything the crash left behind must not matter
    random.seed(99)
    net, trainer = make(tmp_path / 'b', init_seed=1)
    assert trainer.load() == {'batch': 3}
    assert trainer.num_updates == 3
    train(net, trainer, 3)
    resumed = values(trainer.named)
    for name in straight:
        np.testing.assert_array_equal(resumed[name], straight[name], err_msg=name)


def test_a_one_device_checkpoint_resumes_on_two_devices(tmp_path):
    start_rngs()  # no dropout: two devices draw other masks than one
    net, trainer = make(tmp_path, dropout=0.0)
    train(net, trainer, 2)
    trainer.save()
    state = (np.random.get_state(), random.getstate())
    train(net, trainer, 2)
    expected = values(trainer.named)

    net, trainer = make(tmp_path, devices=[mx.cpu(0), mx.cpu(1)], dropout=0.0)
    trainer.load()
    assert (np.random.get_state()[1] == state[0][1]).all() and random.getstate() == state[1]
    for _ in range(2):
        batch = global_rng_batch()
        halves = [tuple(a[k * 2:(k + 1) * 2].as_in_context(c) for a in batch)
                  for k, c in enumerate([mx.cpu(0), mx.cpu(1)])]
        trainer.backward([summed_loss(net, h) for h in halves])
        trainer.step(4)
    for name, param in trainer.named.items():
        for copy in param.list_data():
            np.testing.assert_allclose(copy.asnumpy(), expected[name], rtol=1e-4, atol=1e-5,
                                       err_msg=name)


def test_loading_never_unpickles(tmp_path, monkeypatch):
    net, trainer = make(tmp_path)
    train(net, trainer, 1)
    trainer.save()

    def refuse(*args, **kwargs):
        raise AssertionError('pickle used on the load path')
    monkeypatch.setattr(pickle, 'loads', refuse)
    monkeypatch.setattr(pickle, 'load', refuse)
    monkeypatch.setattr(pickle, 'Unpickler', refuse)
    net, trainer = make(tmp_path, init_seed=1)
    assert trainer.load() == {}


def saved_steps(tmp_path, updates):
    net, trainer = make(tmp_path, keep_last=5)
    paths = []
    for _ in range(updates):
        train(net, trainer, 1)
        paths.append(trainer.save({'after': trainer.num_updates}))
    return trainer, paths


def test_a_truncated_checkpoint_is_named_and_the_previous_good_one_is_used(tmp_path):
    trainer, paths = saved_steps(tmp_path, 2)
    params = os.path.join(paths[-1], 'params.nd')
    with open(params, 'r+b') as f:
        f.truncate(os.path.getsize(params) // 2)
    with pytest.raises(CheckpointError, match='params.nd has .* bytes.*truncated'):
        read_checkpoint(paths[-1])
    with pytest.warns(UserWarning, match='step-00000002.*truncated.*resuming from .*'
                                         'step-00000001'):
        assert trainer.load() == {'after': 1}
    assert trainer.num_updates == 1


def test_a_corrupt_file_fails_its_checksum(tmp_path):
    _, paths = saved_steps(tmp_path, 1)
    optimizer = os.path.join(paths[0], 'optimizer.nd')
    with open(optimizer, 'r+b') as f:
        f.seek(os.path.getsize(optimizer) - 3)
        byte = f.read(1)
        f.seek(-1, os.SEEK_CUR)
        f.write(bytes([byte[0] ^ 0xFF]))
    with pytest.raises(CheckpointError, match='optimizer.nd does not match its SHA-256'):
        read_checkpoint(paths[0])


def test_a_checkpoint_without_manifest_counts_as_interrupted(tmp_path):
    trainer, paths = saved_steps(tmp_path, 2)
    os.remove(os.path.join(paths[-1], 'MANIFEST.json'))
    with pytest.raises(CheckpointError, match='no MANIFEST.json .*interrupted'):
        read_checkpoint(paths[-1])
    with pytest.warns(UserWarning, match='skipped 1 unusable'):
        assert trainer.load() == {'after': 1}


def test_no_usable_checkpoint_at_all_is_an_error_listing_each(tmp_path):
    trainer, paths = saved_steps(tmp_path, 2)
    for path in paths:
        os.remove(os.path.join(path, 'state.json'))
    with pytest.raises(CheckpointError, match='no usable checkpoint.*step-00000002.*'
                                              'step-00000001'):
        trainer.load()


def test_only_the_last_k_checkpoints_are_kept(tmp_path):
    net, trainer = make(tmp_path, keep_last=2)
    for _ in range(4):
        train(net, trainer, 1)
        trainer.save()
    names = sorted(os.listdir(tmp_path / 'ckpt'))
    assert names == ['step-00000003', 'step-00000004']


def test_the_leftover_of_a_killed_save_is_ignored_then_removed(tmp_path):
    net, trainer = make(tmp_path)
    train(net, trainer, 1)
    trainer.save()
    dead = tmp_path / 'ckpt' / '.step-00000002.partial-999999999-x1'
    dead.mkdir()
    (dead / 'params.nd').write_bytes(b'half')
    assert trainer.load() == {}
    train(net, trainer, 1)
    trainer.save()
    assert not dead.exists()


def test_a_fresh_start_loads_nothing(tmp_path):
    _, trainer = make(tmp_path)
    assert trainer.load() is None


def test_a_checkpoint_of_another_model_is_refused_by_name(tmp_path):
    net, trainer = make(tmp_path)
    train(net, trainer, 1)
    path = trainer.save()
    bigger, _ = tiny_classifier(num_blks=3)
    other = BERTTrainer(bigger, lr=1e-3, quiet=True)
    with pytest.raises(CheckpointError, match=r"missing \['encoder.blks.2"):
        other.load(path)


def test_saving_in_the_middle_of_an_accumulation_is_an_error(tmp_path):
    net, trainer = make(tmp_path, accumulate=2)
    trainer.backward(summed_loss(net, random_batch(np.random.RandomState(0), 2)))
    trainer.step(2)
    with pytest.raises(ValueError, match=r'middle of an accumulation \(1 of 2'):
        trainer.save()


def test_the_state_file_is_plain_json_with_rngs_counts_and_position(tmp_path):
    net, trainer = make(tmp_path)
    train(net, trainer, 2)
    path = trainer.save({'epoch': 0, 'batch': 2})
    with open(os.path.join(path, 'state.json')) as f:
        meta = json.load(f)
    assert meta['num_updates'] == 2 and meta['data_position'] == {'epoch': 0, 'batch': 2}
    assert set(meta['rng']) == {'python', 'numpy'} and meta['seed'] == 7
    assert meta['optimizer']['update_counts']['output.weight'] == 2


def test_checkpoints_round_trip_under_numpy_mode(tmp_path, np_mode):
    net, trainer = make(tmp_path)
    tokens = mx.np.array(np.random.RandomState(0).randint(1, VOCAB, (2, MAX_LEN)))
    batch = (tokens, mx.np.zeros((2, MAX_LEN)), mx.np.array([MAX_LEN, 6]), mx.np.array([0, 2]))
    trainer.backward(summed_loss(net, batch))
    trainer.step(2)
    saved = values(trainer.named)
    path = trainer.save()
    net, trainer = make(tmp_path, init_seed=1)
    trainer.load(path)
    assert isinstance(trainer.named['output.weight'].data(), mx.np.ndarray)
    for name, value in values(trainer.named).items():
        np.testing.assert_array_equal(value, saved[name])
