"""Fine-tuned task models as HF task folders: the folder's format, written and read.

``save_hf_task_model`` writes a fine-tuned head (``gluonbert.model.heads``) as the folder
``transformers`` saves for ``BertForSequenceClassification`` (regression: ``num_labels=1``),
``BertForTokenClassification``, ``BertForQuestionAnswering`` or ``BertForMultipleChoice``:
``config.json`` (``architectures``, ``id2label``/``label2id`` from the task's labels,
``problem_type``), ``model.safetensors`` (the encoder and pooler under ``bert.``, the output
layer under ``classifier.`` or ``qa_outputs.``), ``vocab.txt``, and HF's ``tokenizer.json``
and ``tokenizer_config.json`` (``hf_tokenizer``). The task's own name, settings and max_len
ride along in config.json under ``gluonbert_task``, which ``transformers`` keeps and ignores.

``task_of``, ``task_max_len`` and ``output_tensors`` read such a folder, or one that
``transformers`` fine-tuned and saved; ``tasks.saved.load_task_model`` builds the task model
from them as it does from gluonbert's folders, so that ``evaluate``, ``predict`` and the ONNX
``export`` take either.
"""
import os

from .. import compat
from ..atomic import atomic_folder, write_json
from ..data.wordpiece import write_wordpiece_vocab
from ..json_file import read_json
from .hf import (CONFIG_FILE, HF_FILES, HF_KIND, TOKENIZER_CONFIG_FILE, VOCAB_FILE, WEIGHTS_FILE,
                 _weight_files, check_hf_folder)
from .hf_config import hf_config_from_options
from .hf_tokenizer import check_hf_tokenizer, write_hf_tokenizer
from .mapping import checkpoint_shape, hf_name

TASK_KEY = 'gluonbert_task'  # config.json's record of the gluonbert task: name, settings, max_len

# HF architecture -> (gluonbert head, HF's name of its output layer, the task it serves;
# sequence classification serves two, told apart by problem_type)
ARCHITECTURES = {
    'BertForSequenceClassification': ('BERTForSequenceClassification', 'classifier', None),
    'BertForTokenClassification': ('BERTForTokenClassification', 'classifier',
                                   'token-classification'),
    'BertForQuestionAnswering': ('BERTForQuestionAnswering', 'qa_outputs', 'question-answering'),
    'BertForMultipleChoice': ('BERTForMultipleChoice', 'classifier', 'multiple-choice'),
}
_ENCODER_PREFIX = 'bert.'
_REGRESSION, _SINGLE_LABEL = 'regression', 'single_label_classification'


def _architecture(net):
    head = type(net).__name__
    for architecture, (name, output, _) in ARCHITECTURES.items():
        if name == head:
            return architecture, output
    raise ValueError(f'the model is a {head}; HF task folders hold one of '
                     f'{", ".join(name for name, _, _ in ARCHITECTURES.values())}')


def _labelled(config, labels):
    """``config`` with HF's label fields: ``id2label``/``label2id`` of ``labels``."""
    names = [str(label) for label in labels]
    return dict(config, id2label={str(i): name for i, name in enumerate(names)},
                label2id={name: i for i, name in enumerate(names)})


def hf_task_config(net, task, config, pad_token_id):
    """The HF ``config.json`` (a dict) of the fine-tuned head ``net`` of ``task``; ``config``
    is the task folder's (``bert`` options, ``labels``, ``max_len``)."""
    from ..model import BERTModel
    architecture, _ = _architecture(net)
    options = BERTModel(**config['bert']).config  # with the defaults an older folder left out
    hf = dict(hf_config_from_options(options, pad_token_id=pad_token_id),
              architectures=[architecture])
    if architecture == 'BertForSequenceClassification':
        regression = net.num_labels == 1
        hf = _labelled(hf, ['LABEL_0'] if regression else config['labels'])
        hf['problem_type'] = _REGRESSION if regression else _SINGLE_LABEL
    elif architecture == 'BertForTokenClassification':
        hf = _labelled(hf, config['labels'])
    hf[TASK_KEY] = {'task': task.name, 'task_settings': task.settings(),
                    'max_len': config['max_len']}
    return hf


def hf_task_tensors(net, dtype='float32'):
    """``{HF name: numpy array}`` of the fine-tuned head ``net``: encoder and pooler under
    ``bert.``, the output layer under ``classifier.`` or ``qa_outputs.``."""
    _, output = _architecture(net)
    tensors = {}
    for name, param in compat.structural_parameters(net).items():
        if name.startswith('output.'):
            key = output + name[len('output'):]
        else:
            key = hf_name(name)
            if key is None:
                raise ValueError(f'gluonbert parameter {name!r} has no place in an HF BERT '
                                 f'task checkpoint')
            key = _ENCODER_PREFIX + key
        array = param.data().asnumpy().reshape(checkpoint_shape(name, param.shape))
        tensors[key] = array.astype(dtype)
    return tensors


