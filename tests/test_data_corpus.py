"""Own corpora: documents from files and folders, sentence splitting, BERT's packing of long
documents (nothing dropped silently), mixing by weight, a held-out part with fixed masks,
sharded memory-mapped storage read lazily and per worker, and vocabularies (d2l's words, a
given vocab.txt, one learned with HF's tokenizers)."""
import random

import numpy as np
import pytest

from gluonbert.data import MaskingConfig
from gluonbert.data.corpus import CorpusSource, read_documents, split_sentences
from gluonbert.data.corpus_vocab import (WordTokenizer, corpus_vocab, learn_wordpiece_vocab,
                                         word_vocab)
from gluonbert.data.packing import PackingReport, pack_document, truncate_pair
from gluonbert.data.preprocess import PreprocessSettings, cache_key, describe, preprocess
from gluonbert.data.shards import ShardedDataset
from gluonbert.data.wordpiece import read_wordpiece_vocab, write_wordpiece_vocab

WORDS = ('river bank water stone bridge city night light music garden winter summer paper '
         'story horse field market window forest train').split()


def sentence(rng, low=4, high=12):
    words = rng.choices(WORDS, k=rng.randint(low, high))
    return ' '.join([words[0].capitalize()] + words[1:]) + '.'


def write_corpus(path, documents, rng, sentences=(3, 8), per_line=False):
    """``documents`` documents of random sentences; blank-line blocks (one sentence per line)
    or one document per line."""
    texts = [[sentence(rng) for _ in range(rng.randint(*sentences))] for _ in range(documents)]
    if per_line:
        path.write_text(''.join(' '.join(doc) + '\n' for doc in texts), encoding='utf-8')
    else:
        path.write_text('\n'.join(''.join(s + '\n' for s in doc) for doc in texts),
                        encoding='utf-8')
    return texts


def test_blank_lines_separate_documents_and_lines_are_sentences(tmp_path):
    path = tmp_path / 'c.txt'
    path.write_text('One here. Two there!\nThree\n\n\nFour? Five.\n', encoding='utf-8')
    assert list(read_documents(CorpusSource(str(path)))) == [
        ['One here.', 'Two there!', 'Three'], ['Four?', 'Five.']]


def test_doc_per_line_makes_each_line_a_document(tmp_path):
    path = tmp_path / 'c.txt'
    path.write_text('One here. Two there!\n\nThree. "Four" said he.\n', encoding='utf-8')
    assert list(read_documents(CorpusSource(str(path), doc_per_line=True))) == [
        ['One here.', 'Two there!'], ['Three.', '"Four" said he.']]


def test_sentences_split_before_capitals_digits_and_quotes_only():
    assert split_sentences('It was 3.5 m long. Then 1990 came! "Yes?" she asked. e.g. this') \
        == ['It was 3.5 m long.', 'Then 1990 came!', '"Yes?" she asked. e.g. this']


def test_a_folder_is_read_file_by_file_in_sorted_order_skipping_hidden_files(tmp_path):
    (tmp_path / 'b.txt').write_text('Second doc.\n', encoding='utf-8')
    (tmp_path / 'sub').mkdir()
    (tmp_path / 'sub' / 'c.txt').write_text('Third doc.\n', encoding='utf-8')
    (tmp_path / 'a.txt').write_text('First doc.\n', encoding='utf-8')
    (tmp_path / '.hidden').write_text('Never.\n', encoding='utf-8')
    assert list(read_documents(CorpusSource(str(tmp_path)))) == [
        ['First doc.'], ['Second doc.'], ['Third doc.']]


def test_corpus_spec_takes_an_optional_weight(tmp_path):
    assert CorpusSource.parse('data/web.txt:0.5') == CorpusSource('data/web.txt', 0.5)
    assert CorpusSource.parse('data/web.txt') == CorpusSource('data/web.txt', 1.0)
    with pytest.raises(ValueError, match=r"--corpus 'web.txt:heavy': weight 'heavy' is not"):
        CorpusSource.parse('web.txt:heavy')
    with pytest.raises(ValueError, match=r"corpus weight=-1.0 for 'web.txt'"):
        CorpusSource.parse('web.txt:-1')


def test_missing_corpus_and_non_utf8_text_are_named(tmp_path):
    with pytest.raises(FileNotFoundError, match="corpus '.*nowhere' does not exist"):
        list(read_documents(CorpusSource(str(tmp_path / 'nowhere'))))
    path = tmp_path / 'latin1.txt'
    path.write_bytes(b'Fine line.\nCaf\xe9 au lait.\n')
    with pytest.raises(ValueError, match=r"latin1.txt' line 2 is not UTF-8"):
        list(read_documents(CorpusSource(str(path))))


