"""gluonbert: BERT in MXNet Gluon, mirroring d2l's blocks, hybridizable and fast."""
from . import runtime  # noqa: F401  (first: thread settings must precede ``import mxnet``)
from . import ops
ops.load()  # the fast kernels, when built (python -m gluonbert.ops)
from .data import Vocab, get_tokens_and_segments, load_data_wiki
from .data.wordpiece import WordPieceTokenizer
from .model import (BERTClassifier, BERTEncoder, BERTModel, MaskLM, NextSentencePred,
                    hybridize_for_inference)
from .pretrained import from_pretrained, load_tokenizer, save_hf_pretrained
from .train.checkpoint import load_pretrained_model, save_pretrained
from .train.pretrain import train_bert
from .train.schedules import Schedule
from .train.trainer import BERTTrainer  # also registers the gb_* optimizers

__version__ = '0.1.0'
__all__ = ['BERTClassifier', 'BERTEncoder', 'BERTModel', 'BERTTrainer', 'MaskLM',
           'NextSentencePred', 'Schedule', 'Vocab', 'WordPieceTokenizer', 'from_pretrained',
           'get_tokens_and_segments', 'hybridize_for_inference', 'load_data_wiki',
           'load_pretrained_model', 'load_tokenizer', 'save_hf_pretrained', 'save_pretrained',
           'train_bert']
