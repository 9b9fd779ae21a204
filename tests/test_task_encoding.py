"""Encoding for the heads: d2l's pair layout, labels on first sub-words, windows that drop no
word, and post-processing back to words."""
import numpy as np
import pytest

from gluonbert.data.nli import SNLIBERTDataset, embedded_snli_dir, read_snli_infersent
from gluonbert.data.tokenization import WhitespaceTokenizer
from gluonbert.data.wordpiece import WordPieceTokenizer, vocab_from_bert_tokens
from gluonbert.tasks import get_task
from gluonbert.tasks.encoding import IGNORE_LABEL, encode_texts
from gluonbert.tasks.readers import TaggedSentence

SPECIALS = ['[PAD]', '[UNK]', '[CLS]', '[SEP]', '[MASK]']


def wordpiece(tokens):
    vocab = vocab_from_bert_tokens(SPECIALS + tokens)
    return WordPieceTokenizer(vocab), vocab


def test_ignore_label_is_the_heads_one():
    from gluonbert.model import heads
    assert IGNORE_LABEL == heads.IGNORE_LABEL


def test_pairs_encode_exactly_as_the_d2l_chapter_dataset():
    premises, hypotheses, labels = read_snli_infersent(embedded_snli_dir(), 'test')
    data = (premises[:200], hypotheses[:200], labels[:200])
    reference = SNLIBERTDataset(data, 24)
    tokens, segments, valid_lens = encode_texts(list(zip(*data[:2])), WhitespaceTokenizer(),
                                                reference.vocab, 24)
    width = tokens.shape[1]
    assert (reference.all_token_ids[:, width:] == reference.vocab['<pad>']).all()
    np.testing.assert_array_equal(tokens, reference.all_token_ids[:, :width])
    np.testing.assert_array_equal(segments, reference.all_segments[:, :width])
    np.testing.assert_array_equal(valid_lens, reference.valid_lens)


def test_tags_sit_on_the_first_piece_of_each_word():
    tokenizer, vocab = wordpiece(['un', '##aff', '##able', 'dog'])
    task = get_task('token-classification')
    sentence = TaggedSentence(['Unaffable', 'dog'], ['B-X', 'O'], 'here')
    features = task.encode([sentence], tokenizer, vocab, 8, ['B-X', 'O'])
    assert vocab.to_tokens(features.tokens[0]) == ['<cls>', 'un', '##aff', '##able', 'dog',
                                                    '<sep>']
    assert features.labels[0].tolist() == [-1, 0, -1, -1, 1, -1]


def test_long_sentences_are_windowed_and_every_word_gets_its_tag_back():
    tokenizer, vocab = wordpiece(['a', 'b', '##b', 'c'])
    task = get_task('token-classification')
    labels = ['B-X', 'I-X', 'O']
    words = ['a', 'bb', 'c', 'a', 'bbb', 'c', 'a'] * 3
    tags = ['B-X', 'I-X', 'O', 'O', 'B-X', 'O', 'O'] * 3
    sentences = [TaggedSentence(words, tags, 'one'), TaggedSentence(['c'], ['O'], 'two')]
    features = task.encode(sentences, tokenizer, vocab, 6, labels)
    assert features.tokens.shape[1] <= 6 and len(features) > 5
    assert sorted(set(features.example_index.tolist())) == [0, 1]
    # outputs that put all weight on the gold label give back every word's gold tag
    outputs = np.zeros(features.labels.shape + (len(labels),))
    scored = features.labels >= 0
    outputs[scored, features.labels[scored].astype(int)] = 1
    predictions = task.postprocess(outputs, features, sentences)
    assert predictions == [tags, ['O']]
    assert task.metrics(predictions, sentences)['f1'] == 1.0


def test_a_word_longer_than_a_window_keeps_its_first_pieces():
    tokenizer, vocab = wordpiece(['b', '##b'])
    task = get_task('token-classification')
    sentence = TaggedSentence(['b' * 9, 'b'], ['B-X', 'O'], 'x')
    features = task.encode([sentence], tokenizer, vocab, 5, ['B-X', 'O'])
    assert features.labels.tolist() == [[-1, 0, -1, -1, -1], [-1, 1, -1, IGNORE_LABEL,
                                                               IGNORE_LABEL]]


def test_single_texts_are_cut_to_max_len():
    tokens, segments, valid_lens = encode_texts([('a b c d e f',)], WhitespaceTokenizer(),
                                                vocab_from_bert_tokens(SPECIALS + list('abc')),
                                                5)
    assert tokens.shape == (1, 5) and valid_lens.tolist() == [5] and segments.sum() == 0


def test_max_len_without_room_is_refused():
    with pytest.raises(ValueError, match='max_len=3'):
        encode_texts([('a', 'b')], WhitespaceTokenizer(),
                     vocab_from_bert_tokens(SPECIALS + ['a']), 3)