def test_packing_keeps_every_sentence_of_a_long_document():
    rng = random.Random(0)
    # Sentences are token IDs; a document far longer than max_len, and an unrelated one
    long_doc = [list(range(n * 100, n * 100 + rng.randint(3, 20))) for n in range(60)]
    other = [[9000 + i for i in range(15)] for _ in range(5)]
    report = PackingReport()
    pairs = pack_document(0, [long_doc, other], 48, random.Random(1), 0.1, report)
    real = [t for a, b, is_next in pairs for t in a + (b if is_next else [])]
    assert sorted(real) == sorted(t for s in long_doc for t in s)  # each token exactly once
    assert report.truncated_tokens == 0
    assert report.packed_tokens == len(real)
    assert report.examples == len(pairs) > 10
    assert all(len(a) + len(b) <= 45 and a and b for a, b, _ in pairs)
    assert 0.3 < report.is_next / report.examples < 0.7


def test_a_pair_too_long_is_cut_from_its_longer_side_and_counted():
    tokens_a, tokens_b = list(range(30)), list(range(100, 110))
    assert truncate_pair(tokens_a, tokens_b, 25, random.Random(0)) == 15
    assert len(tokens_a) == 15 and tokens_b == list(range(100, 110))
    rng = random.Random(0)
    doc = [list(range(40)), list(range(100, 140))]  # two sentences, each near max_len
    report = PackingReport()
    pairs = pack_document(0, [doc, [[7] * 5]], 32, rng, 0.0, report)
    kept = sum(len(a) + (len(b) if n else 0) for a, b, n in pairs)
    assert kept + report.truncated_tokens == 80 == report.packed_tokens
    assert report.truncated_tokens > 0


@pytest.fixture
def corpus(tmp_path):
    path = tmp_path / 'corpus.txt'
    write_corpus(path, 120, random.Random(0))
    return CorpusSource(str(path))


def test_word_vocab_is_d2ls_with_min_freq_five(corpus, tmp_path):
    rare = tmp_path / 'rare.txt'
    rare.write_text('Zebra river.\n', encoding='utf-8')
    vocab = word_vocab([corpus, CorpusSource(str(rare))])
    assert set(vocab.idx_to_token) == set(WORDS) | {'<unk>', '<pad>', '<mask>', '<cls>',
                                                    '<sep>', '.'}


def test_learned_wordpiece_vocab_has_bert_specials_and_covers_the_corpus(corpus, tmp_path):
    vocab, tokenizer = corpus_vocab([corpus], learn_size=120)
    assert len(vocab) <= 120 and {'<pad>', '<unk>', '<cls>', '<sep>', '<mask>'} <= set(
        vocab.idx_to_token)
    assert any(t.startswith('##') for t in vocab.idx_to_token)
    text = ' '.join(s for doc in read_documents(corpus) for s in doc)
    assert '<unk>' not in tokenizer(text)
    write_wordpiece_vocab(vocab, tmp_path / 'vocab.txt')
    given, _ = corpus_vocab([corpus], vocab_file=str(tmp_path / 'vocab.txt'))
    assert given.idx_to_token == vocab.idx_to_token


def test_learning_a_vocabulary_smaller_than_the_specials_is_refused(corpus):
    with pytest.raises(ValueError, match='vocabulary size=3; expected an integer above 5'):
        learn_wordpiece_vocab([corpus], 3)


def settings(**overrides):
    return PreprocessSettings(**dict(dict(max_len=32, chunk_tokens=400, shard_size=50),
                                     **overrides))


def build(corpora, folder, vocab_size=None, **overrides):
    vocab, tokenizer = corpus_vocab(corpora, learn_size=vocab_size)
    return preprocess(corpora, vocab, tokenizer, str(folder), settings(**overrides),
                      progress=False), vocab


