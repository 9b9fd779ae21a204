"""Any pretrained folder a fine-tuning job starts from, with the tokenizer it was trained with.

A gluonbert folder (``vocab.json``, ``pretrained.params``, ``config.json``, as ``gluonbert
pretrain`` and d2l's ``bert.small`` write) was tokenized as d2l does (lower-case, split on
whitespace) unless it holds a ``tokenizer.json``; an HF folder (``config.json``,
``model.safetensors``, ``vocab.txt``) carries its WordPiece settings in
``tokenizer_config.json``.
"""
import json
import os

from ..data.tokenization import TOKENIZER_FILE, WhitespaceTokenizer, tokenizer_from_description


def load_pretrained_folder(folder, *, dropout=None, devices=None):
    """``(bert, vocab, tokenizer, kind)`` of a gluonbert or HF folder; ``kind`` is
    'gluonbert' or 'hf'. FileNotFoundError names what either kind holds."""
    from ..train.checkpoint import PARAMS_FILE, load_pretrained_model
    from .hf import VOCAB_FILE as HF_VOCAB, from_pretrained, load_tokenizer
    folder = os.fspath(folder)
    if os.path.isfile(os.path.join(folder, PARAMS_FILE)):
        bert, vocab = load_pretrained_model(folder, dropout=dropout, devices=devices)
        path = os.path.join(folder, TOKENIZER_FILE)
        if os.path.isfile(path):
            with open(path, encoding='utf-8') as f:
                tokenizer = tokenizer_from_description(json.load(f), vocab)
        else:
            tokenizer = WhitespaceTokenizer()
        return bert, vocab, tokenizer, 'gluonbert'
    if os.path.isfile(os.path.join(folder, HF_VOCAB)):
        bert, vocab = from_pretrained(folder, dropout=dropout, devices=devices)
        return bert, vocab, load_tokenizer(folder, vocab), 'hf'
    raise FileNotFoundError(f'--pretrained {folder!r}: neither a gluonbert folder '
                            f'({PARAMS_FILE}, vocab.json, config.json) nor an HF folder '
                            f'(config.json, model.safetensors, {HF_VOCAB})')
