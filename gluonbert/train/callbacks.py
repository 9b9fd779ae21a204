"""What the training engine's loop does besides training: progress bar, evaluation with best
model and early stopping, metrics log and plot, checkpoints, a heartbeat for distributed runs.

A callback overrides the hooks it needs; the engine calls them on every callback in order.
Callbacks with a state (``state_dict``/``load_state_dict``) have it saved in every
checkpoint, so a resumed run keeps its best score and patience (HF #28544: patience was not
saved and a resumed run trained past its early stop).
"""
import csv
import json
import math
import os
import time

from tqdm import tqdm

from ..atomic import atomic_write, write_json
from ..distributed.watchdog import Watchdog
from ..progress import LossPlot, progress_bar


class Callback:
    """No-op hooks: ``on_start``, ``on_update`` (after each applied update), ``on_guard`` (a
    step skipped or rolled back by the trainer's guards: its ``StepOutcome`` says why),
    ``on_log`` (a logged metrics entry), ``on_evaluate`` (an evaluation's metrics),
    ``on_epoch_end``, ``on_end``, and ``on_abort`` (the fit stops on an exception, which
    follows: release what ``on_start`` took, save nothing)."""

    def on_start(self, engine, state):
        pass

    def on_update(self, engine, state, outcome):
        pass

    def on_guard(self, engine, state, outcome):
        pass

    def on_log(self, engine, state, metrics):
        pass

    def on_evaluate(self, engine, state, metrics):
        pass

    def on_epoch_end(self, engine, state):
        pass

    def on_end(self, engine, state):
        pass

    def on_abort(self, engine, state):
        pass


class ProgressBar(Callback):
    """A tqdm bar over ``total`` updates, showing the logged ``keys``."""

    def __init__(self, total, desc, keys=()):
        self.total, self.desc, self.keys = total, desc, tuple(keys)
        self._context = self._bar = None

    def on_start(self, engine, state):
        self._context = progress_bar(self.total, self.desc)
        self._bar = self._context.__enter__()
        self._bar.update(min(state.updates, self.total))

    def on_update(self, engine, state, outcome):
        self._bar.update(1)

    def on_log(self, engine, state, metrics):
        self._show(metrics)

    def on_evaluate(self, engine, state, metrics):
        self._show(metrics)

    def _show(self, metrics):
        shown = {k: f'{v:.3f}' for k, v in metrics.items() if k in self.keys}
        if shown:
            self._bar.set_postfix(**shown)

    def on_end(self, engine, state):
        self._context.__exit__(None, None, None)

    def on_abort(self, engine, state):
        if self._context is not None:  # the error's line then starts a line of its own
            self._context.__exit__(None, None, None)


class LogLines(Callback):
    """One line per logged entry and evaluation, ``step 40/200: mlm_loss 6.123, ...``, on the
    chief worker (through tqdm, so that a progress bar stays intact)."""

    def __init__(self, total, keys, note=''):
        self.total, self.keys, self.note = total, tuple(keys), note

    def on_start(self, engine, state):
        if engine.is_chief and state.updates:
            self._print(f'resumed from step {state.updates} (epoch {state.epoch + 1}, batch '
                        f'{state.batch + 1})')

    def on_log(self, engine, state, metrics):
        self._line(engine, metrics, self.note)

    def on_evaluate(self, engine, state, metrics):
        self._line(engine, metrics, ' (evaluation)')

    def on_guard(self, engine, state, outcome):
        if engine.is_chief:
            self._print(f'step {state.updates + 1}/{self.total}: {outcome}')

    def _line(self, engine, metrics, note):
        if engine.is_chief:
            values = ', '.join(f'{k} {metrics[k]:.4f}' for k in self.keys if k in metrics)
            self._print(f'step {metrics["update"]}/{self.total}: {values}{note}')

    @staticmethod
    def _print(line):
        tqdm.write(line)


