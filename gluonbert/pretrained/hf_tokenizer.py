"""An HF folder's vocabulary and WordPiece settings, from the files it is published with.

A BERT folder names its vocabulary and normaliser in ``tokenizer.json`` (the ``tokenizers``
library's file: ``model`` WordPiece with its vocabulary, ``normalizer`` BertNormalizer with
``lowercase``, ``strip_accents``, ``handle_chinese_chars``), in ``vocab.txt`` (+
``tokenizer_config.json``: ``do_lower_case``, ``strip_accents``, ``tokenize_chinese_chars``),
or in both; many folders published today carry only ``tokenizer.json``. Both are read into
gluonbert's ``WordPieceTokenizer``, the one implementation that training, export and serving
share; a folder holding both must have them agree. Anything that tokenizer would compute
differently (another model or normaliser, added tokens split off before WordPiece) is one
error naming the field, never a silently different tokenization.

Writing goes the other way (``write_hf_tokenizer``): ``tokenizer.json`` is BERT's pipeline, step
for step as ``WordPieceTokenizer`` runs it (``BertNormalizer``, ``BertPreTokenizer``, the
``WordPiece`` model, ``[CLS] a [SEP] (b [SEP])`` with segment ids 0 and 1), and
``tokenizer_config.json`` holds ``BertTokenizer``'s settings. One difference is HF's by
design: its tokenizers match the special tokens (``[CLS]``, ...) when they appear literally in
the text, where gluonbert splits them as any other text. gluonbert's own tokenizer description
is also called ``tokenizer.json`` (in its task and pretrained folders); this module handles
HF's, in HF folders only.
"""
import os

from ..atomic import write_json
from ..json_file import read_json
from ..data.wordpiece import (SPECIAL_TOKENS, WordPieceTokenizer, bert_tokens, is_uncased,
                              read_wordpiece_vocab, vocab_from_bert_tokens)

VOCAB_FILE, TOKENIZER_FILE = 'vocab.txt', 'tokenizer.json'
TOKENIZER_CONFIG_FILE = 'tokenizer_config.json'

# BERT's special tokens, as BertTokenizer's keyword arguments name them
_SPECIAL = {'unk_token': '[UNK]', 'sep_token': '[SEP]', 'pad_token': '[PAD]',
            'cls_token': '[CLS]', 'mask_token': '[MASK]'}
# Pre-tokenizers that split as BERT's basic tokenizer does (after BertNormalizer)
_BERT_PRE_TOKENIZERS = ('BertPreTokenizer',)


def has_vocabulary(folder):
    """Whether ``folder`` holds a vocabulary file an HF BERT folder may come with."""
    return any(os.path.isfile(os.path.join(folder, name))
               for name in (VOCAB_FILE, TOKENIZER_FILE))


def _field_error(path, field, value, expected):
    return ValueError(f'{path}: {field}={value!r}; gluonbert reads BERT\'s WordPiece '
                      f'tokenizer, expected {expected}')


def _normalizer_settings(path, normalizer):
    """WordPieceTokenizer settings from a BertNormalizer (possibly inside a Sequence of one)."""
    if isinstance(normalizer, dict) and normalizer.get('type') == 'Sequence' and \
            len(normalizer.get('normalizers', [])) == 1:
        normalizer = normalizer['normalizers'][0]
    kind = normalizer.get('type') if isinstance(normalizer, dict) else normalizer
    if kind != 'BertNormalizer':
        raise _field_error(path, 'normalizer.type', kind, "'BertNormalizer'")
    if normalizer.get('clean_text', True) is not True:
        raise _field_error(path, 'normalizer.clean_text', normalizer['clean_text'], 'true')
    lower = normalizer.get('lowercase', True)
    return {'lower': lower, 'strip_accents': normalizer.get('strip_accents'),
            'tokenize_chinese_chars': normalizer.get('handle_chinese_chars', True)}


def _tokenizer_json(path):
    """``(BERT tokens in id order, WordPieceTokenizer settings)`` of a ``tokenizer.json``."""
    description = read_json(path, "a JSON object (HF's tokenizer.json)")
    model = description.get('model')
    if not isinstance(model, dict) or model.get('type') != 'WordPiece':
        raise _field_error(path, 'model.type', model.get('type') if isinstance(model, dict)
                           else model, "'WordPiece'")
    if model.get('continuing_subword_prefix', '##') != '##':
        raise _field_error(path, 'model.continuing_subword_prefix',
                           model['continuing_subword_prefix'], "'##'")
    if model.get('unk_token', '[UNK]') != '[UNK]':
        raise _field_error(path, 'model.unk_token', model['unk_token'], "'[UNK]'")
    pre_tokenizer = description.get('pre_tokenizer')
    kind = pre_tokenizer.get('type') if isinstance(pre_tokenizer, dict) else pre_tokenizer
    if kind not in _BERT_PRE_TOKENIZERS:
        raise _field_error(path, 'pre_tokenizer.type', kind, "'BertPreTokenizer'")
    ids = model.get('vocab')
    if not isinstance(ids, dict) or sorted(ids.values()) != list(range(len(ids))):
        raise ValueError(f'{path}: model.vocab must map each token to its id, the ids 0, 1, '
                         f'..., n-1 each once')
    tokens = sorted(ids, key=ids.get)
    for added in description.get('added_tokens') or []:
        content = added.get('content')
        if ids.get(content) != added.get('id'):
            raise ValueError(f'{path}: added token {content!r} (id {added.get("id")}) is not '
                             f'in model.vocab under that id; gluonbert reads vocabularies '
                             f'whose added tokens are part of the WordPiece vocabulary')
        if not added.get('special') and content not in SPECIAL_TOKENS:
            raise ValueError(f'{path}: added token {content!r} is matched before WordPiece '
                             f'in HF\'s tokenizer; gluonbert does not split text on added '
                             f'tokens (add words with pretrain --add-tokens instead)')
    settings = _normalizer_settings(path, description.get('normalizer'))
    settings['max_input_chars_per_word'] = model.get('max_input_chars_per_word', 100)
    return tokens, settings


