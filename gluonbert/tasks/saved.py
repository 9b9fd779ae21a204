"""A fine-tuned task model as a folder: everything serving needs, written whole or not at all.

``model.params`` (the head: encoder, pooler, output layer), ``vocab.json``, ``tokenizer.json``
(the exact tokenizer, ``data.tokenization``) and ``config.json`` (task, BERT architecture,
label set, max_len). ``load_task_model`` rebuilds the head and its tokenizer from them, so
evaluation, export and prediction tokenize as training did.
"""
import json
import os

from ..data.tokenization import TOKENIZER_FILE, describe_tokenizer, tokenizer_from_description
from ..data.vocab import Vocab
from . import get_task

PARAMS_FILE, CONFIG_FILE, VOCAB_FILE = 'model.params', 'config.json', 'vocab.json'


def save_task_model(net, bert, vocab, tokenizer, folder, task, labels, max_len,
                    overwrite=True):
    """Write the fine-tuned head ``net`` (built by ``task.head(bert, labels)``) to ``folder``,
    atomically: a reader sees the previous folder or the new one, never a mix."""
    from ..export.folder import staged_folder, write_json
    config = {'task': task.name, 'bert': dict(bert.config), 'labels': labels,
              'max_len': max_len}
    with staged_folder(folder, overwrite) as staging:
        net.save_parameters(os.path.join(staging, PARAMS_FILE))
        write_json(os.path.join(staging, VOCAB_FILE), list(vocab.idx_to_token))
        write_json(os.path.join(staging, TOKENIZER_FILE), describe_tokenizer(tokenizer))
        write_json(os.path.join(staging, CONFIG_FILE), config)


def is_task_model(folder):
    """Whether ``folder`` holds a model written by ``save_task_model``."""
    return os.path.isfile(os.path.join(folder, PARAMS_FILE)) and \
        os.path.isfile(os.path.join(folder, TOKENIZER_FILE))


def _read_json(path):
    try:
        with open(path, encoding='utf-8') as f:
            return json.load(f)
    except FileNotFoundError:
        raise FileNotFoundError(f'{path} not found: a fine-tuned task folder holds '
                                f'{PARAMS_FILE}, {CONFIG_FILE}, {VOCAB_FILE} and '
                                f'{TOKENIZER_FILE}') from None
    except ValueError as error:
        raise ValueError(f'{path} is not valid JSON ({error})') from None


def load_task_model(folder, devices=None):
    """``(net, task, vocab, tokenizer, config)`` of a folder written by ``save_task_model``;
    nothing is built until every file has been read and checked."""
    from ..model import BERTModel
    from ..train.checkpoint import _load_parameters
    config = _read_json(os.path.join(folder, CONFIG_FILE))
    description = _read_json(os.path.join(folder, TOKENIZER_FILE))
    vocab = Vocab.from_json(os.path.join(folder, VOCAB_FILE))
    params = os.path.join(folder, PARAMS_FILE)
    if not os.path.isfile(params):
        raise FileNotFoundError(f'{params} not found: {folder!r} is not a fine-tuned task '
                                f'folder')
    missing = [key for key in ('task', 'bert', 'labels', 'max_len') if key not in config]
    if missing:
        raise ValueError(f'{os.path.join(folder, CONFIG_FILE)} lacks {missing}')
    task = get_task(config['task'])
    tokenizer = tokenizer_from_description(description, vocab)
    bert_config = dict(config['bert'])
    if bert_config.pop('vocab_size') != len(vocab):
        raise ValueError(f'{folder}: {VOCAB_FILE} holds {len(vocab)} tokens but the model was '
                         f'built for vocab_size={config["bert"]["vocab_size"]}')
    net = task.head(BERTModel(len(vocab), **bert_config), config['labels'])
    _load_parameters(net, params, vocab, devices)
    return net, task, vocab, tokenizer, config
