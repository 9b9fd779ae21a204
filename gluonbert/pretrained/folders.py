"""Any pretrained folder a job starts from, with the tokenizer its vocabulary was made for.

A gluonbert folder (``vocab.json``, ``pretrained.params``, ``config.json``, as ``gluonbert
pretrain`` and d2l's ``bert.small`` write) carries its tokenizer in ``tokenizer.json`` when
``gluonbert pretrain`` wrote it; without one (d2l's folders, older ones) the vocabulary says:
WordPiece (uncased) when it holds ``##`` pieces, else d2l's lower-case whitespace split. An HF
folder (``config.json``, ``model.safetensors``, a vocabulary) carries its WordPiece settings
in ``tokenizer.json`` or ``vocab.txt`` + ``tokenizer_config.json`` (``hf_tokenizer``).
"""
import json
import os

from ..data.tokenization import TOKENIZER_FILE, WhitespaceTokenizer, read_tokenizer
from ..data.wordpiece import WordPieceTokenizer


def is_wordpiece(vocab):
    """Whether ``vocab`` is a WordPiece vocabulary (it has ``##`` continuation pieces)."""
    return any(token.startswith('##') for token in vocab.idx_to_token)


def _gluonbert_tokenizer(folder, vocab):
    path = os.path.join(folder, TOKENIZER_FILE)
    if os.path.isfile(path):
        return read_tokenizer(path, vocab)
    return WordPieceTokenizer(vocab) if is_wordpiece(vocab) else WhitespaceTokenizer()


def load_pretrained_folder(folder, *, dropout=None, devices=None):
    """``(bert, vocab, tokenizer, kind)`` of a gluonbert or HF folder; ``kind`` is
    'gluonbert' or 'hf'. For an HF folder, one line says what loaded and which heads start
    afresh; FileNotFoundError names what either kind holds."""
    from .saved import PARAMS_FILE, load_pretrained_model
    from .hf import is_hf_folder, load_hf_folder
    folder = os.fspath(folder)
    if os.path.isfile(os.path.join(folder, PARAMS_FILE)):
        bert, vocab = load_pretrained_model(folder, dropout=dropout, devices=devices)
        return bert, vocab, _gluonbert_tokenizer(folder, vocab), 'gluonbert'
    if is_hf_folder(folder):
        bert, vocab, tokenizer, report = load_hf_folder(folder, dropout=dropout,
                                                        devices=devices)
        print(f'{folder}: {report.summary()}')
        return bert, vocab, tokenizer, 'hf'
    raise FileNotFoundError(f'--pretrained {folder!r}: neither a gluonbert folder '
                            f'({PARAMS_FILE}, vocab.json, config.json) nor an HF folder '
                            f'(config.json, model.safetensors, tokenizer.json or vocab.txt)')


def model_width(folder):
    """The hidden width of the BERT in a gluonbert or HF folder, pretrained or fine-tuned (its
    ``config.json``), or None when the folder does not say; read before the model is built
    (``--amp auto``)."""
    from .hf import model_folder
    path = os.path.join(model_folder(folder), 'config.json')
    try:
        with open(path, encoding='utf-8') as f:
            config = json.load(f)
    except (OSError, ValueError):
        return None
    if isinstance(config, dict) and isinstance(config.get('bert'), dict):
        config = config['bert']  # a fine-tuned task folder's BERT
    width = config.get('num_hiddens', config.get('hidden_size')) if isinstance(config, dict) \
        else None
    return width if isinstance(width, int) else None
