"""What a resumed run may change: the options a run was started with, kept in every checkpoint.

A resumed run continues the same model on the same data. An option that would change either
(the architecture, the training files, the batch size, the seed, the masking...) is refused,
naming the option, the checkpoint's value and the new one: the run would otherwise go on
with exit 0 and save a config.json that disagrees with its weights (4 heads for 2-head
weights). Any other option (learning rate, steps, epochs, schedule) may change; what changed
is said once.
"""
import json
import os

from .callbacks import Callback

# Options with nothing to say about the model or the data: where things are, how to run
IGNORED = ('resume', 'out', 'checkpoint_dir', 'devices', 'data_dir', 'fallback', 'summary',
           'kvstore', 'timeout', 'show_groups', 'log_every', 'test')
# Options naming files: recorded by real path and size, so that another file is seen
FILES = ('pretrained', 'train', 'dev', 'vocab', 'add_tokens', 'corpus')
PRETRAIN_FIXED = ('num_hiddens', 'ffn_num_hiddens', 'num_heads', 'num_blks', 'activation',
                  'max_len', 'batch_size', 'seed', 'masking', 'mask_rate', 'synthetic',
                  'vocab_size', 'corpus', 'doc_per_line', 'vocab', 'learn_vocab',
                  'pretrained', 'add_tokens', 'valid_fraction', 'short_seq_prob',
                  'shard_size')
FINETUNE_FIXED = ('pretrained', 'task', 'train', 'dev', 'text_columns', 'label_column',
                  'format', 'quoting', 'max_len', 'batch_size', 'seed', 'train_limit',
                  'test_limit', 'doc_stride', 'max_query_len', 'max_answer_len',
                  'split_punctuation', 'from_scratch', 'accumulate', 'group_by_length')


def _file(path):
    """``path`` as its real path and size: another file under the same name differs too."""
    if not isinstance(path, str):
        return path
    name, weight = path, None
    if not os.path.exists(name) and ':' in name:  # --corpus PATH:WEIGHT
        name, weight = name.rsplit(':', 1)
    real = os.path.realpath(name)
    size = f' ({os.path.getsize(real)} bytes)' if os.path.isfile(real) else ''
    return real + (f':{weight}' if weight is not None else '') + size


def recorded(opts):
    """The options of ``opts`` (a job's options dataclass, ``options``) as a checkpoint keeps
    them (JSON)."""
    options = {}
    for name, value in sorted(vars(opts).items()):
        if name in IGNORED:
            continue
        if name in FILES:
            value = [_file(v) for v in value] if isinstance(value, list) else _file(value)
        options[name] = json.loads(json.dumps(value, default=str))
    return options


def _flag(name):
    return '--' + name.replace('_', '-')


def _shown(value):
    if isinstance(value, list):
        return ','.join(map(str, value))
    return 'not given' if value is None else str(value)


class ResumedOptions(Callback):
    """Saves the run's options in every checkpoint; on ``--resume``, refuses a change of one
    in ``fixed`` (ValueError) and prints once what else changed."""
    state_key = 'options'

    def __init__(self, opts, fixed):
        self.options, self.fixed = recorded(opts), tuple(fixed)
        self._said = False

    def state_dict(self):
        return dict(self.options)

    def load_state_dict(self, saved):
        changed = {name: (saved[name], value) for name, value in self.options.items()
                   if name in saved and saved[name] != value}
        for name in self.fixed:
            if name in changed:
                before, after = changed[name]
                raise ValueError(f'--resume with {_flag(name)} {_shown(after)}: the checkpoint '
                                 f'was trained with {_flag(name)} {_shown(before)}, and this '
                                 f'option changes the model or the data; resume with '
                                 f'{_flag(name)} {_shown(before)}, or start a new run without '
                                 f'--resume')
        if changed and not self._said:
            self._said = True
            print('resumed with changed options: ' + ', '.join(
                f'{_flag(name)} {_shown(before)} -> {_shown(after)}'
                for name, (before, after) in changed.items()))
