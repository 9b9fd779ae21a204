"""The loss-spike guard: a finite loss far above the running median skips its update; a run
of spikes rolls back to the last checkpoint and names the data window to skip."""
import json

import mxnet as mx
import numpy as np
import pytest
from mxnet import gluon

from gluonbert.train.batches import EpochBatches
from gluonbert.train.callbacks import Callback, Checkpointing, MetricsLog
from gluonbert.train.engine import Engine
from gluonbert.train.finetune import ClassificationLoss
from gluonbert.train.guard import APPLY, ROLLBACK, SKIP, SpikeGuard
from gluonbert.train.trainer import BERTTrainer, NonFiniteError
from test_engine import nli_arrays
from test_trainer_guard import step
from tiny_bert import tiny_classifier, values


@pytest.fixture
def net():
    return tiny_classifier()[0]


def spiky_trainer(net, **options):
    return BERTTrainer(net, lr=1e-2, spike_factor=3.0, spike_window=20, spike_patience=3,
                       quiet=True, **options)


def warm_up(net, trainer, steps=20, first_seed=0):
    """Steps with per-sample losses 1.0, 1.1, ... (summed over the batch of 4)."""
    for i in range(steps):
        assert step(net, trainer, first_seed + i, report_loss=4 * (1 + 0.01 * i)).action == \
            'applied'


def test_spike_guard_skips_above_k_times_the_running_median_and_rolls_back_after_a_run():
    guard = SpikeGuard(3.0, window=5, patience=2, min_history=3)
    assert [guard.observe(v) for v in (1.0, 9.0, 1.2)] == [APPLY] * 3  # too few to judge
    assert guard.median() == 1.2
    assert guard.observe(3.7) == SKIP and guard.history == [1.0, 9.0, 1.2]
    assert guard.observe(3.5) == APPLY  # not above 3 x 1.2
    assert guard.observe(100.0) == SKIP
    assert guard.observe(100.0) == ROLLBACK
    assert (guard.spikes, guard.rollbacks, guard.in_a_row) == (3, 1, 0)
    for v in range(10):
        guard.observe(1.0)
    assert len(guard.history) == 5  # the window


def test_a_planted_spike_is_skipped_and_training_goes_on(net):
    trainer = spiky_trainer(net)
    warm_up(net, trainer)
    before = values(trainer.named)
    outcome = step(net, trainer, 100, report_loss=4 * 50.0)
    assert (outcome.action, outcome.reason, outcome.loss) == ('skipped', 'loss spike', 50.0)
    assert all(np.array_equal(before[n], v) for n, v in values(trainer.named).items())
    assert (trainer.num_updates, trainer.spike_guard.spikes) == (20, 1)
    assert step(net, trainer, 101, report_loss=4 * 1.2).action == 'applied'
    assert 'skipped (loss spike), loss 50' in str(outcome)


def test_a_run_of_spikes_rolls_back_and_names_the_data_window_to_skip(net, tmp_path):
    trainer = spiky_trainer(net, checkpoint_dir=str(tmp_path))
    warm_up(net, trainer)
    path = trainer.save({'epoch': 0, 'batch': 20})
    saved = values(trainer.named)
    warm_up(net, trainer, steps=5, first_seed=20)
    outcomes = [step(net, trainer, 30 + i, report_loss=4 * 40.0) for i in range(3)]
    assert [o.action for o in outcomes] == ['skipped', 'skipped', 'rolled back']
    rollback = outcomes[-1]
    assert (rollback.reason, rollback.checkpoint, rollback.data_position) == (
        'loss spike', path, {'epoch': 0, 'batch': 20})
    assert rollback.skip_batches == 8  # 5 good batches and 3 spikes since the checkpoint
    assert all(np.array_equal(saved[n], v) for n, v in values(trainer.named).items())
    assert (trainer.num_updates, trainer.spike_guard.rollbacks) == (20, 1)
    assert 'the 8 batches after it are skipped' in str(rollback)
    assert step(net, trainer, 40, report_loss=4 * 1.1).action == 'applied'


