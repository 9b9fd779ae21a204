"""A fine-tuned task model as a folder: everything serving needs, written whole or not at all.

``model.params`` (the head: encoder, pooler, output layer), ``vocab.json``, ``tokenizer.json``
(the exact tokenizer, ``data.tokenization``) and ``config.json`` (task and its settings, BERT
architecture, label set, max_len). ``load_task_model`` rebuilds the head, its tokenizer and
the task (question answering: the same windows and span length) from them, so evaluation,
export and prediction encode and decode as training did. Folders saved before tasks had
settings load with the task's defaults. An HF task folder (its format: ``pretrained.hf_tasks``)
loads as a task model too.
"""
import os

from ..data.tokenization import TOKENIZER_FILE, describe_tokenizer, read_tokenizer
from ..json_file import read_json
from . import rebuilt_task

PARAMS_FILE, CONFIG_FILE, VOCAB_FILE = 'model.params', 'config.json', 'vocab.json'
FILES = (PARAMS_FILE, CONFIG_FILE, VOCAB_FILE, TOKENIZER_FILE)
KIND = 'fine-tuned task model folder'
SETTINGS = 'task_settings'  # config.json's key for Task.settings()


def check_replaceable(folder):
    """Refuse ``folder`` unless it is missing, empty or a previous fine-tuned task model
    (FileExistsError saying why): saving replaces the folder whole."""
    from ..atomic import check_replaceable as check
    check(folder, FILES, PARAMS_FILE, KIND)


def save_task_model(net, bert, vocab, tokenizer, folder, task, labels, max_len):
    """Write the fine-tuned head ``net`` (built by ``task.head(bert, labels)``) to ``folder``
    (missing, empty or a previous task model), atomically: a reader sees the previous folder
    or the new one, never a mix; a model holding NaN or infinite values is refused
    (ValueError) and the folder left as it was."""
    from .. import compat
    from ..atomic import atomic_folder, write_json
    from ..pretrained.saved import (VOCAB_DIGEST, WEIGHTS_RECORD, _vocab_digest, check_finite,
                                    weights_record)
    check_finite(net, folder)
    config = {'task': task.name, SETTINGS: task.settings(), 'bert': dict(bert.config),
              'labels': labels, 'max_len': max_len,
              VOCAB_DIGEST: _vocab_digest(vocab.idx_to_token)}
    with atomic_folder(folder, FILES, PARAMS_FILE, KIND) as staging:
        params = os.path.join(staging, PARAMS_FILE)
        compat.save_parameters(net, params)
        config[WEIGHTS_RECORD] = weights_record(params, bert.config)
        write_json(os.path.join(staging, VOCAB_FILE), list(vocab.idx_to_token), indent=None)
        write_json(os.path.join(staging, TOKENIZER_FILE), describe_tokenizer(tokenizer))
        write_json(os.path.join(staging, CONFIG_FILE), config)


def _check_config(config, path):
    """ValueError naming the file unless ``config`` holds what ``save_task_model`` writes."""
    from . import TASKS
    labels = config.get('labels')
    if config.get('task') not in TASKS or not isinstance(config.get('bert'), dict) or \
            not (labels is None or (isinstance(labels, list) and labels)) or \
            not isinstance(config.get('max_len'), int):
        raise ValueError(f'{path}: expected "task" (one of {sorted(TASKS)}), "bert" (BERTModel '
                         f'options), "labels" (a list of names, or null) and "max_len" (an '
                         f'integer), as save_task_model writes')


def load_task_model(folder, devices=None):
    """``(net, task, vocab, tokenizer, config)`` of a folder written by ``save_task_model``;
    every file is read and checked before the model is built. An HF task folder
    (``BertForSequenceClassification`` and the like, ``pretrained.hf_tasks``) loads too."""
    from ..pretrained.saved import (VOCAB_DIGEST, WEIGHTS_RECORD, _load_parameters,
                                    _read_vocab, check_weights_record)
    folder = os.fspath(folder)
    if not os.path.isdir(folder):
        raise FileNotFoundError(f'{folder!r} is not a {KIND} (expected {", ".join(FILES)}) '
                                f'nor an HF task folder')
    if _is_hf_folder(folder):
        return _load_hf_task_model(folder, devices)
    for name in FILES:
        if not os.path.isfile(os.path.join(folder, name)):
            raise FileNotFoundError(f'{os.path.join(folder, name)} not found: a {KIND} holds '
                                    f'{", ".join(FILES)}')
    config_path = os.path.join(folder, CONFIG_FILE)
    config = read_json(config_path, 'a JSON object of task model settings')
    _check_config(config, config_path)
    try:
        task = rebuilt_task(config['task'], config.get(SETTINGS), config['max_len'])
    except ValueError as error:
        raise ValueError(f'{config_path}: "{SETTINGS}": {error}') from None
    vocab = _read_vocab(folder, dict(config))
    config.pop(VOCAB_DIGEST, None)
    record = config.pop(WEIGHTS_RECORD, None)
    tokenizer = read_tokenizer(os.path.join(folder, TOKENIZER_FILE), vocab)
    bert = _fine_tuned_bert(folder, config, vocab, config_path)
    net = task.head(bert, config['labels'])
    _load_parameters(net, os.path.join(folder, PARAMS_FILE), vocab, devices)
    check_weights_record(config['bert'], record, os.path.join(folder, PARAMS_FILE), config_path)
    return net, task, vocab, tokenizer, config