def test_preprocessing_writes_shards_counts_and_a_held_out_part(corpus, tmp_path):
    meta, vocab = build([corpus], tmp_path / 'pp', valid_fraction=0.2)
    train = ShardedDataset(str(tmp_path / 'pp'))
    valid = ShardedDataset(str(tmp_path / 'pp'), 'valid')
    totals = {name: meta['splits'][name]['total'] for name in ('train', 'valid')}
    assert totals['train']['documents'] + totals['valid']['documents'] == 120
    assert 10 <= totals['valid']['documents'] <= 40
    assert len(train) == totals['train']['examples'] == sum(meta['splits']['train']['shards'])
    assert len(meta['splits']['train']['shards']) > 3
    assert totals['train']['truncated_tokens'] == 0
    assert 0.3 < totals['train']['is_next'] / totals['train']['examples'] < 0.7
    assert meta['vocab']['unknown_rate'] == 0.0
    tokens, segments, valid_lens, positions, weights, labels, nsp = train[np.arange(len(train))]
    assert tokens.shape == (len(train), 32) and positions.shape == (len(train), 5)
    assert (tokens[:, 0] == vocab['<cls>']).all()
    rows = np.arange(len(train))
    assert (tokens[rows, valid_lens.astype(int) - 1] == vocab['<sep>']).all()
    boundary = np.argmax(segments == 1, axis=1) - 1
    assert (tokens[rows, boundary] == vocab['<sep>']).all()
    assert (weights.sum(axis=1) == np.maximum(1, np.round(valid_lens * 0.15))).all()
    assert 'valid:' in '\n'.join(describe(meta))


def test_lazy_reads_equal_one_whole_read_and_workers_split_the_shards(corpus, tmp_path):
    build([corpus], tmp_path / 'pp')
    whole = ShardedDataset(str(tmp_path / 'pp'))
    everything = whole[np.arange(len(whole))]
    order = np.random.default_rng(0).permutation(len(whole))
    for a, b in zip(whole[order], everything):
        np.testing.assert_array_equal(a, b[order])
    item = whole[7]
    for a, b in zip(item, everything):
        np.testing.assert_array_equal(a, b[7])
    workers = [ShardedDataset(str(tmp_path / 'pp'), rank=r, num_workers=2) for r in (0, 1)]
    assert set(workers[0].shards).isdisjoint(workers[1].shards)
    assert len(workers[0]) + len(workers[1]) == len(whole)
    first_of_rank1 = workers[1][0][0]
    np.testing.assert_array_equal(first_of_rank1, everything[0][whole.counts[0]])


def test_epoch_order_is_a_seeded_permutation_reading_a_window_of_shards_at_a_time(corpus,
                                                                                  tmp_path):
    from gluonbert.data import shards
    build([corpus], tmp_path / 'pp', shard_size=20)
    data = ShardedDataset(str(tmp_path / 'pp'))
    assert len(data.shards) > 2 * shards._OPEN_SHARDS
    order = data.order(seed=3, epoch=1)
    assert sorted(order) == list(range(len(data)))
    np.testing.assert_array_equal(order, data.order(seed=3, epoch=1))
    assert not np.array_equal(order, data.order(seed=3, epoch=2))
    shard_of = np.searchsorted(data._starts, order, side='right') - 1
    # The first batches mix several shards, all of them mapped at once
    assert 1 < len(set(shard_of[:100])) <= shards._OPEN_SHARDS


def test_same_settings_give_the_same_shards(corpus, tmp_path):
    build([corpus], tmp_path / 'a', valid_fraction=0.1)
    build([corpus], tmp_path / 'b', valid_fraction=0.1)
    for split in ('train', 'valid'):
        a, b = (ShardedDataset(str(tmp_path / n), split) for n in 'ab')
        for x, y in zip(a[np.arange(len(a))], b[np.arange(len(b))]):
            np.testing.assert_array_equal(x, y)


def test_validation_masks_do_not_depend_on_the_training_mix(corpus, tmp_path):
    other = tmp_path / 'other.txt'
    write_corpus(other, 30, random.Random(5))
    build([corpus], tmp_path / 'a', valid_fraction=0.2)
    build([corpus, CorpusSource(str(other), 2.0)], tmp_path / 'b', valid_fraction=0.2)
    a, b = (ShardedDataset(str(tmp_path / n), 'valid') for n in 'ab')
    assert len(b) > len(a)  # the second corpus adds held-out documents too
    # The first corpus's first chunks of held-out documents give the same masked examples
    for x, y in zip(a[np.arange(10)], b[np.arange(10)]):
        np.testing.assert_array_equal(x, y)


