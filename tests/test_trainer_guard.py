"""The non-finite guard: skip, count, lower the loss scale, roll back after K in a row."""
import numpy as np
import pytest
from mxnet import autograd

from gluonbert.train.trainer import BERTTrainer, NonFiniteError
from tiny_bert import random_batch, summed_loss, tiny_classifier, values


def step(net, trainer, seed, poison=False, report_loss=None):
    batch = random_batch(np.random.RandomState(seed), 4)
    loss = summed_loss(net, batch)
    if poison:
        with autograd.record():
            loss = loss * float('nan')
    trainer.backward(loss)
    return trainer.step(4, loss=report_loss)


@pytest.fixture
def net():
    return tiny_classifier()[0]


def test_a_nan_gradient_skips_the_update_and_is_counted(net):
    trainer = BERTTrainer(net, lr=1e-2, schedule='linear', num_training_steps=10, quiet=True)
    before = values(trainer.named)
    outcome = step(net, trainer, 0, poison=True)
    assert outcome.action == 'skipped' and np.isnan(outcome.grad_norm)
    assert all(np.array_equal(before[n], v) for n, v in values(trainer.named).items())
    assert (trainer.guard.skipped, trainer.num_updates) == (1, 0)
    # The next finite step is update 1 of the schedule
    assert step(net, trainer, 1).lr == trainer.schedule(1)


def test_a_non_finite_loss_skips_the_update_even_with_finite_gradients(net):
    trainer = BERTTrainer(net, lr=1e-2, quiet=True)
    assert step(net, trainer, 0, report_loss=float('inf')).action == 'skipped'
    assert step(net, trainer, 1, report_loss=1.5).action == 'applied'


def test_a_skipped_step_halves_a_dynamic_loss_scale(net):
    trainer = BERTTrainer(net, lr=1e-2, loss_scale='dynamic', quiet=True)
    assert trainer.loss_scale == 2.0 ** 16
    step(net, trainer, 0, poison=True)
    assert trainer.loss_scale == 2.0 ** 15
    assert step(net, trainer, 1).action == 'applied'
    assert trainer.loss_scale == 2.0 ** 15


def test_k_non_finite_steps_in_a_row_roll_back_to_the_last_checkpoint(net, tmp_path):
    trainer = BERTTrainer(net, lr=1e-2, guard_patience=3, checkpoint_dir=str(tmp_path),
                          quiet=True)
    step(net, trainer, 0)
    path = trainer.save({'batch': 1})
    saved = values(trainer.named)
    step(net, trainer, 1)
    step(net, trainer, 2)
    assert [step(net, trainer, 3 + i, poison=True).action for i in range(2)] == ['skipped'] * 2
    outcome = step(net, trainer, 5, poison=True)
    assert (outcome.action, outcome.checkpoint, outcome.data_position) == (
        'rolled back', path, {'batch': 1})
    assert (outcome.reason, outcome.skip_batches) == ('non-finite', None)  # data read again
    assert all(np.array_equal(saved[n], v) for n, v in values(trainer.named).items())
    assert (trainer.num_updates, trainer.guard.skipped, trainer.guard.rollbacks) == (1, 3, 1)
    assert step(net, trainer, 6).action == 'applied'


def test_rolling_back_without_a_checkpoint_is_an_error(net):
    trainer = BERTTrainer(net, lr=1e-2, guard_patience=2, quiet=True)
    step(net, trainer, 0, poison=True)
    with pytest.raises(NonFiniteError, match='2 non-finite steps in a row .* no checkpoint'):
        step(net, trainer, 1, poison=True)


def test_patience_must_be_a_positive_integer(net):
    with pytest.raises(ValueError, match='guard_patience=0'):
        BERTTrainer(net, lr=1e-2, guard_patience=0, quiet=True)


def test_non_finite_steps_again_after_a_rollback_are_an_error_not_a_loop(net, tmp_path):
    trainer = BERTTrainer(net, lr=1e-2, guard_patience=2, checkpoint_dir=str(tmp_path),
                          quiet=True)
    path = trainer.save({'batch': 0})
    step(net, trainer, 0, poison=True)
    assert step(net, trainer, 1, poison=True).action == 'rolled back'
    step(net, trainer, 2, poison=True)
    with pytest.raises(NonFiniteError, match=f'again after rolling back to {path}, with no '
                       'update applied since'):
        step(net, trainer, 3, poison=True)


def test_a_rollback_never_goes_to_a_later_step_of_an_earlier_run(net, tmp_path):
    earlier = BERTTrainer(net, lr=1e-2, checkpoint_dir=str(tmp_path), quiet=True)
    for seed in range(3):
        step(net, earlier, seed)
    earlier.save({'batch': 3})
    other = tiny_classifier(1)[0]
    trainer = BERTTrainer(other, lr=1e-2, guard_patience=1, checkpoint_dir=str(tmp_path),
                          quiet=True)
    with pytest.raises(NonFiniteError, match='no checkpoint to roll back to'):
        step(other, trainer, 4, poison=True)


def test_the_first_checkpoint_of_a_fresh_run_replaces_an_earlier_runs(net, tmp_path):
    earlier = BERTTrainer(net, lr=1e-2, checkpoint_dir=str(tmp_path), quiet=True)
    for seed in range(3):
        step(net, earlier, seed)
        earlier.save({'batch': seed + 1})
    trainer = BERTTrainer(net, lr=1e-2, checkpoint_dir=str(tmp_path), quiet=True)
    step(net, trainer, 0)
    path = trainer.save({'batch': 1})
    assert trainer.checkpoints.checkpoints() == [path]
    resumed = BERTTrainer(net, lr=1e-2, checkpoint_dir=str(tmp_path), quiet=True)
    resumed.load(required=True)
    step(net, resumed, 1)
    assert len(resumed.checkpoints.checkpoints()) == 1
    resumed.save({'batch': 2})
    assert len(resumed.checkpoints.checkpoints()) == 2  # the resumed run's own are kept
