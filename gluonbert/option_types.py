"""The values every option of gluonbert's commands may take, checked in one place.

Each checker is an argparse ``type=`` (called with the command-line text) that also takes
the value of a ``--config`` file (a JSON/TOML number), so both are held to the same bounds:
``--lr 0``, ``--dropout 2``, ``--num-heads 0`` or ``"batch_size": -1`` are one-line errors
naming the option, the value and what was expected. ``check_memory`` refuses a model and
batch whose activations cannot fit in this machine's memory, with the estimate.
"""
import argparse
import math
import os
import re

# d2l's BERTModel default: the position table a pretraining job builds (data are padded
# to --max-len only)
POSITIONS = 1000


class OptionType:
    """An argparse ``type=``: converts ``text`` (a string, or a config file's number) to
    ``kind`` and checks it with ``check``; ``expected`` says what is accepted."""

    def __init__(self, kind, check, expected):
        self.kind, self.check, self.expected = kind, check, expected
        self.__name__ = expected  # argparse names the type in its messages

    def __call__(self, text):
        value = self.convert(text)
        if value is None or not self.check(value):
            raise argparse.ArgumentTypeError(f'{text!r}; expected {self.expected}')
        return value

    def convert(self, text):
        if isinstance(text, bool):
            return None
        if isinstance(text, str):
            try:
                return self.kind(text)
            except ValueError:
                return None
        if isinstance(text, int) and self.kind is float:
            return float(text)
        return text if isinstance(text, self.kind) else None


def _finite(value):
    return math.isfinite(value)


positive_int = OptionType(int, lambda v: v >= 1, 'an integer >= 1')
non_negative_int = OptionType(int, lambda v: v >= 0, 'an integer >= 0')
seed = OptionType(int, lambda v: 0 <= v < 2 ** 32, 'an integer in [0, 2**32)')
positive_float = OptionType(float, lambda v: _finite(v) and v > 0, 'a finite number > 0')
non_negative_float = OptionType(float, lambda v: _finite(v) and v >= 0,
                                'a finite number >= 0')
probability = OptionType(float, lambda v: 0 <= v < 1, 'a probability in [0, 1)')
port = OptionType(int, lambda v: 1 <= v <= 65535, 'a TCP port in [1, 65535]')
decay = OptionType(float, lambda v: 0 < v <= 1, 'a factor in (0, 1]')
# <cls> a <sep> b <sep>: the shortest sequence that holds a pair
max_len = OptionType(int, lambda v: 5 <= v <= POSITIONS,
                     f'an integer in [5, {POSITIONS}] (the position table\'s size)')



def _compiles(text):
    try:
        re.compile(text)
    except re.error:
        return False
    return True


pattern = OptionType(str, _compiles, 'a regular expression')


def activation_bytes(batch_size, max_len, num_hiddens, ffn_num_hiddens, num_heads, num_blks):
    """A lower bound on the float32 activations that one training step keeps for backward:
    per block, the attention scores, softmax and dropout mask (``heads x len x len`` each)
    and about a dozen ``len x hidden`` tensors plus two ``len x ffn`` ones, per example."""
    per_block = 3 * num_heads * max_len ** 2 + max_len * (12 * num_hiddens + 2 * ffn_num_hiddens)
    return 4 * batch_size * num_blks * per_block


def available_bytes():
    """Memory available to a new allocation (Linux ``MemAvailable``), or None if unknown."""
    try:
        with open('/proc/meminfo', encoding='ascii') as f:
            for line in f:
                if line.startswith('MemAvailable:'):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    try:
        return os.sysconf('SC_AVPHYS_PAGES') * os.sysconf('SC_PAGE_SIZE')
    except (ValueError, OSError, AttributeError):
        return None


def check_memory(batch_size, max_len, num_hiddens, ffn_num_hiddens, num_heads, num_blks,
                 available=None):
    """Raise ValueError when a training step of this shape cannot fit in memory."""
    needed = activation_bytes(batch_size, max_len, num_hiddens, ffn_num_hiddens, num_heads,
                              num_blks)
    available = available_bytes() if available is None else available
    if available is not None and needed > available:
        raise ValueError(f'--max-len {max_len} with --batch-size {batch_size} needs at least '
                         f'{needed / 2 ** 30:.1f} GiB for one step\'s activations; '
                         f'{available / 2 ** 30:.1f} GiB are available: lower --batch-size or '
                         f'--max-len')
