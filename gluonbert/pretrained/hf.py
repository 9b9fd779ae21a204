"""HF BERT folders (``config.json``, ``model.safetensors``, ``vocab.txt``) in and out of gluonbert.

``from_pretrained('bert-base-uncased/')`` builds the gluonbert ``BERTModel`` the config
describes and fills it tensor by tensor; ``save_hf_pretrained`` writes a (fine-tuned) model
back as such a folder, which HF's ``BertForPreTraining.from_pretrained`` loads. Weights are
read with the ``safetensors`` package's NumPy API, so no torch is needed, and nothing is ever
unpickled: ``pytorch_model.bin`` (a pickle) is refused with a way to convert it.
"""
import json
import os

import numpy as np

from .. import compat
from ..data.wordpiece import (WordPieceTokenizer, is_uncased, read_wordpiece_vocab,
                              write_wordpiece_vocab)
from ..model import BERTModel
from ..atomic import atomic_folder
from .hf_config import hf_config_from_options, options_from_hf_config
from .hf_tokenizer import HF_TOKENIZER_FILE, write_hf_tokenizer
from .loading import load_tensors
from .mapping import checkpoint_shape, hf_name, is_hf_head, is_optional

CONFIG_FILE, VOCAB_FILE, TOKENIZER_CONFIG_FILE = 'config.json', 'vocab.txt', 'tokenizer_config.json'
WEIGHTS_FILE, WEIGHTS_INDEX_FILE = 'model.safetensors', 'model.safetensors.index.json'
# Checkpoint files gluonbert does not read; the pickle-based ones are never opened
_OTHER_WEIGHTS = ('pytorch_model.bin', 'pytorch_model.bin.index.json', 'tf_model.h5',
                  'flax_model.msgpack', 'model.ckpt.index')
_PICKLE_SUFFIXES = ('.bin', '.pt', '.pth', '.pkl', '.pickle', '.ckpt')

# HF's encoder tensors sit under 'bert.' in the task models (BertForPreTraining, ...) and at
# the top in BertModel; the heads sit under 'cls.'
_ENCODER_PREFIX = 'bert.'
_DECODER_BIAS, _DECODER_BIAS_ALIAS = 'cls.predictions.bias', 'cls.predictions.decoder.bias'
# A buffer (0, 1, ..., max_len - 1) that older HF versions saved with the weights
_POSITION_IDS = 'embeddings.position_ids'


def _refuse_pickle(path):
    return ValueError(
        f'{path} is a pickle-based PyTorch checkpoint; gluonbert never unpickles files '
        f'(unpickling can run arbitrary code). Convert it once to {WEIGHTS_FILE}, e.g. with '
        f'transformers: BertForPreTraining.from_pretrained(folder).save_pretrained(folder, '
        f'safe_serialization=True)')


def _weight_files(folder):
    """The safetensors files of ``folder``: one, or the shards its index lists."""
    single = os.path.join(folder, WEIGHTS_FILE)
    if os.path.isfile(single):
        return [single]
    index = os.path.join(folder, WEIGHTS_INDEX_FILE)
    if os.path.isfile(index):
        with open(index, encoding='utf-8') as f:
            shards = sorted(set(json.load(f)['weight_map'].values()))
        return [os.path.join(folder, shard) for shard in shards]
    for name in _OTHER_WEIGHTS:
        if os.path.isfile(os.path.join(folder, name)):
            if name.startswith('pytorch_model'):
                raise _refuse_pickle(os.path.join(folder, name))
            raise ValueError(f'{folder!r} holds {name}, which gluonbert does not read; '
                             f'expected {WEIGHTS_FILE}')
    raise FileNotFoundError(f'{folder!r} has no {WEIGHTS_FILE} (nor {WEIGHTS_INDEX_FILE})')


def read_safetensors(path):
    """``{name: numpy array}`` of one safetensors file, with errors that name the file."""
    from safetensors import SafetensorError
    from safetensors.numpy import load_file
    try:
        return load_file(path)
    except (SafetensorError, ValueError, TypeError) as error:
        raise ValueError(f'{path} is not a readable safetensors file of NumPy dtypes '
                         f'({error})') from error