def test_corpora_are_mixed_by_weight(tmp_path):
    paths = []
    for name, seed in (('a.txt', 1), ('b.txt', 2)):
        paths.append(tmp_path / name)
        write_corpus(paths[-1], 100, random.Random(seed))
    meta, _ = build([CorpusSource(str(paths[0]), 3.0), CorpusSource(str(paths[1]), 0.5)],
                    tmp_path / 'pp')
    per_corpus = meta['splits']['train']['corpora']
    a, b = (per_corpus[str(p)]['examples'] for p in paths)
    assert 4 < a / b < 8  # 3 / 0.5 = 6 times the examples for the same amount of text


def test_doc_per_line_corpora_preprocess_too(tmp_path):
    path = tmp_path / 'lines.txt'
    write_corpus(path, 80, random.Random(3), per_line=True)
    meta, _ = build([CorpusSource(str(path), doc_per_line=True)], tmp_path / 'pp')
    assert meta['splits']['train']['total']['documents'] == 80


def test_whole_word_masking_keeps_wordpiece_words_together(corpus, tmp_path):
    build([corpus], tmp_path / 'pp', vocab_size=60, masking=MaskingConfig(strategy='whole_word'))
    data = ShardedDataset(str(tmp_path / 'pp'))
    vocab = read_wordpiece_vocab(str(tmp_path / 'pp' / 'vocab.txt'))
    continues = np.array([t.startswith('##') for t in vocab.idx_to_token])
    tokens, _, _, positions, weights, labels, _ = data[np.arange(len(data))]
    original = tokens.copy()
    rows, slots = np.nonzero(weights)
    original[rows, positions[rows, slots]] = labels[rows, slots]
    predicted = np.zeros_like(tokens, dtype=bool)
    predicted[rows, positions[rows, slots]] = True
    # A '##' piece is predicted exactly when the piece before it is (unless truncation cut
    # the word's start and the piece follows '<cls>' or '<sep>')
    follows = continues[original[:, 1:]] & ~np.isin(original[:, :-1],
                                                     [vocab['<cls>'], vocab['<sep>']])
    assert follows.sum() > 100
    assert (predicted[:, 1:][follows] == predicted[:, :-1][follows]).all()


def test_an_existing_folder_is_never_replaced_and_a_failure_leaves_nothing(corpus, tmp_path):
    (tmp_path / 'pp').mkdir()
    (tmp_path / 'pp' / 'keep.txt').write_text('mine', encoding='utf-8')
    with pytest.raises(FileExistsError, match='exists and is not a preprocessed corpus'):
        build([corpus], tmp_path / 'pp')
    assert (tmp_path / 'pp' / 'keep.txt').read_text(encoding='utf-8') == 'mine'
    empty = tmp_path / 'empty.txt'
    empty.write_text('\n\n', encoding='utf-8')
    vocab, tokenizer = corpus_vocab([corpus])
    with pytest.raises(ValueError, match='hold no text'):
        preprocess([CorpusSource(str(empty))], vocab, tokenizer, str(tmp_path / 'none'),
                   settings(), progress=False)
    assert not (tmp_path / 'none').exists()
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith('.')] == []


def test_the_cache_key_changes_with_masking_corpus_weight_and_vocab(corpus, tmp_path):
    vocab, _ = corpus_vocab([corpus])
    base = cache_key([corpus], vocab, settings())
    assert base == cache_key([corpus], vocab, settings())
    assert base != cache_key([corpus], vocab, settings(masking=MaskingConfig(rate=0.2)))
    assert base != cache_key([CorpusSource(corpus.path, 2.0)], vocab, settings())
    other, _ = corpus_vocab([corpus], learn_size=80)
    assert base != cache_key([corpus], other, settings())


def test_word_tokenizer_lowercases_and_splits_at_whitespace():
    assert WordTokenizer()('The  River\tBank, Café.') == ['the', 'river', 'bank', ',', 'cafe',
                                                          '.']


def test_a_given_cased_vocab_txt_keeps_case_and_an_uncased_one_lowercases(corpus, tmp_path):
    path = tmp_path / 'vocab.txt'
    path.write_text('\n'.join(['[PAD]', '[UNK]', '[CLS]', '[SEP]', '[MASK]', 'River', 'river',
                               '.']) + '\n', encoding='utf-8')
    _, tokenizer = corpus_vocab([corpus], vocab_file=str(path))
    assert tokenizer('River river.') == ['River', 'river', '.']
    path.write_text('\n'.join(['[PAD]', '[UNK]', '[CLS]', '[SEP]', '[MASK]', 'river', '.'])
                    + '\n', encoding='utf-8')
    _, tokenizer = corpus_vocab([corpus], vocab_file=str(path))
    assert tokenizer('River river.') == ['river', 'river', '.']
