"""A pretrained model as a folder, in the layout of d2l's ``bert.small``: ``vocab.json`` and
``pretrained.params``, plus our ``config.json`` with the architecture
(``gluonbert.save_pretrained``, ``gluonbert.load_pretrained_model``).

The chapter's ``load_pretrained_model`` reads the first two; the config lets a folder be
loaded without repeating the hyperparameters. A folder is written whole or not at all
(``gluonbert.atomic.atomic_folder``): a kill or a full disk during a save leaves the previous
model intact, never one model's vocab beside another's weights; a folder holding anything but
a previous model of the same kind is refused, not replaced. Fine-tuned task folders
(``tasks/saved.py``) record and check their vocabulary and weights the same way.
"""
import hashlib
import json
import os
import re

import numpy as np

from .. import compat
from ..atomic import atomic_folder, check_replaceable, write_json
from ..data.tokenization import TOKENIZER_FILE, describe_tokenizer
from ..data.vocab import Vocab
from ..digest import file_digest
from ..json_file import read_json
from ..model import BERTModel

VOCAB_FILE, PARAMS_FILE, CONFIG_FILE = 'vocab.json', 'pretrained.params', 'config.json'
PLOT_FILE = 'loss.png'
VOCAB_DIGEST = 'vocab_sha256'
# config.json's record of the weights: their file's SHA-256 and the options their shapes
# cannot tell (2-head and 4-head weights have the same shapes)
WEIGHTS_RECORD, UNSEEN_IN_SHAPES = 'weights', ('num_heads', 'activation', 'layer_norm_eps')
ARCHITECTURE = ('num_hiddens', 'ffn_num_hiddens', 'num_heads', 'num_blks', 'max_len')
PRETRAINED_FILES = (VOCAB_FILE, PARAMS_FILE, CONFIG_FILE, PLOT_FILE, TOKENIZER_FILE)
PRETRAINED_KIND = 'pretrained folder'


def _vocab_digest(tokens):
    """SHA-256 of the token list: a vocab.json shuffled (or swapped for another of the same
    size) beside the weights is caught on load, not used to misread every id."""
    return hashlib.sha256(json.dumps(list(tokens)).encode('utf-8')).hexdigest()


def weights_record(params, config):
    """What ``config.json`` records of the weights in the file ``params``, saved with the
    architecture ``config``: the file's SHA-256 and the options its shapes cannot tell."""
    return dict({k: config[k] for k in UNSEEN_IN_SHAPES if k in config},
                sha256=file_digest(params, 'sha256'))


def check_weights_record(config, record, params, config_path):
    """ValueError unless the weights in ``params`` are the file ``record`` describes and
    ``config`` (the architecture to build) has the options they were trained with; a folder
    saved without a record (None) is not checked."""
    if record is None:
        return
    if not isinstance(record, dict) or not isinstance(record.get('sha256'), str):
        raise ValueError(f'{config_path}: "{WEIGHTS_RECORD}" is {record!r}; expected the '
                         f'record gluonbert saves (the weights\' sha256 and '
                         f'{", ".join(UNSEEN_IN_SHAPES)})')
    if file_digest(params, 'sha256') != record['sha256']:
        raise ValueError(f'{params} is not the weights file its folder was saved with (its '
                         f'{CONFIG_FILE} records another sha256); the folder mixes files of '
                         f'two models')
    for name in UNSEEN_IN_SHAPES:
        if name in record and config.get(name) != record[name]:
            raise ValueError(f'{config_path}: {name}={config.get(name)!r}, but the weights in '
                             f'{params} were trained with {name}={record[name]!r} (recorded '
                             f'with their sha256; their shapes cannot tell): restore '
                             f'{name}={record[name]!r}')


def check_pretrained_folder(folder):
    """Raise FileExistsError unless ``save_pretrained`` may write ``folder``: for a job to
    fail before its work, not after."""
    check_replaceable(os.path.abspath(folder), PRETRAINED_FILES, PARAMS_FILE,
                      PRETRAINED_KIND)


