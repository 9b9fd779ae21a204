"""Gluon blocks of BERT, mirroring d2l's."""
from .bert import BERTEncoder, BERTModel, MaskLM, NextSentencePred
from .classifier import BERTClassifier

__all__ = ['BERTEncoder', 'BERTModel', 'BERTClassifier', 'MaskLM', 'NextSentencePred']
