"""Training checkpoints that lose nothing, and that a crash cannot half-write.

A checkpoint is a folder ``step-00000042/`` holding

- ``params.nd``: every parameter by structural name (first device's copy), MXNet's array
  format, so it does not depend on the number or kind of devices;
- ``optimizer.nd``: every optimizer state array (Adam's mean and variance, a float32 master
  copy...) by parameter name;
- ``state.json``: the optimizer's per-parameter update counts (Adam's bias correction reads
  them), the number of updates (the schedule's position), the loss scale, the guard's counts,
  the Python and NumPy random states, the seed of MXNet's generator, and the caller's data
  position;
- ``MANIFEST.json``: the size and SHA-256 of each file, written last.

Nothing is unpickled on load (MXNet's ``Trainer.load_states`` unpickles a file, which runs
whatever code it holds): arrays are read with ``mx.nd.load``, the rest is JSON. MXNet 1.9.1
cannot read its generator's state; the trainer reseeds it from ``(seed, updates)`` after
every update, so two integers restore it.

Writes are atomic (``gluonbert.atomic.atomic_folder``): the files go to a temporary folder,
the manifest is written, each is fsynced, and the folder is renamed into place, or exchanged
with a previous checkpoint of the same step in one step; a process killed at any instant
leaves either the previous checkpoints or the new one, never a half one or none. On
load every file is checked against the manifest; ``CheckpointManager.load_latest`` falls back
to the newest good checkpoint and says which one it skipped and why.
"""
import json
import os
import random
import re
import shutil
import warnings

import mxnet as mx
import numpy as np

from .. import compat
from ..atomic import atomic_folder, remove_stale_staging, write_json
from ..digest import file_digest

FORMAT = 1
MANIFEST, STATE, PARAMS, OPTIMIZER = 'MANIFEST.json', 'state.json', 'params.nd', 'optimizer.nd'
_STEP_DIR = re.compile(r'^step-(\d{8})$')
_META_KEYS = ('num_updates', 'optimizer', 'loss_scale', 'guard', 'rng', 'data_position')


class CheckpointError(ValueError):
    """A checkpoint is missing, truncated, corrupt, or does not fit the model."""


def _legacy(array):
    return array.as_nd_ndarray() if isinstance(array, mx.np.ndarray) else array


# ---- what a training state holds ---------------------------------------------------------

def capture_rng():
    """Python's and NumPy's global random states, as JSON values."""
    kind, keys, pos, has_gauss, cached = np.random.get_state()
    version, internal, gauss_next = random.getstate()
    return {'python': [version, list(internal), gauss_next],
            'numpy': [kind, keys.tolist(), int(pos), int(has_gauss), float(cached)]}


def restore_rng(state):
    """Set Python's and NumPy's global random states from ``capture_rng``'s value."""
    version, internal, gauss_next = state['python']
    random.setstate((version, tuple(internal), gauss_next))
    kind, keys, pos, has_gauss, cached = state['numpy']
    np.random.set_state((kind, np.array(keys, dtype=np.uint32), pos, has_gauss, cached))


def _flatten(state, key, arrays):
    """Store the NDArrays of an optimizer state tree in ``arrays``; return its JSON structure."""
    if state is None:
        return None
    if isinstance(state, mx.nd.NDArray):
        arrays[key] = _legacy(state)
        return key
    if isinstance(state, (tuple, list)):
        return [_flatten(child, f'{key}/{i}', arrays) for i, child in enumerate(state)]
    raise CheckpointError(f'optimizer state {key!r} is a {type(state).__name__}; only arrays, '
                          f'None and tuples of them can be saved')


def _unflatten(structure, arrays, context):
    if structure is None:
        return None
    if isinstance(structure, str):
        if structure not in arrays:
            raise CheckpointError(f'optimizer state array {structure!r} is missing')
        return arrays[structure].copyto(context)
    return tuple(_unflatten(child, arrays, context) for child in structure)


def capture_optimizer(trainer, named):
    """The arrays and the JSON description of ``trainer``'s optimizer state.

    ``trainer`` is a ``gluon.Trainer`` updating on the workers (``update_on_kvstore=False``);
    every device holds the same state, so the first device's is saved.
    """
    updater, optimizer = compat.trainer_updaters(trainer)[0], trainer.optimizer
    index_of = compat.trainer_param_indices(trainer)
    arrays, structures, counts = {}, {}, {}
    all_counts = compat.update_counts(optimizer)
    for name, param in named.items():
        index = index_of.get(param.name)
        if index is None:
            continue
        if index in updater.states:
            structures[name] = _flatten(updater.states[index], name, arrays)
        count = max((c.get(index, 0) for c in all_counts.values()), default=0)
        if count:
            counts[name] = count
    return arrays, {'class': type(optimizer).__name__, 'num_update': optimizer.num_update,
                    'update_counts': counts, 'states': structures}