def non_finite_parameter(net):
    """The structural name of ``net``'s first parameter holding NaN or infinite values, or
    None when all are finite."""
    for name, param in compat.structural_parameters(net).items():
        if not np.isfinite(param.list_data()[0].asnumpy()).all():
            return name
    return None


def check_finite(net, folder):
    """ValueError naming ``folder`` and the parameter unless every parameter of ``net`` is
    finite: a model holding NaN or infinite values is never saved over a good one."""
    name = non_finite_parameter(net)
    if name is not None:
        raise ValueError(f'{folder}: not saved: parameter {name} holds NaN or infinite '
                         f'values (the run diverged, or its model held them from the start); '
                         f'the folder is left as it was')


def save_pretrained(net, vocab, folder, config=None, plot=None, tokenizer=None):
    """Write ``net``'s parameters, ``vocab`` and the architecture ``config`` to ``folder``
    (and ``plot``, a ``LossPlot``, as loss.png; ``tokenizer``'s settings as tokenizer.json,
    so that fine-tuning and serving split text as pretraining did), replacing a previous
    pretrained folder whole; refused (ValueError) when a parameter is not finite."""
    check_finite(net, folder)
    with atomic_folder(folder, PRETRAINED_FILES, PARAMS_FILE, PRETRAINED_KIND) as staging:
        params = os.path.join(staging, PARAMS_FILE)
        compat.save_parameters(net, params)
        if config is not None:
            write_json(os.path.join(staging, CONFIG_FILE),
                       dict(config, **{VOCAB_DIGEST: _vocab_digest(vocab.idx_to_token),
                                       WEIGHTS_RECORD: weights_record(params, config)}))
        write_json(os.path.join(staging, VOCAB_FILE), list(vocab.idx_to_token), indent=None)
        if plot is not None:
            plot.save(os.path.join(staging, PLOT_FILE), 'step')
        if tokenizer is not None:
            write_json(os.path.join(staging, TOKENIZER_FILE), describe_tokenizer(tokenizer))


def _load_parameters(net, params, vocab, devices):
    """``net.load_parameters`` with errors in structural names (``output.weight``) and a clear
    one when the vocab does not fit the token embedding."""
    try:
        compat.load_parameters(net, params, devices)
    except AssertionError as error:
        other = _other_models_file(net, params, str(error))
        if other is not None:
            raise ValueError(other) from None
        match = re.search(r"Parameter '([^']+)' from saved params: shape incompatible "
                          r"expected (\([^)]*\)) vs saved (\([^)]*\))", str(error))
        if match is None:
            raise
        names = {p.name: name for name, p in compat.structural_parameters(net).items()}
        name = names.get(match.group(1), match.group(1))
        if name == 'encoder.token_embedding.weight':
            raise ValueError(f'{params}: its token embedding {match.group(3)} does not match '
                             f'{VOCAB_FILE} ({len(vocab)} tokens) beside it; the vocab and '
                             f'the parameters come from different models') from None
        raise ValueError(f'{params}: parameter {name} has shape {match.group(3)} in the file, '
                         f'but the model built from its config expects {match.group(2)} (for '
                         f'output.weight: a head with another number of labels)') from None
    except compat.UnreadableParameters:
        raise
    except AttributeError:  # MXNet's "'list' object has no attribute 'keys'"
        arrays = compat.load_ndarrays(params)
        if isinstance(arrays, dict) and arrays:
            raise
        held = f'{len(arrays)} unnamed arrays' if arrays else 'no arrays'
        raise ValueError(f'{params} holds {held}; expected the named parameters '
                         f'save_parameters writes') from None
    except ValueError as error:  # MXNet's for a parameter the model lacks ("ignore_extra")
        other = _other_models_file(net, params, str(error))
        if other is None:
            raise
        raise ValueError(other) from None
    name = non_finite_parameter(net)
    if name is not None:
        raise ValueError(f'{params}: parameter {name} holds NaN or infinite values; the '
                         f'model it was saved from had diverged')