def _is_hf_folder(folder):
    """Whether ``folder`` looks like an HF model folder rather than a gluonbert one: a
    ``config.json`` and no gluonbert ``model.params`` or ``vocab.json``."""
    return (os.path.isfile(os.path.join(folder, CONFIG_FILE)) and
            not os.path.exists(os.path.join(folder, PARAMS_FILE)) and
            not os.path.exists(os.path.join(folder, VOCAB_FILE)))


def _load_hf_task_model(folder, devices):
    """``(net, task, vocab, tokenizer, config)`` of an HF task folder, as ``load_task_model``
    returns them for gluonbert's: the head named by ``architectures``, the task (from
    ``gluonbert_task`` where the folder has it, else from the architecture and
    ``problem_type``), labels from ``id2label``."""
    from ..pretrained.hf import load_hf_folder
    from ..pretrained.hf_tasks import (ARCHITECTURES, TASK_KEY, output_tensors, task_max_len,
                                       task_of)
    from ..pretrained.loading import load_tensors
    path = os.path.join(folder, CONFIG_FILE)
    hf_config = read_json(path, "a JSON object of BERT settings (HF's BertConfig)")
    architecture, name, settings, labels = task_of(hf_config, path)
    # no warning: a task folder lacks the pretraining heads and its output layer is read below
    bert, vocab, tokenizer, report = load_hf_folder(
        folder, dropout=hf_config.get('hidden_dropout_prob', 0.1), devices=devices)
    max_len = task_max_len(hf_config, folder, bert.encoder.max_len)
    try:
        task = rebuilt_task(name, settings, max_len)
    except ValueError as error:
        where = f'"{TASK_KEY}"' if TASK_KEY in hf_config else f'max_len {max_len}'
        raise ValueError(f'{path}: {where}: {error}') from None
    net = task.head(bert, labels)
    head, output, _ = ARCHITECTURES[architecture]
    if type(net).__name__ != head:
        raise ValueError(f'{path}: task {name!r} fine-tunes a {type(net).__name__}, but '
                         f'architectures says {architecture}')
    if hasattr(net, 'hidden') and 'hidden.weight' in report.missing:
        raise ValueError(f'{folder!r} lacks the pooler (bert.pooler.dense) that {architecture} '
                         f'classifies from')
    tensors = output_tensors(folder, output)
    if not tensors:
        raise ValueError(f'{folder!r} has no {output}.weight and {output}.bias, the output '
                         f'layer of {architecture}')
    load_tensors(net.output, tensors, lambda param: f'{output}.{param}', devices=devices,
                 may_miss=lambda param: False)
    config = {'task': task.name, 'task_settings': task.settings(), 'bert': dict(bert.config),
              'labels': labels, 'max_len': max_len}
    return net, task, vocab, tokenizer, config


def _fine_tuned_bert(folder, config, vocab, config_path):
    """The (uninitialised) BERT of a task folder's ``config`` (its ``bert`` options and
    ``max_len``), checked against the folder's ``vocab``."""
    from ..pretrained.saved import _build_bert
    bert_config = dict(config['bert'])
    if bert_config.pop('vocab_size', None) != len(vocab):
        raise ValueError(f'{folder}: {VOCAB_FILE} holds {len(vocab)} tokens but the model was '
                         f'built for vocab_size={config["bert"].get("vocab_size")}')
    bert = _build_bert(vocab, bert_config, config_path)
    if not 1 <= config['max_len'] <= bert.encoder.max_len:
        raise ValueError(f'{config_path}: max_len={config["max_len"]}; expected an integer in '
                         f'[1, {bert.encoder.max_len}] (the model\'s positions)')
    return bert