def check_optimizer(trainer, named, arrays, meta):
    """Raise CheckpointError unless ``restore_optimizer`` can put ``meta``'s state into
    ``trainer`` whole: the same optimizer class, only parameters it trains, every array
    present with its parameter's shape. Changes nothing."""
    optimizer = trainer.optimizer
    if meta.get('class') != type(optimizer).__name__:
        raise CheckpointError(f'the checkpoint holds {meta.get("class")} state; this trainer '
                              f'uses {type(optimizer).__name__}')
    trained = {name for name, param in named.items()
               if param.name in compat.trainer_param_indices(trainer)}
    unknown = (set(meta['states']) | set(meta['update_counts'])) - trained
    if unknown:
        raise CheckpointError(f'the checkpoint has optimizer state for {sorted(unknown)[:5]}, '
                              f'which this trainer does not train (another freeze=?)')
    for name, structure in meta['states'].items():
        for key in _leaves(structure):
            if key not in arrays:
                raise CheckpointError(f'optimizer state array {key!r} is missing')
            if arrays[key].size != int(np.prod(named[name].shape)):
                raise CheckpointError(f'optimizer state {key!r} has shape '
                                      f'{arrays[key].shape}; parameter {name!r} has '
                                      f'{named[name].shape}')


def _leaves(structure):
    if structure is None:
        return []
    if isinstance(structure, str):
        return [structure]
    return [key for child in structure for key in _leaves(child)]


def restore_optimizer(trainer, named, arrays, meta):
    """Put the optimizer state of ``capture_optimizer`` into ``trainer``, on every device
    (after ``check_optimizer``)."""
    check_optimizer(trainer, named, arrays, meta)
    optimizer = trainer.optimizer
    param_indices = compat.trainer_param_indices(trainer)
    index_of = {name: param_indices[param.name] for name, param in named.items()
                if param.name in param_indices}
    for updater, context in zip(compat.trainer_updaters(trainer), compat.trainer_contexts(trainer)):
        updater.states.clear()
        updater.states_synced.clear()
        for name, structure in meta['states'].items():
            index = index_of[name]
            updater.states[index] = _unflatten(structure, arrays, context)
            updater.states_synced[index] = True
    counts = {index_of[name]: count for name, count in meta['update_counts'].items()}
    compat.set_update_counts(optimizer, compat.trainer_contexts(trainer), counts)
    optimizer.num_update = meta['num_update']


def capture_params(named):
    """Every parameter's value on its first device, by structural name."""
    return {name: _legacy(param.list_data()[0]) for name, param in named.items()}


def check_params(named, arrays):
    """Raise CheckpointError unless ``arrays`` holds every parameter of ``named``, no other,
    each of its shape. Changes nothing."""
    missing = [name for name in named if name not in arrays]
    extra = [name for name in arrays if name not in named]
    if missing or extra:
        raise CheckpointError(f'the checkpoint does not fit the model: missing {missing[:5]}, '
                              f'unexpected {extra[:5]}')
    for name, param in named.items():
        if tuple(arrays[name].shape) != tuple(param.shape):
            raise CheckpointError(f'parameter {name!r} has shape {param.shape}; the checkpoint '
                                  f'holds {arrays[name].shape}')


def restore_params(named, arrays):
    """Set every parameter of ``named`` (on all its devices) from ``arrays`` (after
    ``check_params``)."""
    check_params(named, arrays)
    for name, param in named.items():
        value = arrays[name]
        current = param.list_data()[0]
        param.set_data(value.as_np_ndarray() if isinstance(current, mx.np.ndarray) else value)


# ---- files: atomic write, manifest, verified read ----------------------------------------

def write_checkpoint(root, step, arrays_by_file, meta):
    """Write ``{file: {key: NDArray}}`` and the JSON ``meta`` as ``root/step-<step>``, atomically.

    Returns the checkpoint's path. An existing checkpoint of the same step is replaced in one
    exchange (``gluonbert.atomic.atomic_folder``), so a kill never leaves that step without a
    complete copy.
    """
    os.makedirs(root, exist_ok=True)
    final = os.path.join(root, f'step-{step:08d}')
    names = tuple(arrays_by_file) + (STATE, MANIFEST)
    with atomic_folder(final, names, MANIFEST, 'checkpoint') as tmp:
        for filename, arrays in arrays_by_file.items():
            compat.save_ndarrays(os.path.join(tmp, filename), arrays)
        write_json(os.path.join(tmp, STATE), dict(meta, format=FORMAT), indent=None)
        files = {}
        for filename in sorted(os.listdir(tmp)):
            path = os.path.join(tmp, filename)
            files[filename] = {'bytes': os.path.getsize(path),
                               'sha256': file_digest(path, 'sha256')}
        write_json(os.path.join(tmp, MANIFEST), {'format': FORMAT, 'step': step, 'files': files})
    return final


