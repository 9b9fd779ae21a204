"""HF's tokenizer files for a gluonbert ``WordPieceTokenizer``: ``tokenizer.json`` (the
``tokenizers`` library's format, which ``AutoTokenizer`` and ``Tokenizer.from_file`` load) and
``tokenizer_config.json`` (``BertTokenizer``'s settings).

``tokenizer.json`` is BERT's pipeline, step for step as ``WordPieceTokenizer`` runs it:
``BertNormalizer`` (clean the text, space out CJK characters, lower-case, strip accents),
``BertPreTokenizer`` (split at whitespace and punctuation), the ``WordPiece`` model over the
vocabulary, and ``[CLS] a [SEP] (b [SEP])`` around the pieces with segment ids 0 and 1.
One difference is HF's by design: its tokenizers match the special tokens (``[CLS]``, ...)
when they appear literally in the text, where gluonbert splits them as any other text.
gluonbert's own tokenizer description is also called ``tokenizer.json`` (in its task and
pretrained folders); this module writes HF's, for HF folders only.
"""
import json
import os

from ..data.wordpiece import WordPieceTokenizer, bert_tokens

HF_TOKENIZER_FILE, TOKENIZER_CONFIG_FILE = 'tokenizer.json', 'tokenizer_config.json'
# BERT's special tokens, as BertTokenizer's keyword arguments name them
_SPECIAL = {'unk_token': '[UNK]', 'sep_token': '[SEP]', 'pad_token': '[PAD]',
            'cls_token': '[CLS]', 'mask_token': '[MASK]'}


def check_hf_tokenizer(tokenizer):
    """ValueError unless ``tokenizer`` is one HF BERT folders can describe: WordPiece."""
    if not isinstance(tokenizer, WordPieceTokenizer):
        from ..data.tokenization import describe_tokenizer
        kind = describe_tokenizer(tokenizer)['kind']
        raise ValueError(f'the model\'s tokenizer is gluonbert\'s {kind!r} tokenizer (d2l-style '
                         f'words, not WordPiece); HF BERT folders tokenize with WordPiece '
                         f'(BertTokenizer) and no HF tokenizer splits text as this one does')


def hf_tokenizer(tokenizer, vocab):
    """The ``tokenizers.Tokenizer`` that tokenizes as the WordPiece ``tokenizer`` over
    ``vocab`` does, with ``[CLS]``/``[SEP]`` added as gluonbert's task encodings add them."""
    from tokenizers import Tokenizer, decoders, models, normalizers, pre_tokenizers, processors
    check_hf_tokenizer(tokenizer)
    ids = {token: idx for idx, token in enumerate(bert_tokens(vocab))}
    for token in ('[CLS]', '[SEP]'):
        if token not in ids:
            raise ValueError(f'the vocabulary has no {token} token (gluonbert\'s '
                             f'{"<cls>" if token == "[CLS]" else "<sep>"}), which HF\'s '
                             f'tokenizer puts around every text')
    hf = Tokenizer(models.WordPiece(ids, unk_token='[UNK]',
                                    max_input_chars_per_word=tokenizer.max_input_chars_per_word))
    hf.normalizer = normalizers.BertNormalizer(
        clean_text=True, handle_chinese_chars=tokenizer.tokenize_chinese_chars,
        strip_accents=bool(tokenizer.strip_accents), lowercase=tokenizer.lower)
    hf.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
    hf.post_processor = processors.TemplateProcessing(
        single='[CLS]:0 $A:0 [SEP]:0', pair='[CLS]:0 $A:0 [SEP]:0 $B:1 [SEP]:1',
        special_tokens=[('[CLS]', ids['[CLS]']), ('[SEP]', ids['[SEP]'])])
    hf.decoder = decoders.WordPiece(prefix='##')
    hf.add_special_tokens([token for token in _SPECIAL.values() if token in ids])
    return hf


def write_hf_tokenizer(folder, tokenizer, vocab, max_len):
    """Write ``tokenizer.json`` and ``tokenizer_config.json`` of the WordPiece ``tokenizer``
    into ``folder``; ``max_len`` is the longest sequence the model serves."""
    hf = hf_tokenizer(tokenizer, vocab)
    hf.save(os.path.join(folder, HF_TOKENIZER_FILE))
    present = set(bert_tokens(vocab))
    settings = {'tokenizer_class': 'BertTokenizer', 'do_lower_case': tokenizer.lower,
                'strip_accents': tokenizer.strip_accents,
                'tokenize_chinese_chars': tokenizer.tokenize_chinese_chars,
                'model_max_length': max_len}
    settings.update({name: token for name, token in _SPECIAL.items() if token in present})
    with open(os.path.join(folder, TOKENIZER_CONFIG_FILE), 'w', encoding='utf-8') as f:
        json.dump(settings, f, indent=2)