def _other_models_file(net, params, message):
    """The error for a parameter file of another kind of model (MXNet's "is missing in file
    ... Set allow_missing=True" or "is not present in ParameterDict ... Set
    ignore_extra=True"), naming the parameter and the parts each holds, or for a file whose
    names are not structural (MXNet's legacy loading by prefix); None for others."""
    file_names = sorted(compat.load_ndarrays(params))
    if not any('.' in name for name in file_names):  # MXNet loads these by global prefix
        shown = ', '.join(file_names[:3]) + (', ...' if len(file_names) > 3 else '')
        return (f'{params} holds arrays named {shown}, none by the model\'s structure '
                f'(encoder.pos_embedding, ...) as save_parameters names them; it is no '
                f'gluonbert or d2l parameter file (collect_params().save() names by MXNet\'s '
                f'global prefixes, which depend on the blocks built before)')
    missing = re.search(r"Parameter '([^']+)' is missing in file", message)
    extra = re.search(r"Parameter '([^']+)' loaded from file '[^']*' is not present", message)
    if missing is None and extra is None:
        return None
    names = {p.name: name for name, p in compat.structural_parameters(net).items()}
    model_parts = sorted({name.split('.')[0] for name in names.values()})
    file_parts = sorted({name.split('.')[0] for name in file_names})
    what = (f'lacks parameter {names.get(missing.group(1), missing.group(1))}, which'
            if missing is not None else f'holds parameter {extra.group(1)}, which no part of')
    return (f'{params} {what} the model its folder describes needs: the file holds '
            f'{", ".join(file_parts)}, the model has {", ".join(model_parts)}; it is another '
            f'kind of model\'s file (a fine-tuned model.params in place of pretrained.params, '
            f'or the reverse?)')


def _read_vocab(folder, config):
    path = os.path.join(folder, VOCAB_FILE)
    if not os.path.isfile(path):
        raise FileNotFoundError(f'{path} not found: a pretrained folder holds {VOCAB_FILE} and '
                                f'{PARAMS_FILE}')
    vocab = Vocab.from_json(path)
    digest = config.pop(VOCAB_DIGEST, None)
    if digest is not None and digest != _vocab_digest(vocab.idx_to_token):
        raise ValueError(f'{path} is not the vocabulary the model in {folder!r} was saved with '
                         f'(its {CONFIG_FILE} records another {VOCAB_DIGEST}); every token id '
                         f'would be read as another token')
    return vocab


def _build_bert(vocab, config, path):
    """``BERTModel(len(vocab), **config)``, an unknown or malformed option named with the file."""
    try:
        return BERTModel(len(vocab), **config)
    except TypeError as error:
        raise ValueError(f'{path}: {error}; expected BERTModel options') from None
    except ValueError as error:
        raise ValueError(f'{path}: {error}') from None


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
    config_path = os.path.join(folder, CONFIG_FILE)
    config = read_json(config_path, 'a JSON object of BERTModel options') \
        if os.path.isfile(config_path) else {}
    vocab = _read_vocab(folder, config)
    given = dict(num_hiddens=num_hiddens, ffn_num_hiddens=ffn_num_hiddens, num_heads=num_heads,
                 num_blks=num_blks, max_len=max_len)
    for name, value in given.items():
        if value is not None and name in config and config[name] != value:
            raise ValueError(f'{name}={value!r}, but the model in {folder!r} was saved with '
                             f'{name}={config[name]!r} ({CONFIG_FILE}); leave it None to read '
                             f'it from there')
    config.update({k: v for k, v in given.items() if v is not None})
    if dropout is not None:
        config['dropout'] = dropout
    missing = [k for k in (*ARCHITECTURE, 'dropout') if k not in config]
    if missing:
        where = (f'its {CONFIG_FILE} lacks' if os.path.isfile(config_path)
                 else f'it has no {CONFIG_FILE}; pass')
        raise ValueError(f'{folder!r}: {where} {", ".join(missing)}')
    config.pop('vocab_size', None)
    record = config.pop(WEIGHTS_RECORD, None)
    bert = _build_bert(vocab, config, config_path)
    _load_parameters(bert, params, vocab, devices)
    check_weights_record(config, record, params, config_path)
    return bert, vocab
