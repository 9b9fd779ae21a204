"""WikiText-2 pretraining data, mirroring d2l's ``load_data_wiki`` and its helpers, and the
tokenizers and vocabulary every task shares.

Data flows text -> paragraphs (``wikitext``) -> sentence pairs (``nsp``) -> masked examples
(``masking``) -> padded arrays and batches (``pretraining``). The d2l names with a leading
underscore (``_read_wiki``, ``_WikiTextDataset``, ...) are aliases for d2l readers.
Names are imported on first use (PEP 562): ``vocab``, ``wordpiece`` and ``tokenization``
import without MXNet, for ``export/predict.py``.
"""
import importlib

# public name -> the module that defines it
_EXPORTS = {
    **dict.fromkeys(['ChecksumError', 'DataNotFoundError', 'embedded_slice_dir',
                     'locate_wikitext2'], '.locate'),
    **dict.fromkeys(['MASKING_STRATEGIES', 'MaskingConfig', 'MLMMasker',
                     '_get_mlm_data_from_tokens',
                     '_replace_mlm_tokens', 'get_mlm_data_from_tokens', 'replace_mlm_tokens'],
                    '.masking'),
    **dict.fromkeys(['_get_next_sentence', '_get_nsp_data_from_paragraph', 'get_next_sentence',
                     'get_nsp_data_from_paragraph'], '.nsp'),
    **dict.fromkeys(['WikiTextDataset', '_pad_bert_inputs', '_WikiTextDataset', 'load_data_wiki',
                     'load_wiki_dataset', 'pad_bert_inputs'], '.pretraining'),
    'get_tokens_and_segments': '.segments', 'Vocab': '.vocab',
    '_read_wiki': '.wikitext', 'read_wiki': '.wikitext',
}

__all__ = sorted(_EXPORTS)


def __getattr__(name):
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f'module {__name__!r} has no attribute {name!r}')
    value = globals()[name] = getattr(importlib.import_module(module, __name__), name)
    return value


def __dir__():
    return sorted(set(globals()) | set(_EXPORTS))
