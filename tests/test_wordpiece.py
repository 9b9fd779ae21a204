"""WordPiece tokenization: BERT's rules one by one, parity with GluonNLP's BERTTokenizer on real
SNLI sentences, and the vocab.txt format with d2l's special token names."""
import collections

import gluonnlp
import pytest

import gluonbert
from gluonbert.data.wordpiece import (WordPieceTokenizer, bert_tokens, read_wordpiece_vocab,
                                      vocab_from_bert_tokens, write_wordpiece_vocab)
from shared_data import shared_folder

SPECIALS = ['[PAD]', '[UNK]', '[CLS]', '[SEP]', '[MASK]']


def tokenizer_of(tokens, **options):
    return WordPieceTokenizer(vocab_from_bert_tokens(SPECIALS + tokens), **options)


def test_words_split_into_longest_pieces_with_continuation_marks():
    tokenizer = tokenizer_of(['un', 'unaff', '##aff', '##able', '##a', '##ble'])
    assert tokenizer('unaffable') == ['unaff', '##able']


def test_word_without_a_split_becomes_unk():
    assert tokenizer_of(['un', '##able'])('unxable un') == ['<unk>', 'un']


def test_word_longer_than_max_input_chars_becomes_unk():
    tokenizer = tokenizer_of(['a', '##a'], max_input_chars_per_word=4)
    assert tokenizer('aaaa aaaaa') == ['a', '##a', '##a', '##a', '<unk>']


def test_lower_casing_and_accent_stripping():
    tokenizer = tokenizer_of(['hello', 'cafe'])
    assert tokenizer('HeLLo Café') == ['hello', 'cafe']


def test_cased_tokenizer_keeps_case_and_accents_as_bert_does():
    tokenizer = tokenizer_of(['Hello', 'Café', 'cafe'], lower=False)
    assert tokenizer('Hello Café') == ['Hello', 'Café']


def test_punctuation_is_split_off_including_ascii_symbols():
    tokenizer = tokenizer_of(['don', 't', 'a', 'b', "'", '$', '¿'])
    assert tokenizer("don't a$b¿") == ['don', "'", 't', 'a', '$', 'b', '¿']


def test_each_cjk_character_is_a_word():
    assert tokenizer_of(['使', '用'])('使用') == ['使', '用']


def test_control_characters_are_dropped_and_whitespace_splits():
    tokenizer = tokenizer_of(['ab', 'cd'])
    assert tokenizer('a\x00b\u200b\tcd\u00a0ab\ufffd\n') == ['ab', 'cd', 'ab']


def test_tokens_feed_get_tokens_and_segments():
    tokenizer = tokenizer_of(['a', 'man', 'sleeps'])
    vocab = tokenizer.vocab
    tokens, segments = gluonbert.get_tokens_and_segments(tokenizer('A man.'), tokenizer('Sleeps'))
    assert tokens == ['<cls>', 'a', 'man', '<unk>', '<sep>', 'sleeps', '<sep>']
    assert [bert_tokens(vocab)[i] for i in vocab[tokens]] == [
        '[CLS]', 'a', 'man', '[UNK]', '[SEP]', 'sleeps', '[SEP]']
    assert segments == [0, 0, 0, 0, 0, 1, 1]


def test_vocab_txt_maps_special_tokens_and_keeps_indices(tmp_path):
    path = tmp_path / 'vocab.txt'
    path.write_text('[PAD]\n[unused0]\n[UNK]\n[CLS]\n[SEP]\n[MASK]\nthe\n##s\n', encoding='utf-8')
    vocab = read_wordpiece_vocab(str(path))
    assert vocab.idx_to_token == ['<pad>', '[unused0]', '<unk>', '<cls>', '<sep>', '<mask>',
                                  'the', '##s']
    assert vocab.unk == 2 and vocab['<cls>'] == 3


def test_vocab_txt_round_trips_byte_for_byte(tmp_path):
    original = '[PAD]\n[UNK]\n[CLS]\n[SEP]\n[MASK]\nthe\n##s\n\u00e9t\u00e9\n'
    (tmp_path / 'vocab.txt').write_text(original, encoding='utf-8')
    write_wordpiece_vocab(read_wordpiece_vocab(str(tmp_path / 'vocab.txt')),
                          str(tmp_path / 'copy.txt'))
    assert (tmp_path / 'copy.txt').read_bytes() == original.encode('utf-8')


def test_vocab_without_unk_is_refused():
    with pytest.raises(ValueError, match='has no "\\[UNK\\]" token'):
        vocab_from_bert_tokens(['[PAD]', 'the'])


def test_vocab_holding_a_d2l_special_name_is_refused():
    with pytest.raises(ValueError, match="holds '<cls>' besides BERT's special tokens"):
        vocab_from_bert_tokens(SPECIALS + ['<cls>'])


def snli_lines():
    snli = shared_folder('snli-1.0-devtest')
    return [line.rstrip('\n') for name in ('s1.test', 's2.test', 's1.dev', 's2.dev')
            for line in (snli / name).open(encoding='utf-8')]


def snli_vocab(lines, lower):
    """A WordPiece vocab in BERT's style built from half of the sentences: frequent words,
    frequent word endings as '##' pieces, and the characters, so the other half has words
    that split into pieces and characters that are unknown."""
    basic = gluonnlp.data.BERTBasicTokenizer(lower=lower)
    words = collections.Counter(w for line in lines[::2] for w in basic(line))
    endings = collections.Counter(w[i:] for w in words for i in range(1, len(w)) if len(w) - i <= 4)
    chars = sorted({c for w in words for c in w})
    tokens = (SPECIALS + chars + ['##' + c for c in chars] + [w for w, _ in words.most_common(3000)]
              + ['##' + e for e, _ in endings.most_common(500)])
    return list(dict.fromkeys(tokens))


@pytest.mark.parametrize('lower', [True, False])
def test_tokens_equal_gluonnlp_bert_tokenizer_on_snli(lower):
    lines = snli_lines()
    tokens = snli_vocab(lines, lower)
    reference_vocab = gluonnlp.Vocab(None, unknown_token='[UNK]', padding_token='[PAD]',
                                     bos_token=None, eos_token=None,
                                     reserved_tokens=[t for t in tokens if t not in
                                                      ('[UNK]', '[PAD]')])
    reference = gluonnlp.data.BERTTokenizer(reference_vocab, lower=lower,
                                            max_input_chars_per_word=100)
    tokenizer = WordPieceTokenizer(vocab_from_bert_tokens(tokens), lower=lower)
    if not lower:  # GluonNLP strips accents even when cased, unlike BERT: compare without them
        lines = [line for line in lines if line.isascii()]
    unknown = 0
    for line in lines:
        expected = reference(line)
        assert [t if t != '<unk>' else '[UNK]' for t in tokenizer(line)] == expected, line
        unknown += expected.count('[UNK]')
    assert len(lines) > 19000 and unknown > 0