def _vocab_txt_settings(folder, vocab):
    """WordPieceTokenizer settings of a ``vocab.txt`` folder: ``tokenizer_config.json``'s, or
    uncased when the vocabulary has no capitals (as ``bert-base-uncased``)."""
    path = os.path.join(folder, TOKENIZER_CONFIG_FILE)
    config = read_json(path, 'a JSON object of tokenizer settings') if os.path.isfile(path) \
        else {}
    return {'lower': config.get('do_lower_case', is_uncased(vocab)),
            'strip_accents': config.get('strip_accents'),
            'tokenize_chinese_chars': config.get('tokenize_chinese_chars', True)}


def _normalisation(vocab, settings):
    """What a tokenizer with ``settings`` does (``strip_accents`` None follows ``lower``)."""
    tokenizer = WordPieceTokenizer(vocab, **settings)
    return {'lower': tokenizer.lower, 'strip_accents': tokenizer.strip_accents,
            'tokenize_chinese_chars': tokenizer.tokenize_chinese_chars}


def _check_agree(folder, vocab, from_txt, from_json):
    """ValueError naming the first setting in which the two files differ."""
    txt, json_ = _normalisation(vocab, from_txt), _normalisation(vocab, from_json)
    for name, value in txt.items():
        if value != json_[name]:
            raise ValueError(f'{folder!r}: {TOKENIZER_CONFIG_FILE} (or {VOCAB_FILE}) gives '
                             f'{name}={value!r} but {TOKENIZER_FILE} gives {json_[name]!r}; '
                             f'the two describe different tokenizers')


def load_vocab_and_tokenizer(folder):
    """``(vocab, WordPieceTokenizer)`` of an HF folder, from ``tokenizer.json``, ``vocab.txt``
    (+ ``tokenizer_config.json``) or both (which must agree: same tokens in the same order,
    same normalisation). The vocabulary uses d2l's special token names (``<cls>``, ...)."""
    txt_path, json_path = (os.path.join(folder, name) for name in (VOCAB_FILE, TOKENIZER_FILE))
    has_txt, has_json = os.path.isfile(txt_path), os.path.isfile(json_path)
    if not (has_txt or has_json):
        raise FileNotFoundError(f'{folder!r} has no {VOCAB_FILE} nor {TOKENIZER_FILE}: an HF '
                                f'BERT folder carries its vocabulary in one of them')
    if has_json:
        tokens, settings = _tokenizer_json(json_path)
        vocab = vocab_from_bert_tokens(tokens, f'{json_path} model.vocab')
    if has_txt:
        txt_vocab = read_wordpiece_vocab(txt_path)
        txt_settings = _vocab_txt_settings(folder, txt_vocab)
        if not has_json:
            return txt_vocab, WordPieceTokenizer(txt_vocab, **txt_settings)
        if txt_vocab.idx_to_token != vocab.idx_to_token:
            first = next((i for i, (a, b) in enumerate(zip(txt_vocab.idx_to_token,
                                                            vocab.idx_to_token)) if a != b),
                         min(len(txt_vocab), len(vocab)))
            raise ValueError(f'{folder!r}: {VOCAB_FILE} ({len(txt_vocab)} tokens) and '
                             f'{TOKENIZER_FILE} ({len(vocab)} tokens) differ from id {first} '
                             f'on; the two must hold one vocabulary')
        _check_agree(folder, vocab, txt_settings, settings)
    return vocab, WordPieceTokenizer(vocab, **settings)


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
    hf.save(os.path.join(folder, TOKENIZER_FILE))
    present = set(bert_tokens(vocab))
    settings = {'tokenizer_class': 'BertTokenizer', 'do_lower_case': tokenizer.lower,
                'strip_accents': tokenizer.strip_accents,
                'tokenize_chinese_chars': tokenizer.tokenize_chinese_chars,
                'model_max_length': max_len}
    settings.update({name: token for name, token in _SPECIAL.items() if token in present})
    write_json(os.path.join(folder, TOKENIZER_CONFIG_FILE), settings, indent=2)