def _hf_tensors(folder):
    """The folder's tensors by their names in the file; HF's name of each (without the
    ``bert.`` prefix, LayerNorm's legacy ``gamma``/``beta`` as ``weight``/``bias``) -> its name
    in the file; and the names of tensors to skip silently (buffers, tied duplicates)."""
    tensors, file_names, skipped = {}, {}, []
    for path in _weight_files(folder):
        for name, array in read_safetensors(path).items():
            key = name[len(_ENCODER_PREFIX):] if name.startswith(_ENCODER_PREFIX) else name
            if 'LayerNorm.' in key:
                key = key.replace('LayerNorm.gamma', 'LayerNorm.weight').replace(
                    'LayerNorm.beta', 'LayerNorm.bias')
            if key in file_names:
                raise ValueError(f'{folder!r} holds both {file_names[key]!r} and {name!r}, the '
                                 f'same tensor under two names')
            tensors[name], file_names[key] = array, name
    if _POSITION_IDS in file_names:
        skipped.append(file_names.pop(_POSITION_IDS))
    if _DECODER_BIAS_ALIAS in file_names:  # HF ties the decoder's bias to cls.predictions.bias
        alias = file_names.pop(_DECODER_BIAS_ALIAS)
        if _DECODER_BIAS not in file_names:
            file_names[_DECODER_BIAS] = alias
        elif np.array_equal(tensors[file_names[_DECODER_BIAS]], tensors[alias]):
            skipped.append(alias)
        else:
            raise ValueError(f'{file_names[_DECODER_BIAS]!r} and {alias!r} differ; HF ties '
                             f'them, so a checkpoint holds one value')
    return tensors, file_names, skipped


def _read_json(path):
    with open(path, encoding='utf-8') as f:
        try:
            return json.load(f)
        except json.JSONDecodeError as error:
            raise ValueError(f'{path} is not valid JSON ({error})') from error


def _check_folder(folder):
    if os.path.isfile(folder):
        if folder.endswith(_PICKLE_SUFFIXES):
            raise _refuse_pickle(folder)
        raise ValueError(f'{folder!r} is a file; from_pretrained takes the folder holding '
                         f'{CONFIG_FILE}, {WEIGHTS_FILE} and {VOCAB_FILE}')
    for name in (CONFIG_FILE, VOCAB_FILE):
        if not os.path.isfile(os.path.join(folder, name)):
            raise FileNotFoundError(f'{os.path.join(folder, name)} not found: an HF BERT '
                                    f'folder holds {CONFIG_FILE}, {WEIGHTS_FILE} and '
                                    f'{VOCAB_FILE}')


def from_pretrained(folder, *, dropout=None, devices=None, return_report=False):
    """Load ``(bert, vocab)`` from an HF BERT folder (``config.json``, ``model.safetensors``,
    ``vocab.txt``), as ``load_pretrained_model`` does for d2l's folders.

    ``bert`` is a gluonbert ``BERTModel`` with the config's architecture, every tensor mapped
    by name with its shape checked; ``vocab`` is ``vocab.txt`` with d2l's special token names
    (``[CLS]`` -> ``<cls>``, ...). ``dropout`` overrides the config's; ``devices`` (a
    context or a list, default CPU) is where the parameters go, as d2l's. Heads the checkpoint
    lacks (pooler, MLM, NSP: e.g. a ``BertModel`` save) are initialized afresh, and a warning
    lists them and any unused tensors; ``return_report=True`` also returns the ``LoadReport``.
    """
    _check_folder(folder)
    config = _read_json(os.path.join(folder, CONFIG_FILE))
    options = options_from_hf_config(config, dropout=dropout)
    vocab = read_wordpiece_vocab(os.path.join(folder, VOCAB_FILE))
    if len(vocab) != options['vocab_size']:
        raise ValueError(f'{VOCAB_FILE} has {len(vocab)} tokens but config.json says '
                         f'vocab_size={options["vocab_size"]} (the embedding\'s rows): '
                         f'they must match')
    tensors, file_names, skipped = _hf_tensors(folder)
    bert = BERTModel(**options)
    report = load_tensors(bert, tensors, lambda name: file_names.get(hf_name(name)),
                          may_miss=is_optional, devices=devices, ignored=skipped)
    return (bert, vocab, report) if return_report else (bert, vocab)


