"""HF BERT folders (``config.json``, ``model.safetensors``, ``tokenizer.json`` or ``vocab.txt``)
in and out of gluonbert.

``from_pretrained('bert-base-uncased/')`` builds the gluonbert ``BERTModel`` the config
describes and fills it tensor by tensor, from any BERT-architecture save (``BertModel``,
``BertForPreTraining``, ``BertForMaskedLM``, ``BertFor...`` task models, sentence-transformers
folders, one ``model.safetensors`` or shards listed in an index); ``save_hf_pretrained`` writes a (fine-tuned) model
back as such a folder, which HF's ``BertForPreTraining.from_pretrained`` loads. Weights are
read with the ``safetensors`` package's NumPy API, so no torch is needed, and nothing is ever
unpickled: ``pytorch_model.bin`` (a pickle) is refused with a way to convert it.
"""
import json
import os

import numpy as np

from .. import compat
from ..data.tokenization import tokenizer_with_vocab
from ..data.wordpiece import write_wordpiece_vocab
from ..model import BERTModel
from ..atomic import atomic_folder, check_replaceable, write_json
from ..json_file import read_json
from .hf_config import hf_config_from_options, options_from_hf_config
from .hf_tokenizer import (TOKENIZER_CONFIG_FILE, TOKENIZER_FILE, VOCAB_FILE, has_vocabulary,
                           load_vocab_and_tokenizer, write_hf_tokenizer)
from .loading import load_tensors
from .mapping import checkpoint_shape, hf_name, is_hf_head, is_optional

CONFIG_FILE = 'config.json'
# sentence-transformers folders list their modules here; the BERT is the Transformer module's
ST_MODULES_FILE, ST_TRANSFORMER = 'modules.json', 'sentence_transformers.models.Transformer'
WEIGHTS_FILE, WEIGHTS_INDEX_FILE = 'model.safetensors', 'model.safetensors.index.json'
# What an HF folder gluonbert writes holds (``save_hf_pretrained``, ``hf_tasks``): a folder
# it replaces holds only these
HF_FILES = (CONFIG_FILE, VOCAB_FILE, TOKENIZER_CONFIG_FILE, TOKENIZER_FILE, WEIGHTS_FILE)
HF_KIND = 'HF BERT folder'
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


def model_folder(folder):
    """The folder holding the BERT of ``folder``: ``folder`` itself, or the Transformer
    module's folder of a sentence-transformers save (``modules.json``'s path; the weights at
    the root, or in ``0_Transformer/`` in older saves)."""
    folder = os.fspath(folder)
    modules = os.path.join(folder, ST_MODULES_FILE)
    if os.path.isfile(modules):
        entries = read_json(modules, 'a JSON list of sentence-transformers modules', list)
        paths = [entry.get('path', '') for entry in entries if isinstance(entry, dict)
                 and entry.get('type') == ST_TRANSFORMER]
        if len(paths) != 1:
            raise ValueError(f'{modules}: expected one {ST_TRANSFORMER} module (the BERT), '
                             f'found {len(paths)}')
        return os.path.join(folder, paths[0]) if paths[0] else folder
    return folder


def is_hf_folder(folder):
    """Whether ``folder`` looks like an HF BERT folder (or a sentence-transformers one)."""
    folder = model_folder(folder)
    return os.path.isfile(os.path.join(folder, CONFIG_FILE)) and has_vocabulary(folder)


def _check_folder(folder):
    if os.path.isfile(folder):
        if folder.endswith(_PICKLE_SUFFIXES):
            raise _refuse_pickle(folder)
        raise ValueError(f'{folder!r} is a file; from_pretrained takes the folder holding '
                         f'{CONFIG_FILE}, {WEIGHTS_FILE} and {TOKENIZER_FILE} or {VOCAB_FILE}')
    if not os.path.isfile(os.path.join(folder, CONFIG_FILE)):
        raise FileNotFoundError(f'{os.path.join(folder, CONFIG_FILE)} not found: an HF BERT '
                                f'folder holds {CONFIG_FILE}, {WEIGHTS_FILE} and '
                                f'{TOKENIZER_FILE} or {VOCAB_FILE}')


