"""gluonbert: BERT in MXNet Gluon, mirroring d2l's blocks, hybridizable and fast."""
from . import runtime  # first: thread settings must precede ``import mxnet``
from .model import BERTClassifier, BERTEncoder, BERTModel, MaskLM, NextSentencePred

__version__ = '0.1.0'