def load_tokenizer(folder, vocab=None):
    """The ``WordPieceTokenizer`` an HF BERT folder was trained with.

    Lower-casing, accent stripping and CJK splitting come from ``tokenizer_config.json``; a
    folder without one is taken as uncased when ``vocab.txt`` has no capitals (as
    ``bert-base-uncased``). ``vocab`` defaults to the folder's ``vocab.txt``.
    """
    if vocab is None:
        vocab = read_wordpiece_vocab(os.path.join(folder, VOCAB_FILE))
    path = os.path.join(folder, TOKENIZER_CONFIG_FILE)
    settings = _read_json(path) if os.path.isfile(path) else {}
    lower = settings.get('do_lower_case', is_uncased(vocab))
    return WordPieceTokenizer(vocab, lower=lower, strip_accents=settings.get('strip_accents'),
                              tokenize_chinese_chars=settings.get('tokenize_chinese_chars', True))


def _write_json(path, value):
    with open(path, 'w', encoding='utf-8') as f:
        json.dump(value, f, indent=2)


def hf_tensors(bert, dtype='float32'):
    """``{HF name: numpy array}`` of a gluonbert ``BERTModel``, as ``BertForPreTraining``
    saves them: encoder under ``bert.``, heads under ``cls.``, the tied decoder weight once."""
    tensors = {}
    for name, param in compat.structural_parameters(bert).items():
        if name == 'mlm.mlp.2.weight' and bert.config['tie_mlm_decoder']:
            continue  # the token embedding, which HF does not store twice
        key = hf_name(name)
        if key is None:
            raise ValueError(f'gluonbert parameter {name!r} has no place in an HF BERT '
                             f'checkpoint')
        array = param.data().asnumpy().reshape(checkpoint_shape(name, param.shape))
        tensors[key if is_hf_head(name) else _ENCODER_PREFIX + key] = array.astype(dtype)
    return tensors


def save_hf_pretrained(bert, vocab, folder, *, tokenizer=None, dtype='float32'):
    """Write ``bert`` (a gluonbert ``BERTModel``) and ``vocab`` as an HF BERT folder:
    ``config.json``, ``model.safetensors`` (in ``dtype``), ``vocab.txt`` and, given the
    (WordPiece) ``tokenizer``, ``tokenizer_config.json`` and HF's ``tokenizer.json``.

    To save a fine-tuned ``BERTClassifier(bert)``, save ``bert``: the classifier shares its
    encoder and pooler. Loading the folder with ``from_pretrained`` gives back every tensor
    bit for bit (in float32).
    """
    from safetensors.numpy import save_file
    if len(vocab) != bert.config['vocab_size']:
        raise ValueError(f'vocab has {len(vocab)} tokens but the model\'s embedding has '
                         f'{bert.config["vocab_size"]} rows: they must match')
    config = hf_config_from_options(bert.config,
                                    pad_token_id=vocab.token_to_idx.get('<pad>', 0))
    tensors = hf_tensors(bert, dtype)
    files = (CONFIG_FILE, VOCAB_FILE, TOKENIZER_CONFIG_FILE, HF_TOKENIZER_FILE, WEIGHTS_FILE)
    with atomic_folder(folder, files, WEIGHTS_FILE, 'HF BERT folder') as staging:
        _write_json(os.path.join(staging, CONFIG_FILE), config)
        write_wordpiece_vocab(vocab, os.path.join(staging, VOCAB_FILE))
        if tokenizer is not None:
            write_hf_tokenizer(staging, tokenizer, vocab, bert.config['max_len'])
        # HF's loader wants the 'format' metadata; the other tools ignore it
        save_file(tensors, os.path.join(staging, WEIGHTS_FILE), metadata={'format': 'pt'})