class StepTimes(Callback):
    """Wall-clock seconds of every update; ``median()`` leaves out the first, which builds
    the graphs."""

    def __init__(self):
        self.seconds, self._last = [], None

    def on_start(self, engine, state):
        self._last = time.perf_counter()

    def on_update(self, engine, state, outcome):
        now = time.perf_counter()
        self.seconds.append(now - self._last)
        self._last = now

    def median(self):
        timed = sorted(self.seconds[1:])
        return timed[len(timed) // 2] if timed else None


class Evaluation(Callback):
    """Evaluate every ``every`` updates, or at the end of every epoch (``every=None``).

    ``evaluate()`` returns a dict of metrics. With ``metric``, the best evaluation (``mode``
    ``'max'`` or ``'min'``) calls ``on_best(metrics)`` (e.g. to save the model), and
    ``patience`` evaluations in a row without improvement stop the run. A ``metric`` missing
    from the first evaluation is an error naming the keys there are (HF #28530: early
    stopping turned itself off with a warning).
    """

    def __init__(self, evaluate, *, every=None, metric=None, mode='max', patience=None,
                 on_best=None):
        if mode not in ('max', 'min'):
            raise ValueError(f"mode={mode!r}; expected 'max' or 'min'")
        if patience is not None and not (isinstance(patience, int) and patience >= 1):
            raise ValueError(f'patience={patience!r}; expected an integer >= 1 or None')
        if patience is not None and metric is None:
            raise ValueError('patience needs a metric to watch')
        if every is not None and not (isinstance(every, int) and every >= 1):
            raise ValueError(f'every={every!r}; expected an integer >= 1 or None')
        self.evaluate, self.every, self.metric, self.mode = evaluate, every, metric, mode
        self.patience, self.on_best = patience, on_best
        self.history, self.best, self.best_update, self.waited = [], None, None, 0

    def on_update(self, engine, state, outcome):
        if self.every and state.updates % self.every == 0:
            self._run(engine, state)

    def on_epoch_end(self, engine, state):
        if self.every is None:
            self._run(engine, state)

    def _run(self, engine, state):
        metrics = dict(self.evaluate(), update=state.updates, epoch=state.epoch)
        self.history.append(metrics)
        for cb in engine.callbacks:
            cb.on_evaluate(engine, state, metrics)
        if self.metric is None:
            return
        if self.metric not in metrics:
            raise ValueError(f'metric={self.metric!r} is not among the evaluation\'s metrics '
                             f'{sorted(k for k in metrics if k not in ("update", "epoch"))}')
        value = metrics[self.metric]
        if self.best is None or (value > self.best if self.mode == 'max' else value < self.best):
            self.best, self.best_update, self.waited = value, state.updates, 0
            if self.on_best is not None:
                self.on_best(metrics)
            return
        self.waited += 1
        if self.patience is not None and self.waited >= self.patience:
            state.stop_reason = (f'early stop: {self.metric} has not improved on {self.best:.4f}'
                                 f' (update {self.best_update}) in {self.waited} evaluations')

    def state_dict(self):
        return {'history': self.history, 'best': self.best, 'best_update': self.best_update,
                'waited': self.waited}

    def load_state_dict(self, saved):
        self.history, self.best = list(saved['history']), saved['best']
        self.best_update, self.waited = saved['best_update'], saved['waited']


class Checkpointing(Callback):
    """The trainer's exact checkpoint every ``every`` updates and at the end of every epoch,
    with the data position and every callback's state; only the chief worker writes."""

    def __init__(self, every=None, at_epoch_end=True):
        if every is not None and not (isinstance(every, int) and every >= 1):
            raise ValueError(f'every={every!r}; expected an integer >= 1 or None')
        self.every, self.at_epoch_end = every, at_epoch_end
        self.last_saved = None

    def on_update(self, engine, state, outcome):
        if self.every and state.updates % self.every == 0:
            self._save(engine, state)

    def on_epoch_end(self, engine, state):
        if self.at_epoch_end and engine.trainer.pending_micro_batches == 0:
            self._save(engine, state)

    def on_end(self, engine, state):
        if self.last_saved != state.updates and engine.trainer.pending_micro_batches == 0:
            self._save(engine, state)

    def _save(self, engine, state):
        if engine.is_chief and self.last_saved != state.updates:
            engine.trainer.save(state.position(engine.callbacks))
        self.last_saved = state.updates


class MetricsLog(Callback):
    """Every logged and evaluated metrics entry, and every guard event, to
    ``folder/metrics.csv`` and ``metrics.json`` (``kind`` says which), and their curves to ``folder/curves.png``
    (``plot`` keys, by update), when the fit ends. While it runs, the records go to
    ``metrics.partial.csv`` and ``.json``, which a fit that fails or is killed leaves behind
    and a resumed one continues: a failed run never replaces the last finished run's
    metrics. Only the chief worker writes."""
    PARTIAL = 'metrics.partial'

    def __init__(self, folder, plot=()):
        self.folder, self.plot = folder, tuple(plot)
        self.records = []

    def on_start(self, engine, state):
        if not state.updates:
            return
        for name in (self.PARTIAL, 'metrics'):  # a resumed run keeps the earlier records
            path = os.path.join(self.folder, name + '.json')
            if os.path.isfile(path):
                with open(path, encoding='utf-8') as f:
                    self.records = [r for r in json.load(f) if r['update'] <= state.updates]
                return

    def on_log(self, engine, state, metrics):
        self._add(engine, 'train', metrics)

    def on_evaluate(self, engine, state, metrics):
        self._add(engine, 'eval', metrics)

    def on_guard(self, engine, state, outcome):
        self._add(engine, 'guard', {'update': state.updates, 'epoch': state.epoch,
                                    'event': str(outcome)})

    def _add(self, engine, kind, metrics):
        self.records.append(dict(metrics, kind=kind))
        if engine.is_chief:
            self._write(self.PARTIAL)

    def _write(self, name):
        os.makedirs(self.folder, exist_ok=True)
        keys = sorted({k for r in self.records for k in r}, key=lambda k: (k != 'kind', k))

        def write_csv(tmp):
            with open(tmp, 'w', newline='', encoding='utf-8') as f:
                writer = csv.DictWriter(f, keys)
                writer.writeheader()
                writer.writerows(self.records)

        atomic_write(os.path.join(self.folder, name + '.csv'), write_csv)
        write_json(os.path.join(self.folder, name + '.json'), self.records)

    def on_end(self, engine, state):
        if not engine.is_chief:
            return
        self._write('metrics')
        for extension in ('.csv', '.json'):
            path = os.path.join(self.folder, self.PARTIAL + extension)
            if os.path.exists(path):
                os.remove(path)
        if not (self.plot and self.records):
            return
        plot = LossPlot(self.plot)
        for key in self.plot:
            for record in self.records:
                if key in record:
                    values = [math.nan] * len(self.plot)
                    values[self.plot.index(key)] = record[key]
                    plot.add(record['update'], *values)
        atomic_write(os.path.join(self.folder, 'curves.png'),
                     lambda tmp: plot.save(tmp, 'update', fmt='png'))


class Heartbeat(Callback):
    """Ends a worker with status 124 when no update completes for ``timeout`` seconds (a dead
    peer on another host leaves it blocked in a push; ``distributed.watchdog``)."""

    def __init__(self, timeout):
        self.timeout = timeout
        self._watchdog = None

    def on_start(self, engine, state):
        self._watchdog = Watchdog(self.timeout, f'step {state.updates + 1} to complete')

    def on_update(self, engine, state, outcome):
        self._watchdog.beat(f'step {state.updates + 1} to complete')

    def on_end(self, engine, state):
        self._watchdog.stop()
