"""GluonNLP 0.10 BERT ``.params`` files (its model zoo's layout) in and out of gluonbert.

A model-zoo file such as ``bert_12_768_12_book_corpus_wiki_en_uncased-75cc780f.params`` is
what GluonNLP's ``BERTModel.save_parameters`` writes: MXNet's own binary format (never a
pickle), no configuration. The sizes are read off the tensors' shapes; the number of heads is
not in any shape and must be given (12 for ``bert_12_768_12``, 16 for ``bert_24_1024_16``).
GluonNLP's attention keeps separate query, key and value weights (it interleaves them per
head only when computing, as gluonbert does), so they map one to one onto ``W_q``/``W_k``/``W_v``.
"""
import struct

import mxnet as mx
from mxnet.util import np_array, np_shape

from .. import compat
from ..data.wordpiece import read_wordpiece_vocab, vocab_from_bert_tokens
from ..json_file import read_json
from ..model import BERTModel
from ..atomic import atomic_write
from .loading import load_tensors
from .mapping import checkpoint_shape, gluonnlp_name, is_optional

# The first 8 bytes of a file written by mx.nd.save (kMXAPINDArrayListMagic)
_NDARRAY_LIST_MAGIC = 0x112
_WORD_EMBED, _POSITIONS = 'word_embed.0.weight', 'encoder.position_weight'
_CELLS = 'encoder.transformer_cells.'


def _describe(head):
    if head[:1] == b'\x80':
        return 'a pickle'
    if head[:2] == b'PK':
        return 'a zip archive (a PyTorch checkpoint?)'
    return 'not an MXNet parameter file'


def read_params(path):
    """``{name: numpy array}`` of an MXNet ``.params`` file, checked to be one before MXNet
    parses it."""
    with open(path, 'rb') as f:
        head = f.read(8)
    if len(head) < 8 or struct.unpack('<Q', head)[0] != _NDARRAY_LIST_MAGIC:
        raise ValueError(f'{path} is {_describe(head)}; expected an MXNet .params file '
                         f'(written by save_parameters); gluonbert never unpickles files')
    with np_array(False), np_shape(False):
        loaded = compat.np_shape_retried(lambda: mx.nd.load(path))
    if not isinstance(loaded, dict):
        raise ValueError(f'{path} holds unnamed arrays; expected named parameters')
    return {name: array.asnumpy() for name, array in loaded.items()}


def _size(tensors, name, axis, path):
    if name not in tensors:
        raise ValueError(f'{path} has no {name!r}: not a GluonNLP BERTModel parameter file')
    return tensors[name].shape[axis]


def _read_vocab(vocab):
    """A gluonbert ``Vocab`` from a ``Vocab``, a GluonNLP vocab JSON or a BERT vocab.txt."""
    if not isinstance(vocab, str):
        return vocab
    if vocab.endswith('.txt'):
        return read_wordpiece_vocab(vocab)
    loaded = read_json(vocab, 'a GluonNLP vocab JSON (an object with "idx_to_token")')
    idx_to_token = loaded.get('idx_to_token')
    if idx_to_token is None:
        raise ValueError(f'{vocab} has no "idx_to_token": not a GluonNLP vocab JSON')
    return vocab_from_bert_tokens(idx_to_token, f'vocab file {vocab!r}')


def load_gluonnlp_params(params_file, vocab, *, num_heads, dropout=0.1, activation='gelu',
                         layer_norm_eps=1e-12, devices=None, return_report=False):
    """Load ``(bert, vocab)`` from a GluonNLP 0.10 BERT ``.params`` file.

    ``vocab``: a ``Vocab``, or the path of GluonNLP's vocab JSON (``BERTVocab.to_json``) or
    of a ``vocab.txt``. The defaults of ``activation`` and ``layer_norm_eps`` are GluonNLP's
    BERT's (its ERNIE uses ``'relu'`` and ``1e-5``). A file without pooler, MLM decoder or
    NSP classifier (``use_pooler=False``, ...) loads with those initialized afresh, reported
    as in ``from_pretrained``; ``devices`` is as there.
    """
    tensors = read_params(params_file)
    vocab = _read_vocab(vocab)
    cells = {int(name[len(_CELLS):].split('.')[0]) for name in tensors if name.startswith(_CELLS)}
    options = dict(vocab_size=_size(tensors, _WORD_EMBED, 0, params_file),
                   num_hiddens=_size(tensors, _WORD_EMBED, 1, params_file),
                   ffn_num_hiddens=_size(tensors, _CELLS + '0.ffn.ffn_1.weight', 0, params_file),
                   num_heads=num_heads, num_blks=len(cells), dropout=dropout,
                   max_len=_size(tensors, _POSITIONS, 0, params_file), activation=activation,
                   embedding_layer_norm=True, layer_norm_eps=layer_norm_eps,
                   tie_mlm_decoder=True)
    if cells != set(range(len(cells))):
        raise ValueError(f'{params_file}: transformer cells {sorted(cells)} are not numbered '
                         f'0, 1, ...')
    if len(vocab) != options['vocab_size']:
        raise ValueError(f'vocab has {len(vocab)} tokens but {_WORD_EMBED!r} in {params_file} '
                         f'has {options["vocab_size"]} rows: they must match')
    if options['num_hiddens'] % num_heads:
        raise ValueError(f'num_heads={num_heads} does not divide the {options["num_hiddens"]} '
                         f'hidden units of {params_file}')
    bert = BERTModel(**options)
    report = load_tensors(bert, tensors, gluonnlp_name, may_miss=is_optional, devices=devices)
    report.warn(params_file)
    return (bert, vocab, report) if return_report else (bert, vocab)


def save_gluonnlp_params(bert, path):
    """Write ``bert`` (a gluonbert ``BERTModel`` with ``tie_mlm_decoder=True``, as GluonNLP's
    BERT) as a GluonNLP 0.10 ``BERTModel`` parameter file, which its ``load_parameters``
    reads."""
    config = bert.config
    if not (config['embedding_layer_norm'] and config['tie_mlm_decoder']):
        raise ValueError('GluonNLP\'s BERT normalizes its embeddings and ties its MLM decoder: '
                         'save a model built with embedding_layer_norm=True and '
                         'tie_mlm_decoder=True')
    arrays = {}
    for name, param in compat.structural_parameters(bert).items():
        data = param.data().as_nd_ndarray()
        arrays[gluonnlp_name(name)] = data.reshape(checkpoint_shape(name, param.shape))
    with np_array(False), np_shape(False):
        atomic_write(path, lambda tmp: compat.save_ndarrays(tmp, arrays))
