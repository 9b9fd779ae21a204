"""WikiText-2 pretraining data, mirroring d2l's ``load_data_wiki`` and its helpers.

Data flows text -> paragraphs (``wikitext``) -> sentence pairs (``nsp``) -> masked examples
(``masking``) -> padded arrays and batches (``pretraining``). The d2l names with a leading
underscore (``_read_wiki``, ``_WikiTextDataset``, ...) are aliases for d2l readers.
"""
from .locate import ChecksumError, DataNotFoundError, embedded_slice_dir, locate_wikitext2
from .masking import (MASKING_STRATEGIES, MaskingConfig, MLMMasker, _get_mlm_data_from_tokens,
                      _replace_mlm_tokens, get_mlm_data_from_tokens, replace_mlm_tokens)
from .nsp import (_get_next_sentence, _get_nsp_data_from_paragraph, get_next_sentence,
                  get_nsp_data_from_paragraph)
from .pretraining import (WikiTextDataset, _pad_bert_inputs, _WikiTextDataset, load_data_wiki,
                          load_wiki_dataset, pad_bert_inputs)
from .segments import get_tokens_and_segments
from .vocab import Vocab
from .wikitext import _read_wiki, read_wiki

__all__ = ['ChecksumError', 'DataNotFoundError', 'MASKING_STRATEGIES', 'MaskingConfig',
           'MLMMasker', 'Vocab', 'WikiTextDataset', 'embedded_slice_dir',
           'get_mlm_data_from_tokens', 'get_next_sentence', 'get_nsp_data_from_paragraph',
           'get_tokens_and_segments',
           'load_data_wiki', 'load_wiki_dataset', 'locate_wikitext2', 'pad_bert_inputs',
           'read_wiki', 'replace_mlm_tokens',
           '_get_mlm_data_from_tokens', '_get_next_sentence', '_get_nsp_data_from_paragraph',
           '_pad_bert_inputs', '_read_wiki', '_replace_mlm_tokens', '_WikiTextDataset']
