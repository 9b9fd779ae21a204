"""One seed for everything random in a run: Python's, NumPy's and MXNet's generators.

Data order (``batches.EpochBatches``), masking (``load_wiki_dataset(seed=)``), dropout after
each update (``BERTTrainer(seed=)``) and initialisation all derive from it, so the same
command twice gives bit-identical parameters.
"""
import random

import mxnet as mx
import numpy as np


def seed_everything(seed):
    """Seed Python's ``random``, NumPy's global generator and MXNet's."""
    if not isinstance(seed, int) or isinstance(seed, bool) or seed < 0:
        raise ValueError(f'seed={seed!r}; expected an integer >= 0')
    random.seed(seed)
    np.random.seed(seed % 2 ** 32)
    mx.random.seed(seed)
