"""What goes in and out of an exported head: names, dtypes and axes of its inputs and outputs.

Deployment code feeds arrays by name, so the contract is fixed here, once per head:
``tokens``, ``segments`` and ``valid_lens`` in, as int64 (numpy's default integer, so that
``np.array([[2, 17, 3]])`` feeds without a cast; the graph casts them to the dtypes the model
was trained on), and one named output per head output. Axes named ``batch``, ``seq`` and
``choices`` are dynamic; ``labels`` has the size of the output layer.
"""
import inspect
from dataclasses import dataclass

import numpy as np
from mxnet.gluon import HybridBlock

from .. import compat
from ..model import BERTEncoder, BERTModel, MaskLM, NextSentencePred
from ..tasks import SERVED, TASKS, ExportedHead

INPUT_NAMES = ('tokens', 'segments', 'valid_lens')
INPUT_DTYPE = np.int64
# What the graph casts the inputs to: the dtypes of d2l's SNLIBERTDataset, as models are trained
MODEL_DTYPES = {'tokens': 'int32', 'segments': 'int32', 'valid_lens': 'float32'}
DYNAMIC_AXES = ('batch', 'choices', 'seq')

_PAIR_INPUTS = {'tokens': ('batch', 'seq'), 'segments': ('batch', 'seq'), 'valid_lens': ('batch',)}
_CHOICE_INPUTS = {'tokens': ('batch', 'choices', 'seq'), 'segments': ('batch', 'choices', 'seq'),
                  'valid_lens': ('batch', 'choices')}

_HEADLESS = {
    BERTModel: 'BERTModel is the pretraining model (encoder with the MLM and NSP heads), not a '
               'fine-tuned predictor',
    BERTEncoder: 'BERTEncoder alone outputs hidden states, not predictions',
    MaskLM: 'MaskLM is the masked-language-model pretraining head',
    NextSentencePred: 'NextSentencePred is the next-sentence pretraining head',
}
_WHAT_TO_EXPORT = ('export a fine-tuned task head over the BERT instead: '
                   'gluonbert.BERTClassifier(bert) (d2l\'s NLI classifier) or one of '
                   'gluonbert.model.heads (BERTForSequenceClassification(bert, num_labels), '
                   'BERTForTokenClassification, BERTForQuestionAnswering, '
                   'BERTForMultipleChoice), with its output layer initialized and trained')


@dataclass(frozen=True)
class Signature:
    """How an exported head is called and what it returns.

    ``task`` says how the outputs read: the name of the task whose head it is, with
    underscores ('classification', 'regression', 'token_classification', ...: ``tasks.SERVED``,
    each task's ``exported_head``), or 'custom' (any other HybridBlock over a BERTEncoder).
    ``num_labels`` is the size of the label axis, for the tasks that have one;
    ``label_kind`` what label names name (``tasks.ExportedHead``).
    """
    head: str
    task: str
    inputs: dict       # input name -> axis names, in INPUT_NAMES order
    outputs: dict      # output name -> axis names (None: unknown), in the head's output order
    takes_tuple: bool  # called as head((tokens, segments, valid_lens)), as d2l's classifier
    num_labels: int = None
    label_kind: str = 'classes'


def find_encoder(model):
    """The ``BERTEncoder`` inside ``model`` (depth-first), or None."""
    if isinstance(model, BERTEncoder):
        return model
    for child in compat.child_blocks(model).values():
        found = find_encoder(child)
        if found is not None:
            return found
    return None


def signature_of(model, output_names=None):
    """The export signature of ``model``; ValueError for a model that is not an exportable
    head (a bare BERTModel or BERTEncoder, a pretraining head, a non-hybridizable Block)."""
    for cls, what in _HEADLESS.items():
        if isinstance(model, cls):
            raise ValueError(f'model is a {cls.__name__}: {what}; {_WHAT_TO_EXPORT}')
    if not isinstance(model, HybridBlock):
        raise TypeError(f'model ({type(model).__name__}) is not a HybridBlock: ONNX export '
                        f'traces the model to a graph, which only HybridBlocks allow')
    if find_encoder(model) is None:
        raise ValueError(f'model {type(model).__name__} holds no gluonbert BERTEncoder; '
                         f'export_onnx exports BERT task heads: {_WHAT_TO_EXPORT}')
    task, head = _known_head(model)
    outputs = head.outputs
    if output_names is not None:
        outputs = _renamed(outputs, output_names, model)
    return Signature(type(model).__name__, task, _CHOICE_INPUTS if head.choices else _PAIR_INPUTS,
                     outputs, _takes_tuple(model), head.num_labels, head.label_kind)


def _known_head(model):
    """``(task, ExportedHead)``: of the first task whose head ``model`` is, else 'custom'."""
    for name in SERVED:
        head = TASKS[name].exported_head(model)
        if head is not None:
            return name.replace('-', '_'), head
    return 'custom', ExportedHead({'output': None})


def check_label_names(signature, label_names):
    """``label_names`` as a tuple of strings, or None; ValueError when they do not fit the task:
    classifiers need one name per label, a regression at most one name (of its score), and
    question answering and multiple choice have no labels to name."""
    if label_names is None:
        if signature.num_labels is not None:
            raise ValueError(f'label_names=None, but {signature.head} predicts '
                             f'{signature.num_labels} labels; pass their names in label-id '
                             f"order, e.g. ('entailment', 'contradiction', 'neutral') for d2l's "
                             f'SNLI')
        return None
    names = (label_names,) if isinstance(label_names, str) else tuple(label_names)
    if not all(isinstance(n, str) and n for n in names) or len(set(names)) != len(names):
        raise ValueError(f'label_names={label_names!r}; expected distinct non-empty strings')
    if signature.label_kind is None:
        raise ValueError(f'label_names={label_names!r}, but {signature.head} has no label set '
                         f'(it outputs {", ".join(signature.outputs)}); pass label_names=None')
    if signature.label_kind == 'score' and len(names) != 1:
        raise ValueError(f'label_names={label_names!r}; {signature.head} outputs one score, '
                         f'name it with one string (e.g. \'relatedness\') or pass None')
    if signature.num_labels is not None and len(names) != signature.num_labels:
        raise ValueError(f'label_names has {len(names)} names {names}, but {signature.head} '
                         f'predicts {signature.num_labels} labels')
    return names


def _renamed(outputs, output_names, model):
    names = (output_names,) if isinstance(output_names, str) else tuple(output_names)
    if len(set(names)) != len(names) or not all(isinstance(n, str) and n for n in names) or \
            set(names) & set(INPUT_NAMES):
        raise ValueError(f'output_names={output_names!r}; expected distinct non-empty strings, '
                         f'none of {INPUT_NAMES}')
    known = list(outputs.values())
    if known != [None] and len(names) != len(known):
        raise ValueError(f'output_names={output_names!r} names {len(names)} outputs; '
                         f'{type(model).__name__} returns {len(known)}')
    return dict(zip(names, known if known != [None] else [None] * len(names)))


def _takes_tuple(model):
    """d2l's heads take one tuple (tokens, segments, valid_lens); others take three arguments."""
    params = [p for name, p in inspect.signature(model.hybrid_forward).parameters.items()
              if name not in compat.own_parameter_names(model)
              and p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)][1:]  # [0] is F
    if len(params) == 1:
        return True
    if len(params) >= 3:
        return False
    raise TypeError(f'{type(model).__name__}.hybrid_forward takes {len(params)} inputs after F; '
                    f'expected one tuple (tokens, segments, valid_lens) or those three arguments')