def test_a_run_of_spikes_without_a_checkpoint_is_an_error(net):
    trainer = spiky_trainer(net)
    warm_up(net, trainer)
    step(net, trainer, 50, report_loss=400.0)
    step(net, trainer, 51, report_loss=400.0)
    with pytest.raises(NonFiniteError, match='3 loss spikes in a row .* no checkpoint'):
        step(net, trainer, 52, report_loss=400.0)


def test_the_running_median_is_checkpointed_so_a_resume_judges_alike(net, tmp_path):
    trainer = spiky_trainer(net, checkpoint_dir=str(tmp_path))
    warm_up(net, trainer)
    trainer.save()
    resumed = spiky_trainer(tiny_classifier()[0], checkpoint_dir=str(tmp_path))
    resumed.load()
    assert resumed.spike_guard.history == trainer.spike_guard.history
    assert resumed.micro_batches == 20


def test_spike_options_are_checked(net):
    with pytest.raises(ValueError, match=r'spike_factor=1; expected a number > 1'):
        BERTTrainer(net, lr=1e-2, spike_factor=1, quiet=True)
    with pytest.raises(ValueError, match=r'spike_patience=0; expected an integer >= 1'):
        BERTTrainer(net, lr=1e-2, spike_factor=4, spike_patience=0, quiet=True)


class _ScaledLoss(ClassificationLoss):
    """The classification loss times a per-example factor (the batch's last array): a batch
    of factor 100 is a planted loss spike."""

    def __call__(self, shard, totals):
        *features, labels, factor = shard
        outputs = self.net(tuple(features))
        return self.scored(self.loss(outputs, labels) * factor, outputs, labels)


class _Events(Callback):
    def __init__(self):
        self.events, self.updates = [], []

    def on_guard(self, engine, state, outcome):
        self.events.append((state.updates, outcome.action, outcome.reason))

    def on_update(self, engine, state, outcome):
        self.updates.append(state.updates)


def test_the_engine_skips_a_spike_and_after_a_run_of_them_skips_the_data_window(tmp_path):
    net, _ = tiny_classifier()
    tokens, segments, valid_lens, labels = nli_arrays(count=200)
    factor = np.ones(200, dtype='float32')
    batches = EpochBatches((tokens, segments, valid_lens, labels, factor), 4, shuffle=False)
    spiky = [25] + [31, 32, 33]  # batch indices (4 examples each)
    for b in spiky:
        factor[4 * b:4 * b + 4] = 100.0
    trainer = BERTTrainer(net, lr=1e-3, spike_factor=5.0, spike_window=20, spike_patience=3,
                          checkpoint_dir=str(tmp_path / 'ckpt'), quiet=True)
    engine = Engine(_ScaledLoss(net, gluon.loss.SoftmaxCELoss()), trainer, [mx.cpu()])
    events = _Events()
    state = engine.fit(batches, num_updates=40, callbacks=[events, Checkpointing(every=28),
                                                           MetricsLog(str(tmp_path / 'log'))])
    assert events.events == [(25, 'skipped', 'loss spike'), (30, 'skipped', 'loss spike'),
                             (30, 'skipped', 'loss spike'), (30, 'rolled back', 'loss spike')]
    # Back to update 28's checkpoint (taken after batch 28: batch 25 made no update), then on
    # after the window read since, batches 29-33: update 29 is trained on batch 34
    assert state.updates == 40 and events.updates[-12:] == list(range(29, 41))
    assert (state.epoch, state.batch) == (0, 46)
    log = json.loads((tmp_path / 'log' / 'metrics.json').read_text())
    assert [r['event'].split(',')[0] for r in log if r['kind'] == 'guard'] == [
        'skipped (loss spike)'] * 3 + ['rolled back (loss spike)']
