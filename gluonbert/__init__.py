"""gluonbert: BERT in MXNet Gluon, mirroring d2l's blocks, hybridizable and fast.

The public names below are imported on first use (PEP 562), so that the parts that need no
MXNet (tokenization, task readers and post-processing, which ``export/predict.py`` reuses)
import without it. ``runtime`` comes first: its thread settings must precede ``import mxnet``;
the fast kernels load with ``gluonbert.ops``, which every model block imports.
"""
import importlib

from . import runtime  # noqa: F401  (first: thread settings must precede ``import mxnet``)

# public name -> the module that defines it
_EXPORTS = {
    'Vocab': '.data.vocab', 'get_tokens_and_segments': '.data.segments',
    'load_data_wiki': '.data.pretraining', 'WordPieceTokenizer': '.data.wordpiece',
    'BERTClassifier': '.model', 'BERTEncoder': '.model', 'BERTModel': '.model',
    'MaskLM': '.model', 'NextSentencePred': '.model', 'hybridize_for_inference': '.model',
    'from_pretrained': '.pretrained', 'load_tokenizer': '.pretrained',
    'save_hf_pretrained': '.pretrained', 'load_pretrained_model': '.pretrained.saved',
    'save_pretrained': '.pretrained.saved', 'train_bert': '.train.pretrain',
    'Schedule': '.train.schedules',
    'BERTTrainer': '.train.trainer',  # also registers the gb_* optimizers
}

__version__ = '0.1.0'
__all__ = sorted(_EXPORTS)


def __getattr__(name):
    module = _EXPORTS.get(name)
    if module is None:
        try:  # a submodule used as an attribute: ``gluonbert.ops`` after ``import gluonbert``
            return importlib.import_module(f'.{name}', __name__)
        except ModuleNotFoundError as error:
            if error.name != f'{__name__}.{name}':
                raise
            raise AttributeError(f'module {__name__!r} has no attribute {name!r}') from None
    value = globals()[name] = getattr(importlib.import_module(module, __name__), name)
    return value


def __dir__():
    return sorted(set(globals()) | set(_EXPORTS))
