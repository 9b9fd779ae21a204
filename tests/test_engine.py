"""The training engine: seeded resumable batches, the loop's counting, logging, evaluation
with best model and early stopping, and the trainer's loss scale on the fine-tuning path."""
import mxnet as mx
import numpy as np
import pytest
from mxnet import gluon

from gluonbert.train.batches import EpochBatches, LongestInBatch
from gluonbert.train.callbacks import Callback, Checkpointing, Evaluation, MetricsLog
from gluonbert.train.engine import Engine
from gluonbert.train.finetune import ClassificationLoss
from gluonbert.train.state import CheckpointError
from gluonbert.train.trainer import BERTTrainer
from tiny_bert import tiny_classifier, values

LOSS = gluon.loss.SoftmaxCELoss()


def nli_arrays(count=40, seed=0):
    """``(tokens, segments, valid_lens, labels)`` of ``count`` random examples, numpy."""
    rng = np.random.RandomState(seed)
    tokens = rng.randint(1, 40, (count, 10))
    segments = (np.arange(10) >= 5).astype('int32') * np.ones((count, 1), dtype='int32')
    return (tokens.astype('int32'), segments, rng.randint(5, 11, count).astype('float32'),
            rng.randint(0, 3, count).astype('int32'))


def test_epoch_order_is_a_function_of_the_seed_and_epoch_and_resumes_at_any_batch():
    arrays = (np.arange(10), np.arange(10) * 2)
    batches = EpochBatches(arrays, 3, seed=7)
    first = [b[0].tolist() for b in batches.epoch(1)]
    assert first == [b[0].tolist() for b in EpochBatches(arrays, 3, seed=7).epoch(1)]
    assert first != [b[0].tolist() for b in batches.epoch(2)]
    assert sorted(sum(first, [])) == list(range(10)) and [len(b) for b in first] == [3, 3, 3, 1]
    assert [b[0].tolist() for b in batches.epoch(1, start=2)] == first[2:]
    assert all((b[1] == 2 * b[0]).all() for b in batches.epoch(0))
    assert len(EpochBatches(arrays, 3, last_batch='discard')) == 3