def load_hf_folder(folder, *, dropout=None, devices=None):
    """``(bert, vocab, tokenizer, report)`` of an HF BERT folder, without a warning: the
    ``LoadReport`` says what was loaded, initialized afresh and left unused."""
    folder = model_folder(folder)
    _check_folder(folder)
    config_path = os.path.join(folder, CONFIG_FILE)
    try:
        options = options_from_hf_config(
            read_json(config_path, "a JSON object of BERT settings (HF's BertConfig)"),
            dropout=dropout)
    except ValueError as error:
        raise ValueError(str(error).replace(f'{CONFIG_FILE}:', f'{config_path}:', 1)) from None
    vocab, tokenizer = load_vocab_and_tokenizer(folder)
    if len(vocab) != options['vocab_size']:
        raise ValueError(f'{folder!r}: the vocabulary has {len(vocab)} tokens but '
                         f'{CONFIG_FILE} says vocab_size={options["vocab_size"]} (the '
                         f'embedding\'s rows): they must match')
    tensors, file_names, skipped = _hf_tensors(folder)
    bert = BERTModel(**options)
    report = load_tensors(bert, tensors, lambda name: file_names.get(hf_name(name)),
                          may_miss=is_optional, devices=devices, ignored=skipped)
    return bert, vocab, tokenizer, report


def from_pretrained(folder, *, dropout=None, devices=None, return_report=False):
    """Load ``(bert, vocab)`` from an HF BERT folder (``config.json``, ``model.safetensors``
    or a sharded index, and ``tokenizer.json`` or ``vocab.txt``), as ``load_pretrained_model``
    does for d2l's folders.

    ``bert`` is a gluonbert ``BERTModel`` with the config's architecture, every tensor mapped
    by name with its shape checked (with or without the ``bert.`` prefix); ``vocab`` has d2l's
    special token names (``[CLS]`` -> ``<cls>``, ...). A sentence-transformers folder loads its
    Transformer module. ``dropout`` overrides the config's; ``devices`` (a context or a list,
    default CPU) is where the parameters go, as d2l's. Heads the checkpoint lacks (pooler,
    MLM, NSP: e.g. a ``BertModel`` save) are initialized afresh, and a warning names them and
    any unused tensors; ``return_report=True`` also returns the ``LoadReport``. Another
    architecture (``model_type`` roberta, ...), NaN weights or a vocabulary that disagrees
    with the config are a ValueError naming the file.
    """
    bert, vocab, _, report = load_hf_folder(folder, dropout=dropout, devices=devices)
    report.warn(os.fspath(folder))
    return (bert, vocab, report) if return_report else (bert, vocab)


def load_tokenizer(folder, vocab=None):
    """The ``WordPieceTokenizer`` an HF BERT folder was trained with, from ``tokenizer.json``
    or ``vocab.txt`` + ``tokenizer_config.json`` (a folder without one is taken as uncased
    when ``vocab.txt`` has no capitals, as ``bert-base-uncased``); over ``vocab`` when given
    (e.g. an extended one), else the folder's own."""
    _, tokenizer = load_vocab_and_tokenizer(model_folder(folder))
    return tokenizer if vocab is None else tokenizer_with_vocab(tokenizer, vocab)


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


def check_hf_folder(folder):
    """Raise FileExistsError (or NotADirectoryError) unless ``save_hf_pretrained`` may write
    ``folder``: for a job to fail before its work, not after."""
    check_replaceable(os.path.abspath(os.fspath(folder)), HF_FILES, WEIGHTS_FILE, HF_KIND)


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
    with atomic_folder(folder, HF_FILES, WEIGHTS_FILE, HF_KIND) as staging:
        write_json(os.path.join(staging, CONFIG_FILE), config, indent=2)
        write_wordpiece_vocab(vocab, os.path.join(staging, VOCAB_FILE))
        if tokenizer is not None:
            write_hf_tokenizer(staging, tokenizer, vocab, bert.config['max_len'])
        # HF's loader wants the 'format' metadata; the other tools ignore it
        save_file(tensors, os.path.join(staging, WEIGHTS_FILE), metadata={'format': 'pt'})
