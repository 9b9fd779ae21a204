"""WikiText-2 pretraining data, mirroring d2l's ``load_data_wiki`` and its helpers."""
from .segments import get_tokens_and_segments
from .vocab import Vocab

__all__ = ['Vocab', 'get_tokens_and_segments']