def save_hf_task_model(net, task, vocab, tokenizer, config, folder):
    """Write the fine-tuned head ``net`` of ``task`` (as ``saved.load_task_model`` returns
    them, with ``vocab``, ``tokenizer`` and the folder's ``config``) as an HF task folder,
    atomically. ValueError, before anything is written, for what HF BERT cannot represent
    (d2l's embeddings without LayerNorm, a tokenizer other than WordPiece)."""
    from safetensors.numpy import save_file
    check_hf_tokenizer(tokenizer)
    hf_config = hf_task_config(net, task, config, vocab.token_to_idx.get('<pad>', 0))
    tensors = hf_task_tensors(net)
    check_hf_folder(folder)
    with atomic_folder(folder, HF_FILES, WEIGHTS_FILE, HF_KIND) as staging:
        write_json(os.path.join(staging, CONFIG_FILE), hf_config, indent=2)
        write_wordpiece_vocab(vocab, os.path.join(staging, VOCAB_FILE))
        write_hf_tokenizer(staging, tokenizer, vocab, config['max_len'])
        # HF's loader wants the 'format' metadata; the other tools ignore it
        save_file(tensors, os.path.join(staging, WEIGHTS_FILE), metadata={'format': 'pt'})


def _label_list(config, path):
    """The label names of ``id2label``, by id; ValueError unless the ids are 0..n-1."""
    id2label = config.get('id2label')
    if not isinstance(id2label, dict) or not id2label:
        raise ValueError(f'{path}: expected "id2label", an object of label ids and names')
    try:
        by_id = {int(i): name for i, name in id2label.items()}
    except ValueError:
        raise ValueError(f'{path}: id2label keys {sorted(id2label)}; expected integers') \
            from None
    if sorted(by_id) != list(range(len(by_id))):
        raise ValueError(f'{path}: id2label ids {sorted(by_id)}; expected 0 to '
                         f'{len(by_id) - 1}')
    return [by_id[i] for i in range(len(by_id))]


def task_of(config, path):
    """``(architecture, task name, settings, labels)`` of an HF task ``config``."""
    architectures = config.get('architectures')
    if not (isinstance(architectures, list) and len(architectures) == 1 and
            architectures[0] in ARCHITECTURES):
        hint = (' (a pretrained model: fine-tune it with `gluonbert finetune --pretrained`)'
                if architectures in (['BertForPreTraining'], ['BertModel'],
                                     ['BertForMaskedLM']) else '')
        raise ValueError(f'{path}: architectures={architectures!r}{hint}; expected one of '
                         f'{sorted(ARCHITECTURES)}')
    architecture = architectures[0]
    name = ARCHITECTURES[architecture][2]
    labels = None
    if architecture == 'BertForSequenceClassification':
        labels = _label_list(config, path)
        problem = config.get('problem_type') or (
            _REGRESSION if len(labels) == 1 else _SINGLE_LABEL)
        if problem not in (_REGRESSION, _SINGLE_LABEL):
            raise ValueError(f'{path}: problem_type={problem!r}; gluonbert\'s tasks are '
                             f'{_SINGLE_LABEL!r} (classification) and {_REGRESSION!r}')
        if problem == _REGRESSION:
            if len(labels) != 1:
                raise ValueError(f'{path}: problem_type {_REGRESSION!r} with {len(labels)} '
                                 f'labels; expected one output')
            name, labels = 'regression', None
        else:
            name = 'classification'
    elif architecture == 'BertForTokenClassification':
        labels = _label_list(config, path)
    settings = {}
    saved = config.get(TASK_KEY)
    if saved is not None:  # written by save_hf_task_model: the task as fine-tuned
        if not isinstance(saved, dict) or not isinstance(saved.get('task'), str):
            raise ValueError(f'{path}: "{TASK_KEY}" {saved!r}; expected an object with "task", '
                             f'"task_settings" and "max_len"')
        name, settings = saved['task'], saved.get('task_settings')
    return architecture, name, settings, labels


def task_max_len(config, folder, positions):
    """The longest sequence to encode: as fine-tuned (``gluonbert_task``), else the
    tokenizer's ``model_max_length`` where it fits the positions, else the positions."""
    saved = config.get(TASK_KEY) or {}
    if 'max_len' in saved:
        length = saved['max_len']
        if not isinstance(length, int) or isinstance(length, bool) or \
                not 1 <= length <= positions:
            raise ValueError(f'{os.path.join(folder, CONFIG_FILE)}: "{TASK_KEY}" max_len='
                             f'{length!r}; expected an integer in [1, {positions}] (the '
                             f'model\'s positions)')
        return length
    path = os.path.join(folder, TOKENIZER_CONFIG_FILE)
    length = read_json(path, 'a JSON object of tokenizer settings').get('model_max_length') \
        if os.path.isfile(path) else None
    if isinstance(length, int) and not isinstance(length, bool) and 1 <= length <= positions:
        return length
    return positions


def output_tensors(folder, output):
    """The folder's tensors of the output layer (``classifier.*`` or ``qa_outputs.*``)."""
    from safetensors import safe_open
    tensors = {}
    for path in _weight_files(folder):
        with safe_open(path, framework='numpy') as f:
            for key in f.keys():
                if key.startswith(output + '.'):
                    tensors[key] = f.get_tensor(key)
    return tensors
