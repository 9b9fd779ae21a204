"""Gluon blocks of BERT, mirroring d2l's."""
from .bert import BERTEncoder, BERTModel, MaskLM, NextSentencePred
from .classifier import BERTClassifier
from .inference import hybridize_for_inference

__all__ = ['BERTEncoder', 'BERTModel', 'BERTClassifier', 'MaskLM', 'NextSentencePred',
           'hybridize_for_inference']