def test_batches_are_cut_to_their_longest_sequence_rounded_up_in_the_same_order():
    lengths = np.array([3, 5, 2, 9, 17, 4], dtype='float32')
    tokens = np.arange(6)[:, None] * 100 + np.arange(20)  # (6, 20): max_len 20
    tags = tokens + 1  # per-token labels are cut alike; per-sequence ones are not
    arrays = (tokens, tokens * 0, lengths, tags, np.arange(6))
    plain = list(EpochBatches(arrays, 2, seed=3).epoch(1))
    cut = list(LongestInBatch(arrays, 2, seed=3, sequence_arrays=(0, 1, 3), lengths=2,
                              multiple=8).epoch(1))
    for full, short in zip(plain, cut):
        longest = int(full[2].max())
        width = min(20, -(-longest // 8) * 8)  # 5 -> 8, 9 -> 16, 17 -> 20 (max_len, not 24)
        assert [a.shape[-1] for a in short[:2]] + [short[3].shape[-1]] == [width] * 3
        assert (short[0] == full[0][:, :width]).all() and (short[3] == full[3][:, :width]).all()
        assert (short[2] == full[2]).all() and (short[4] == full[4]).all()
    assert sorted(int(b[2].max()) for b in plain) == [5, 9, 17]


def test_length_grouped_batches_sort_each_group_of_a_shuffled_epoch_by_length(monkeypatch):
    monkeypatch.setattr(LongestInBatch, 'GROUP_BATCHES', 3)  # groups of 3 batches of 3
    lengths = np.random.RandomState(0).randint(1, 41, 23).astype('float32')
    arrays = (np.zeros((23, 40), 'int32'), lengths, np.arange(23))
    plain = LongestInBatch(arrays, 3, seed=5, sequence_arrays=(0,), lengths=1)
    grouped = LongestInBatch(arrays, 3, seed=5, sequence_arrays=(0,), lengths=1,
                             group_by_length=True)
    shuffled, order = plain.order(2), grouped.order(2)
    for start in range(0, 23, 9):  # the same rows in each group, cut by length into batches
        group = order[start:start + 9]
        assert sorted(group) == sorted(shuffled[start:start + 9])
        spans = sorted((lengths[group[i:i + 3]].min(), lengths[group[i:i + 3]].max())
                       for i in range(0, len(group), 3))
        assert all(low_max <= high_min for (_, low_max), (high_min, _) in zip(spans, spans[1:]))
    rows = [b[2].tolist() for b in grouped.epoch(2)]
    assert sum(rows, []) == order.tolist() and order.tolist() != shuffled.tolist()
    assert order.tolist() == grouped.order(2).tolist()  # seeded


@pytest.mark.parametrize('data, size, expected', [
    ((np.zeros(4), np.zeros(3)), 2, 'data\\[1\\] has 3 samples, data\\[0\\] has 4'),
    ((np.zeros(0),), 2, 'data is empty'),
    ((np.zeros(4),), 0, 'batch_size=0; expected a positive integer')])
def test_bad_batches_are_refused_naming_the_argument(data, size, expected):
    with pytest.raises(ValueError, match=expected):
        EpochBatches(data, size)


class Recorder(Callback):
    def __init__(self):
        self.updates, self.epochs = [], []

    def on_update(self, engine, state, outcome):
        self.updates.append(state.updates)

    def on_epoch_end(self, engine, state):
        self.epochs.append(state.epoch)


def classifier_engine(trainer_options=None, **engine_options):
    net, _ = tiny_classifier()
    trainer = BERTTrainer(net, 'sgd', lr=0.1, wd=0.0, quiet=True, stale='skip',
                          **(trainer_options or {}))
    return net, Engine(ClassificationLoss(net, LOSS), trainer, [mx.cpu()], **engine_options)


def test_fit_counts_updates_epochs_and_logs_means_that_fall():
    _, engine = classifier_engine({'accumulate': 2})
    recorder = Recorder()
    state = engine.fit(EpochBatches(nli_arrays(), 8, seed=0), epochs=6, log_every=5,
                       callbacks=[recorder])
    # 5 batches an epoch, 2 per update: updates carry across epochs (15 in 6 epochs)
    assert state.updates == 15 and recorder.updates == list(range(1, 16))
    assert recorder.epochs == [1, 2, 3, 4, 5, 6]
    assert [log['update'] for log in state.logs] == [5, 10, 15]
    assert state.logs[-1]['loss'] < state.logs[0]['loss']
    assert all(0 <= log['accuracy'] <= 1 for log in state.logs)
    assert state.samples == 6 * 40


def test_num_updates_stops_mid_epoch():
    _, engine = classifier_engine()
    state = engine.fit(EpochBatches(nli_arrays(), 8, seed=0), num_updates=7)
    assert (state.updates, state.epoch, state.batch) == (7, 1, 2)


def test_evaluation_keeps_the_best_and_stops_after_patience():
    _, engine = classifier_engine()
    scores = iter([0.5, 0.7, 0.6, 0.65, 0.9])
    best = []
    evaluation = Evaluation(lambda: {'f1': next(scores)}, every=2, metric='f1', patience=2,
                            on_best=lambda metrics: best.append(metrics['update']))
    state = engine.fit(EpochBatches(nli_arrays(), 8, seed=0), num_updates=100,
                       callbacks=[evaluation])
    assert best == [2, 4]
    assert state.updates == 8 and 'f1 has not improved on 0.7000 (update 4)' in state.stop_reason
    assert (evaluation.best, evaluation.waited) == (0.7, 2)


def test_a_metric_the_evaluation_does_not_return_is_an_error_naming_those_it_does():
    _, engine = classifier_engine()
    evaluation = Evaluation(lambda: {'eval_f1': 0.5}, metric='f1')
    with pytest.raises(ValueError, match=r"metric='f1' is not among the evaluation's metrics "
                                         r"\['eval_f1'\]"):
        engine.fit(EpochBatches(nli_arrays(), 8, seed=0), epochs=1, callbacks=[evaluation])


def test_a_resumed_fit_restores_the_evaluation_state_and_the_data_position(tmp_path):
    options = {'checkpoint_dir': str(tmp_path)}
    scores = iter([0.5, 0.7, 0.6, 0.8])
    net, engine = classifier_engine(options)
    evaluation = Evaluation(lambda: {'acc': next(scores)}, every=3, metric='acc')
    engine.fit(EpochBatches(nli_arrays(), 8, seed=0), num_updates=9,
               callbacks=[evaluation, Checkpointing(every=3)])
    expected = values(net._collect_params_with_prefix())
    resumed_net, resumed = classifier_engine(options)
    again = Evaluation(lambda: {'acc': 0.0}, every=3, metric='acc')
    state = resumed.fit(EpochBatches(nli_arrays(), 8, seed=0), num_updates=9,
                        callbacks=[again], resume=True)
    assert (state.updates, state.epoch, state.batch) == (9, 1, 4)
    assert (again.best, again.best_update, again.waited) == (0.7, 6, 1)
    for name, value in values(resumed_net._collect_params_with_prefix()).items():
        np.testing.assert_array_equal(value, expected[name], err_msg=name)


class _StopAt(Callback):
    def __init__(self, update):
        self.update = update

    def on_update(self, engine, state, outcome):
        if state.updates == self.update:
            raise KeyboardInterrupt


def test_a_stopped_fit_leaves_its_metrics_partial_and_the_resumed_one_finishes_them(tmp_path):
    import json
    options = {'checkpoint_dir': str(tmp_path)}
    _, engine = classifier_engine(options)
    with pytest.raises(KeyboardInterrupt):
        engine.fit(EpochBatches(nli_arrays(), 8, seed=0), num_updates=9, log_every=1,
                   callbacks=[MetricsLog(str(tmp_path)), Checkpointing(every=3), _StopAt(7)])
    assert not (tmp_path / 'metrics.json').exists()
    partial = json.loads((tmp_path / 'metrics.partial.json').read_text())
    assert [r['update'] for r in partial] == list(range(1, 7))  # logged one update late
    _, resumed = classifier_engine(options)
    resumed.fit(EpochBatches(nli_arrays(), 8, seed=0), num_updates=9, log_every=1,
                callbacks=[MetricsLog(str(tmp_path)), Checkpointing(every=3)], resume=True)
    records = json.loads((tmp_path / 'metrics.json').read_text())
    assert [r['update'] for r in records] == list(range(1, 10))
    assert not (tmp_path / 'metrics.partial.json').exists()
    assert not (tmp_path / 'metrics.partial.csv').exists()


def test_resume_without_a_checkpoint_is_an_error(tmp_path):
    _, engine = classifier_engine({'checkpoint_dir': str(tmp_path / 'none')})
    with pytest.raises(CheckpointError, match="no checkpoint to resume from: .*none' does "
                                              "not exist"):
        engine.fit(EpochBatches(nli_arrays(), 8), epochs=1, resume=True)


def test_fine_tuning_backward_goes_through_the_trainer_loss_scale():
    """A fixed loss scale multiplies the gradient the trainer receives and is divided out
    again: same update and same true gradient norm as without one. A step that bypassed the
    trainer's backward would show a norm 1024 times too small."""
    outcomes, params = [], []
    for scale in (None, 1024.0):
        net, engine = classifier_engine({'loss_scale': scale})
        batch = tuple(nli_arrays(16))
        outcomes.append(engine.step(batch))
        params.append(values(net._collect_params_with_prefix()))
    assert outcomes[1].action == 'applied'
    np.testing.assert_allclose(outcomes[1].grad_norm, outcomes[0].grad_norm, rtol=1e-4)
    for name, value in params[0].items():
        np.testing.assert_allclose(params[1][name], value, rtol=1e-4, atol=1e-6, err_msg=name)
