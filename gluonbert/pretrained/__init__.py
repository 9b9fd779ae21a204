"""Published BERT weights in and out of gluonbert: HF folders (``config.json``,
``model.safetensors``, ``vocab.txt``) and GluonNLP 0.10 ``.params`` files."""
from .gluonnlp_params import load_gluonnlp_params, save_gluonnlp_params
from .hf import from_pretrained, load_tokenizer, save_hf_pretrained
from .loading import LoadReport

__all__ = ['from_pretrained', 'load_tokenizer', 'save_hf_pretrained', 'load_gluonnlp_params',
           'save_gluonnlp_params', 'LoadReport']
