"""The train, dev and test examples of a fine-tuning run, from files or a preset's data.

``--train`` is required unless the task is a preset that finds its own data (``snli``,
``sick``); without ``--dev``, every tenth training example is held out for it (the dev split
picks the best model, so it is never the test split); ``--test`` is optional. Limits keep the
first examples of each split (for quick runs).
"""
from dataclasses import dataclass

from .base import check_not_empty

DEV_EVERY = 10  # without a dev split: every 10th training example is held out for it


def hold_out(examples, every=DEV_EVERY):
    """``(kept, held_out)``: every ``every``-th example held out, the others kept."""
    held = examples[every - 1::every]
    kept = [e for i, e in enumerate(examples, 1) if i % every]
    return kept, held


@dataclass
class Splits:
    train: list
    dev: list
    test: list = None  # None: no test split
    note: str = ''     # where the splits came from, for the log


def load_splits(task, train=None, dev=None, test=None, *, columns=None, data_dir=None,
                fallback=None, train_limit=0, eval_limit=0):
    """The ``Splits`` of ``task``: ``train``/``dev``/``test`` are file paths (None: not
    given), ``columns`` the reading options (``text_columns``, ``label_column``, ...)."""
    columns = columns or {}
    for name, value in (('train_limit', train_limit), ('eval_limit', eval_limit)):
        if not (isinstance(value, int) and value >= 0):
            raise ValueError(f'{name}={value!r}; expected a count >= 0 (0: all)')
    if train is None:
        if not hasattr(task, 'default_splits'):
            raise ValueError(f'--train is required for task {task.name!r} (the file to '
                             f'fine-tune on); snli and sick find their data themselves')
        splits = Splits(*task.default_splits(data_dir, fallback), note='the task\'s own data')
    else:
        splits = Splits(task.read(train, **columns), None, note=f'train {train}')
    if dev is not None:
        splits.dev, splits.note = task.read(dev, **columns), splits.note + f', dev {dev}'
    elif splits.dev is None:
        splits.train, splits.dev = hold_out(splits.train)
        splits.note += f', dev: every {DEV_EVERY}th training example held out'
    if test is not None:
        splits.test, splits.note = task.read(test, **columns), splits.note + f', test {test}'
    splits.train = check_not_empty(_first(splits.train, train_limit), 'the training split')
    splits.dev = check_not_empty(_first(splits.dev, eval_limit), 'the dev split')
    if splits.test is not None:
        splits.test = check_not_empty(_first(splits.test, eval_limit), 'the test split')
    return splits


def _first(examples, limit):
    return examples[:limit] if limit else examples
