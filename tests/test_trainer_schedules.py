"""Schedules: HF's curves in closed form, the step-1 lr, one step per update, bad input."""
import math

import mxnet as mx
import numpy as np
import pytest

from gluonbert.train.schedules import SCHEDULES, Schedule
from gluonbert.train.sharding import shard_batch
from gluonbert.train.trainer import BERTTrainer
from tiny_bert import random_batch, summed_loss, tiny_classifier


@pytest.mark.parametrize('name, options, t, expected', [
    ('constant', {}, 1, 1.0),
    ('constant', {}, 10 ** 6, 1.0),
    ('constant_with_warmup', {'warmup_steps': 4}, 2, 0.5),
    ('constant_with_warmup', {'warmup_steps': 4}, 4, 1.0),
    ('constant_with_warmup', {'warmup_steps': 4}, 500, 1.0),
    ('linear', {'warmup_steps': 10, 'num_training_steps': 100}, 1, 0.1),
    ('linear', {'warmup_steps': 10, 'num_training_steps': 100}, 10, 1.0),
    ('linear', {'warmup_steps': 10, 'num_training_steps': 100}, 11, 1.0),
    ('linear', {'warmup_steps': 10, 'num_training_steps': 100}, 56, 0.5),
    ('linear', {'warmup_steps': 10, 'num_training_steps': 100}, 100, 1 / 90),
    ('linear', {'num_training_steps': 4}, 1, 1.0),
    ('linear', {'num_training_steps': 4}, 4, 0.25),
    ('linear', {'num_training_steps': 1}, 1, 1.0),
    ('cosine', {'num_training_steps': 100}, 26, 0.5 * (1 + math.cos(math.pi / 4))),
    ('cosine', {'num_training_steps': 100}, 51, 0.5),
    ('cosine', {'warmup_steps': 20, 'num_training_steps': 100}, 61, 0.5),
    ('cosine', {'num_training_steps': 100}, 100, 0.5 * (1 + math.cos(math.pi * 0.99))),
    ('cosine_with_restarts', {'num_training_steps': 100, 'num_cycles': 2}, 26, 0.5),
    ('cosine_with_restarts', {'num_training_steps': 100, 'num_cycles': 2}, 51, 1.0),
    ('cosine_with_restarts', {'num_training_steps': 100, 'num_cycles': 2}, 76, 0.5),
    ('polynomial', {'num_training_steps': 10, 'power': 2.0, 'lr_end': 0.1}, 6, 0.9 * 0.25 + 0.1),
    ('polynomial', {'warmup_steps': 2, 'num_training_steps': 10, 'lr_end': 0.0}, 7, 0.5),
    ('polynomial', {'num_training_steps': 10, 'lr_end': 0.1}, 10, 0.9 * 0.1 + 0.1),
])
def test_the_curve_is_the_closed_form(name, options, t, expected):
    assert Schedule(name, 1.0, **options).factor(t) == pytest.approx(expected, abs=1e-12)


def test_the_learning_rate_is_lr_times_the_curve():
    schedule = Schedule('linear', 2e-5, warmup_steps=10, num_training_steps=100)
    assert schedule(56) == pytest.approx(1e-5)


@pytest.mark.parametrize('name', SCHEDULES)
def test_every_update_of_a_schedule_has_a_positive_lr(name):
    """HF's decay reaches its end after the last update: no update is wasted at lr 0, and
    a one-update run changes the weights."""
    for warmup, total in ((0, 1), (0, 3), (2, 5), (5, 5)):
        if name == 'constant' and warmup:
            continue
        schedule = Schedule(name, 1.0, warmup, total)
        assert all(schedule(t) > 0 for t in range(1, total + 1)), (warmup, total)


def test_a_one_update_fine_tune_under_the_linear_schedule_changes_the_weights():
    net, _ = tiny_classifier()
    trainer = BERTTrainer(net, lr=1e-2, schedule='linear', num_training_steps=1, quiet=True)
    before = net.output.weight.data().asnumpy().copy()
    trainer.backward(summed_loss(net, random_batch(np.random.RandomState(0), 4)))
    assert trainer.step(4).lr == pytest.approx(1e-2)
    assert np.abs(net.output.weight.data().asnumpy() - before).max() > 0


def test_the_first_update_of_a_warmup_has_lr_over_warmup_steps_not_zero():
    for name in SCHEDULES[1:]:
        schedule = Schedule(name, 1.0, warmup_steps=8, num_training_steps=80)
        assert schedule(1) == pytest.approx(1 / 8), name
        assert schedule(8) == pytest.approx(1.0), name


def test_warmup_longer_than_training_is_an_error():
    with pytest.raises(ValueError, match='warmup_steps=11 is longer than the training '
                                         r'\(num_training_steps=10\)'):
        Schedule('linear', 1e-3, warmup_steps=11, num_training_steps=10)


@pytest.mark.parametrize('lr', [0.0, -2e-5])
def test_zero_or_negative_lr_is_an_error(lr):
    with pytest.raises(ValueError, match=f'lr={lr}'):
        Schedule('constant', lr)


@pytest.mark.parametrize('name', ['linear', 'cosine', 'cosine_with_restarts', 'polynomial'])
def test_decaying_schedules_need_the_number_of_training_steps(name):
    with pytest.raises(ValueError, match='pass num_training_steps'):
        Schedule(name, 1e-3, warmup_steps=2)


def test_an_update_past_the_end_of_training_is_an_error():
    with pytest.raises(ValueError, match='update 11 is past num_training_steps=10'):
        Schedule('linear', 1e-3, num_training_steps=10)(11)


def test_unknown_names_and_warmup_on_constant_are_errors():
    with pytest.raises(ValueError, match="schedule='step'"):
        Schedule('step', 1e-3)
    with pytest.raises(ValueError, match='use "constant_with_warmup"'):
        Schedule('constant', 1e-3, warmup_steps=5)


def test_the_schedule_advances_once_per_update_with_two_devices_and_accumulation():
    devices = [mx.cpu(0), mx.cpu(1)]
    net, _ = tiny_classifier(contexts=devices)
    trainer = BERTTrainer(net, lr=1e-3, schedule='linear', warmup_steps=2,
                          num_training_steps=10, accumulate=2, quiet=True)
    rng, outcomes = np.random.RandomState(0), []
    for _ in range(6):
        shards = shard_batch(random_batch(rng, 4), devices)
        trainer.backward([summed_loss(net, shard) for shard in shards])
        outcomes.append(trainer.step(4))
    assert [o.action for o in outcomes] == ['accumulating', 'applied'] * 3
    schedule = trainer.schedule
    assert [o.lr for o in outcomes[1::2]] == [schedule(1), schedule(2), schedule(3)]
    assert trainer.trainer.learning_rate == schedule(3)
    assert trainer.num_updates == 3