def read_checkpoint(path):
    """``(arrays_by_file, meta)`` of the checkpoint at ``path``, verified against its manifest.

    Raises ``CheckpointError`` saying what is wrong: no manifest (an interrupted write), a
    missing file, a file of the wrong size (truncated) or with the wrong checksum (corrupt).
    """
    if not os.path.isdir(path):
        raise CheckpointError(f'{path}: not a checkpoint folder ('
                              + ('a file' if os.path.exists(path) else 'no such folder') + ')')
    manifest_path = os.path.join(path, MANIFEST)
    try:
        with open(manifest_path, encoding='utf-8') as f:
            manifest = json.load(f)
        files = manifest['files']
    except FileNotFoundError:
        raise CheckpointError(f'{path}: no {MANIFEST} (not a checkpoint, or its write was '
                              f'interrupted)') from None
    except (ValueError, KeyError, TypeError) as error:
        raise CheckpointError(f'{manifest_path} is unreadable: {error}') from None
    if manifest.get('format') != FORMAT:
        raise CheckpointError(f'{path}: format {manifest.get("format")!r}; this gluonbert '
                              f'reads format {FORMAT}')
    for filename, expected in files.items():
        file_path = os.path.join(path, filename)
        if not os.path.isfile(file_path):
            raise CheckpointError(f'{file_path} is missing')
        size = os.path.getsize(file_path)
        if size != expected['bytes']:
            raise CheckpointError(f'{file_path} has {size} bytes, the manifest says '
                                  f'{expected["bytes"]} (truncated?)')
        if file_digest(file_path, 'sha256') != expected['sha256']:
            raise CheckpointError(f'{file_path} does not match its SHA-256 checksum (corrupt)')
    try:
        with open(os.path.join(path, STATE), encoding='utf-8') as f:
            meta = json.load(f)
        arrays = {filename: compat.load_ndarrays(os.path.join(path, filename))
                  for filename in files if filename.endswith('.nd')}
    except (OSError, ValueError) as error:
        raise CheckpointError(f'{path} is unreadable: {error}') from None
    missing = [key for key in _META_KEYS if key not in meta]
    if missing or PARAMS not in arrays:
        raise CheckpointError(f'{path}: not a gluonbert trainer checkpoint (no '
                              f'{", ".join(missing) or PARAMS})')
    return arrays, meta


class CheckpointManager:
    """The checkpoints of one run in ``root``: save, keep the last ``keep_last``, load the
    newest good one."""

    def __init__(self, root, keep_last=3):
        if not (isinstance(keep_last, int) and keep_last >= 1):
            raise ValueError(f'keep_last={keep_last!r}; expected an integer >= 1')
        self.root, self.keep_last = root, keep_last

    def checkpoints(self):
        """Paths of the complete-looking checkpoints, oldest first."""
        if not os.path.isdir(self.root):
            return []
        steps = sorted(int(m.group(1)) for name in os.listdir(self.root)
                       if (m := _STEP_DIR.match(name)))
        return [os.path.join(self.root, f'step-{step:08d}') for step in steps]

    def save(self, step, arrays_by_file, meta, replace_all=False):
        """Write the checkpoint of ``step``, then delete all but the newest ``keep_last``;
        with ``replace_all`` (a run's first checkpoint, not resumed) every other one: those
        of an earlier run in the same folder, whose higher steps would otherwise outlive this
        run's and be resumed from."""
        self._remove_leftovers()
        path = write_checkpoint(self.root, step, arrays_by_file, meta)
        paths = self.checkpoints()
        for old in ([p for p in paths if p != path] if replace_all else
                    paths[:-self.keep_last]):
            shutil.rmtree(old, ignore_errors=True)
        return path

    def _remove_leftovers(self):
        """Temporary folders of writers that died mid-save."""
        remove_stale_staging(self.root)

    def why_empty(self):
        """Why there is nothing to resume from in ``root``: one line for the user."""
        if not os.path.exists(self.root):
            return f'no checkpoint to resume from: {self.root!r} does not exist'
        if not os.path.isdir(self.root):
            return f'no checkpoint to resume from: {self.root!r} is a file, not a folder'
        return (f'no checkpoint to resume from: {self.root!r} holds no step-NNNNNNNN '
                f'checkpoint folder')

    def load_latest(self, max_step=None):
        """``(path, arrays_by_file, meta)`` of the newest good checkpoint (of a step up to
        ``max_step``, when given), or None if there is none. A bad newer one is skipped with a
        warning naming it and the reason; if every checkpoint is bad, ``CheckpointError``
        lists them all."""
        problems = []
        paths = self.checkpoints()
        if max_step is not None:
            paths = [p for p in paths if int(_STEP_DIR.match(os.path.basename(p)).group(1))
                     <= max_step]
        for path in reversed(paths):
            try:
                arrays, meta = read_checkpoint(path)
            except CheckpointError as error:
                problems.append(str(error))
                continue
            if problems:
                warnings.warn(f'skipped {len(problems)} unusable checkpoint(s) ('
                              + '; '.join(problems) + f'); resuming from {path}', stacklevel=3)
            return path, arrays, meta
        if problems:
            raise CheckpointError('no usable checkpoint in ' + self.root + ': ' +
                                  '; '.join(problems))
        return None
