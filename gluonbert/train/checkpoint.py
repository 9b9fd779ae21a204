"""Pretrained-model folders in the layout of d2l's ``bert.small``: ``vocab.json`` and
``pretrained.params``, plus our ``config.json`` with the architecture.

The chapter's ``load_pretrained_model`` reads the first two; the config lets a folder be
loaded without repeating the hyperparameters. A folder is written whole or not at all
(``gluonbert.atomic.atomic_folder``): a kill or a full disk during a save leaves the previous
model intact, never one model's vocab beside another's weights; a folder holding anything but
a previous model of the same kind is refused, not replaced.
"""
import json
import os
import re

from .. import compat
from ..atomic import atomic_folder
from ..data.vocab import Vocab
from ..model import BERTModel

VOCAB_FILE, PARAMS_FILE, CONFIG_FILE = 'vocab.json', 'pretrained.params', 'config.json'
PLOT_FILE, CURVES_FILE = 'loss.png', 'curves.png'
PRETRAINED_FILES = (VOCAB_FILE, PARAMS_FILE, CONFIG_FILE, PLOT_FILE)


def _write_json(path, value):
    with open(path, 'w', encoding='utf-8') as f:
        json.dump(value, f, indent=1 if isinstance(value, dict) else None)


def save_pretrained(net, vocab, folder, config=None, plot=None):
    """Write ``net``'s parameters, ``vocab`` and the architecture ``config`` to ``folder``
    (and ``plot``, a ``LossPlot``, as loss.png), replacing a previous pretrained folder whole."""
    with atomic_folder(folder, PRETRAINED_FILES, PARAMS_FILE, 'pretrained folder') as staging:
        if config is not None:
            _write_json(os.path.join(staging, CONFIG_FILE), config)
        _write_json(os.path.join(staging, VOCAB_FILE), list(vocab.idx_to_token))
        compat.save_parameters(net, os.path.join(staging, PARAMS_FILE))
        if plot is not None:
            plot.save(os.path.join(staging, PLOT_FILE), 'step')


def _load_parameters(net, params, vocab, devices):
    """``net.load_parameters`` with errors in structural names (``output.weight``) and a clear
    one when the vocab does not fit the token embedding."""
    try:
        net.load_parameters(params, ctx=devices)
    except AssertionError as error:
        match = re.search(r"Parameter '([^']+)' from saved params: shape incompatible "
                          r"expected (\([^)]*\)) vs saved (\([^)]*\))", str(error))
        if match is None:
            raise
        names = {p.name: name for name, p in net._collect_params_with_prefix().items()}
        name = names.get(match.group(1), match.group(1))
        if name == 'encoder.token_embedding.weight':
            raise ValueError(f'{params}: its token embedding {match.group(3)} does not match '
                             f'{VOCAB_FILE} ({len(vocab)} tokens) beside it; the vocab and '
                             f'the parameters come from different models') from None
        raise ValueError(f'{params}: parameter {name} has shape {match.group(3)} in the file, '
                         f'but the model built from its config expects {match.group(2)} (for '
                         f'output.weight: a head with another number of labels)') from None


def _read_vocab(folder):
    path = os.path.join(folder, VOCAB_FILE)
    if not os.path.isfile(path):
        raise FileNotFoundError(f'{path} not found: a pretrained folder holds {VOCAB_FILE} and '
                                f'{PARAMS_FILE}')
    return Vocab.from_json(path)


def load_pretrained_model(pretrained_model, num_hiddens=None, ffn_num_hiddens=None,
                          num_heads=None, num_blks=None, dropout=None, max_len=None,
                          devices=None):
    """Load ``(bert, vocab)`` from a pretrained folder, as the d2l NLI chapter does.

    ``pretrained_model`` is the folder. Hyperparameters left as None come from its
    ``config.json``; given ones override it (e.g. ``dropout``).
    """
    folder = pretrained_model
    params = os.path.join(folder, PARAMS_FILE)
    if not os.path.isfile(params):
        raise FileNotFoundError(f'{params} not found: {folder!r} is not a pretrained folder '
                                f'(expected {VOCAB_FILE} and {PARAMS_FILE})')
    vocab = _read_vocab(folder)
    config_path = os.path.join(folder, CONFIG_FILE)
    config = {}
    if os.path.isfile(config_path):
        with open(config_path, encoding='utf-8') as f:
            config = json.load(f)
    given = dict(num_hiddens=num_hiddens, ffn_num_hiddens=ffn_num_hiddens, num_heads=num_heads,
                 num_blks=num_blks, dropout=dropout, max_len=max_len)
    config.update({k: v for k, v in given.items() if v is not None})
    missing = [k for k in given if k not in config]
    if missing:
        raise ValueError(f'{folder!r} has no {CONFIG_FILE}; pass {", ".join(missing)}')
    config.pop('vocab_size', None)
    bert = BERTModel(len(vocab), **config)
    _load_parameters(bert, params, vocab, devices)
    return bert, vocab


CLASSIFIER_FILE = 'classifier.params'
CLASSIFIER_FILES = (CLASSIFIER_FILE, VOCAB_FILE, CONFIG_FILE, CURVES_FILE)


def save_classifier(net, vocab, folder, labels, max_len, plot=None):
    """Write a fine-tuned ``BERTClassifier``: its parameters, the vocab, and ``config.json``
    (the BERT architecture, label names, ``max_len``), all that inference needs, and ``plot``
    (a ``LossPlot``) as curves.png; a previous fine-tuned folder is replaced whole."""
    bert_config = dict(net.encoder_config)
    with atomic_folder(folder, CLASSIFIER_FILES, CLASSIFIER_FILE,
                       'fine-tuned model folder') as staging:
        _write_json(os.path.join(staging, CONFIG_FILE),
                    dict(bert=bert_config, labels=list(labels), max_len=max_len))
        _write_json(os.path.join(staging, VOCAB_FILE), list(vocab.idx_to_token))
        compat.save_parameters(net, os.path.join(staging, CLASSIFIER_FILE))
        if plot is not None:
            plot.save(os.path.join(staging, CURVES_FILE), 'epoch')


def load_classifier(folder, devices=None):
    """``(net, vocab, config)`` of a folder written by ``save_classifier``."""
    from ..model import BERTClassifier
    params = os.path.join(folder, CLASSIFIER_FILE)
    config_path = os.path.join(folder, CONFIG_FILE)
    for path in (params, config_path):
        if not os.path.isfile(path):
            raise FileNotFoundError(f'{path} not found: {folder!r} is not a fine-tuned model '
                                    f'folder (expected {CLASSIFIER_FILE}, {CONFIG_FILE}, '
                                    f'{VOCAB_FILE})')
    vocab = _read_vocab(folder)
    with open(config_path, encoding='utf-8') as f:
        config = json.load(f)
    bert_config = dict(config['bert'])
    if bert_config.pop('vocab_size') != len(vocab):
        raise ValueError(f'{folder}: {VOCAB_FILE} holds {len(vocab)} tokens but the model was '
                         f'built for vocab_size={config["bert"]["vocab_size"]}')
    net = BERTClassifier(BERTModel(len(vocab), **bert_config), num_classes=len(config['labels']))
    _load_parameters(net, params, vocab, devices)
    return net, vocab, config
