"""WikiText-2 pretraining data, mirroring d2l's ``load_data_wiki`` and its helpers."""
from .locate import ChecksumError, DataNotFoundError, embedded_slice_dir, locate_wikitext2
from .segments import get_tokens_and_segments
from .vocab import Vocab

__all__ = ['ChecksumError', 'DataNotFoundError', 'Vocab', 'embedded_slice_dir',
           'get_tokens_and_segments', 'locate_wikitext2']
