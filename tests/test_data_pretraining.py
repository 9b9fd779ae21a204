"""WikiText-2 pretraining examples and batches: the same as d2l 1.0.3's for the same seed
(d2l's own functions run here), fast numpy arrays, the on-disk cache, and clear errors."""
import gc
import logging
import random
from pathlib import Path

import mxnet as mx
import numpy as np
import pytest

import d2l.mxnet as d2l
from gluonbert import data
from gluonbert.data import (DataNotFoundError, embedded_slice_dir, load_data_wiki,
                            load_wiki_dataset, read_wiki)

SLICE = Path(embedded_slice_dir()) / 'wiki.train.tokens'


@pytest.fixture(autouse=True)
def cache_dir(tmp_path, monkeypatch):
    """Each test gets an empty cache and no downloads."""
    monkeypatch.setenv('GLUONBERT_CACHE', str(tmp_path / 'cache'))
    monkeypatch.setenv('GLUONBERT_NO_DOWNLOAD', '1')
    return tmp_path / 'cache'


@pytest.fixture
def small_corpus(tmp_path):
    """The first 400 lines of the embedded slice (about 160 paragraphs)."""
    folder = tmp_path / 'wikitext-2'
    folder.mkdir()
    with open(SLICE, encoding='utf-8') as f:
        lines = f.readlines()[:400]
    (folder / 'wiki.train.tokens').write_text(''.join(lines), encoding='utf-8')
    return folder


def d2l_arrays(dataset):
    """d2l's lists of one mx.np array per row, stacked into numpy arrays."""
    return [np.stack([row.asnumpy() for row in rows]) for rows in (
        dataset.all_token_ids, dataset.all_segments, dataset.valid_lens,
        dataset.all_pred_positions, dataset.all_mlm_weights, dataset.all_mlm_labels,
        dataset.nsp_labels)]


def assert_same_arrays(ours, ref):
    for name, a, b in zip(data.cache.ARRAY_NAMES, ours, ref):
        assert a.dtype == b.dtype and a.shape == b.shape, name
        np.testing.assert_array_equal(a, b, err_msg=name)


@pytest.mark.parametrize('seed, max_len', [(0, 64), (7, 24)])
def test_seeded_dataset_equals_d2l_wikitext_dataset(small_corpus, seed, max_len):
    random.seed(seed)
    ref = d2l._WikiTextDataset(d2l._read_wiki(str(small_corpus)), max_len)
    ours = load_wiki_dataset(max_len, small_corpus, seed=seed)
    assert ours.vocab.idx_to_token == ref.vocab.idx_to_token
    assert ours.vocab.token_freqs == ref.vocab.token_freqs
    assert_same_arrays(ours.arrays, d2l_arrays(ref))


def test_seeded_dataset_equals_d2l_on_the_whole_embedded_slice():
    random.seed(0)
    ref = d2l._WikiTextDataset(d2l._read_wiki(embedded_slice_dir()), 64)
    ours = load_wiki_dataset(64, embedded_slice_dir(), seed=0, use_cache=False)
    assert ours.vocab.idx_to_token == ref.vocab.idx_to_token
    assert_same_arrays(ours.arrays, d2l_arrays(ref))


def test_unseeded_dataset_draws_from_global_random_as_d2l(small_corpus):
    random.seed(3)
    ref = d2l._WikiTextDataset(d2l._read_wiki(str(small_corpus)), 32)
    state_after_d2l = random.getstate()
    random.seed(3)
    ours = data._WikiTextDataset(data._read_wiki(str(small_corpus)), 32)
    assert_same_arrays(ours.arrays, d2l_arrays(ref))
    assert random.getstate() == state_after_d2l


def test_read_wiki_equals_d2l_read_wiki(small_corpus):
    random.seed(5)
    ref = d2l._read_wiki(str(small_corpus))
    assert read_wiki(small_corpus, random.Random(5)) == ref


def test_nsp_helpers_equal_d2l(small_corpus):
    paragraphs = [d2l.tokenize(p, token='word') for p in read_wiki(small_corpus)]
    vocab = data.Vocab(paragraphs[0])
    random.seed(11)
    ref = [d2l._get_nsp_data_from_paragraph(p, paragraphs, vocab, 40) for p in paragraphs]
    random.seed(11)
    assert [data.get_nsp_data_from_paragraph(p, paragraphs, vocab, 40) for p in paragraphs] == ref
    random.seed(12)
    ref = [d2l._get_next_sentence('a', 'b', paragraphs) for _ in range(50)]
    rng = random.Random(12)
    assert [data.get_next_sentence('a', 'b', paragraphs, rng) for _ in range(50)] == ref


def test_mlm_helpers_equal_d2l(small_corpus):
    sentences = [s.split() for p in read_wiki(small_corpus) for s in p]
    vocab = data.Vocab(sentences, min_freq=2, reserved_tokens=data.pretraining.RESERVED_TOKENS)
    examples = [d2l.get_tokens_and_segments(a, b)[0] for a, b in zip(sentences, sentences[1:])]
    random.seed(13)
    ref = [d2l._get_mlm_data_from_tokens(tokens, vocab) for tokens in examples]
    random.seed(13)
    assert [data.get_mlm_data_from_tokens(tokens, vocab) for tokens in examples] == ref
    random.seed(14)
    ref = [d2l._replace_mlm_tokens(tokens, list(range(1, len(tokens) - 1)), 4, vocab)
           for tokens in examples]
    random.seed(14)
    assert [data.replace_mlm_tokens(tokens, list(range(1, len(tokens) - 1)), 4, vocab)
            for tokens in examples] == ref


def test_pad_bert_inputs_equals_d2l():
    vocab = data.Vocab([['a', 'b']], reserved_tokens=data.pretraining.RESERVED_TOKENS)
    examples = [([3, 4, 5, 6], [1, 2], [5, 6], [0, 0, 1, 1], True),
                ([3, 4, 6, 5, 6, 7, 8, 9, 2, 4], [3], [6], [0] * 4 + [1] * 6, False)]
    ref = [np.stack([row.asnumpy() for row in rows])
           for rows in d2l._pad_bert_inputs(examples, 12, vocab)]
    assert_same_arrays(data.pad_bert_inputs(examples, 12, vocab), ref)


def test_pad_bert_inputs_rejects_an_example_longer_than_max_len():
    vocab = data.Vocab(reserved_tokens=data.pretraining.RESERVED_TOKENS)
    examples = [([1] * 5, [1], [1], [0] * 5, True), ([1] * 9, [1], [1], [0] * 9, True)]
    with pytest.raises(ValueError, match=r'examples\[1\] has 9 tokens, more than the 8'):
        data.pad_bert_inputs(examples, 8, vocab)


def test_an_item_is_seven_numpy_values_in_d2l_order(small_corpus):
    dataset = load_wiki_dataset(32, small_corpus, seed=0)
    token_ids, segments, valid_len, pred_positions, mlm_weights, mlm_labels, nsp_label = (
        dataset[1])
    assert token_ids.shape == segments.shape == (32,) and token_ids.dtype == np.int32
    assert pred_positions.shape == mlm_weights.shape == mlm_labels.shape == (5,)
    assert valid_len.dtype == mlm_weights.dtype == nsp_label.dtype == np.float32
    assert np.ndim(valid_len) == np.ndim(nsp_label) == 0
    assert dataset.vocab.to_tokens(token_ids[[0, int(valid_len) - 1]]) == ['<cls>', '<sep>']
    assert (token_ids[int(valid_len):] == dataset.vocab['<pad>']).all()


def test_load_data_wiki_gives_d2l_batches_as_nd_arrays_without_np_mode(small_corpus):
    train_iter, vocab = load_data_wiki(16, 32, small_corpus, seed=0)
    batch = next(iter(train_iter))
    assert [type(x) for x in batch] == [mx.nd.NDArray] * 7
    assert [x.shape for x in batch] == [(16, 32), (16, 32), (16,), (16, 5), (16, 5), (16, 5),
                                        (16,)]
    assert vocab is train_iter.dataset.vocab and len(vocab) > 100


def test_load_data_wiki_gives_mx_np_batches_under_set_np(small_corpus, np_mode):
    train_iter, _ = load_data_wiki(16, 32, small_corpus, seed=0)
    batch = next(iter(train_iter))
    assert [type(x) for x in batch] == [mx.np.ndarray] * 7
    assert batch[0].dtype == np.int32 and batch[2].dtype == np.float32


def batches(train_iter, count=3):
    return [[x.asnumpy() for x in batch] for batch, _ in zip(train_iter, range(count))]


def test_same_seed_gives_the_same_batches(small_corpus):
    first = batches(load_data_wiki(8, 32, small_corpus, seed=1, use_cache=False)[0])
    second = batches(load_data_wiki(8, 32, small_corpus, seed=1, use_cache=False)[0])
    for a, b in zip(first, second):
        assert_same_arrays(a, b)


def test_different_seeds_give_different_examples_and_batches(small_corpus):
    one = load_data_wiki(8, 32, small_corpus, seed=1, use_cache=False)[0]
    two = load_data_wiki(8, 32, small_corpus, seed=2, use_cache=False)[0]
    assert not np.array_equal(one.dataset.all_token_ids[:100], two.dataset.all_token_ids[:100])
    assert not np.array_equal(batches(one)[0][0], batches(two)[0][0])


def test_seeded_epochs_are_shuffled_differently_and_reproducibly(small_corpus):
    def two_epochs():
        train_iter = load_data_wiki(8, 32, small_corpus, seed=1, use_cache=False)[0]
        return batches(train_iter, 1)[0][0], batches(train_iter, 1)[0][0]
    epoch1, epoch2 = two_epochs()
    assert not np.array_equal(epoch1, epoch2)
    np.testing.assert_array_equal(two_epochs()[1], epoch2)


def cache_entry(cache_dir):
    (npz,) = cache_dir.glob('*.npz')
    return npz, npz.with_name(npz.name[:-len('.npz')] + '.vocab.json')


def test_cache_hit_returns_identical_arrays_and_vocab_without_rebuilding(small_corpus, cache_dir):
    cold = load_wiki_dataset(32, small_corpus, seed=4)
    npz, vocab_json = cache_entry(cache_dir)
    written = npz.stat()
    warm = load_wiki_dataset(32, small_corpus, seed=4)
    assert_same_arrays(warm.arrays, cold.arrays)
    assert warm.vocab.idx_to_token == cold.vocab.idx_to_token
    assert warm.vocab.token_freqs == cold.vocab.token_freqs
    assert (npz.stat().st_ino, npz.stat().st_mtime_ns) == (written.st_ino, written.st_mtime_ns)
    assert data.Vocab.from_json(vocab_json).idx_to_token == cold.vocab.idx_to_token


@pytest.mark.parametrize('damaged', ['npz', 'vocab.json'])
def test_corrupt_cache_entry_is_ignored_and_rebuilt(small_corpus, cache_dir, caplog, damaged):
    cold = load_wiki_dataset(32, small_corpus, seed=4)
    npz, vocab_json = cache_entry(cache_dir)
    target = npz if damaged == 'npz' else vocab_json
    target.write_bytes(target.read_bytes()[:100])
    with caplog.at_level(logging.WARNING, logger='gluonbert.data.cache'):
        rebuilt = load_wiki_dataset(32, small_corpus, seed=4)
    assert 'ignoring unreadable cache entry' in caplog.text
    assert_same_arrays(rebuilt.arrays, cold.arrays)
    assert_same_arrays(load_wiki_dataset(32, small_corpus, seed=4).arrays, cold.arrays)
    assert len(target.read_bytes()) > 100


def test_cache_entries_are_keyed_by_max_len_seed_and_masking(small_corpus, cache_dir):
    for max_len, seed, masking in [(32, 4, 'token'), (24, 4, 'token'), (32, 5, 'token'),
                                   (32, 4, 'span')]:
        load_wiki_dataset(max_len, small_corpus, seed=seed, masking=masking)
    assert len(list(cache_dir.glob('*.npz'))) == 4
    assert not list(cache_dir.glob('*.tmp'))


def test_a_changed_masking_rate_misses_the_cache(small_corpus, cache_dir):
    default = load_wiki_dataset(32, small_corpus, seed=4)
    higher = load_wiki_dataset(32, small_corpus, seed=4, masking=data.MaskingConfig(rate=0.3))
    assert len(list(cache_dir.glob('*.npz'))) == 2
    assert higher.all_mlm_weights.sum() > 1.5 * default.all_mlm_weights.sum()
    assert_same_arrays(load_wiki_dataset(32, small_corpus, seed=4).arrays, default.arrays)


def test_unseeded_builds_are_not_cached(small_corpus, cache_dir):
    load_wiki_dataset(32, small_corpus)
    assert not cache_dir.exists() or not any(cache_dir.iterdir())


def corpus_of(tmp_path, content):
    folder = tmp_path / 'bad'
    folder.mkdir()
    (folder / 'wiki.train.tokens').write_bytes(content)
    return folder


def test_data_dir_without_train_file_is_named_in_the_error(tmp_path):
    with pytest.raises(DataNotFoundError, match=f"'{tmp_path}' has no wiki.train.tokens"):
        load_data_wiki(8, 32, tmp_path)


@pytest.mark.parametrize('content, message', [
    (b'', 'wiki.train.tokens has no paragraph of two or more sentences'),
    (b'\n \n = Title = \n', 'wiki.train.tokens has no paragraph of two or more sentences'),
    # d2l keeps this line (two parts before strip()) as a paragraph of one sentence
    (b' one sentence only . \n', 'none of the 1 has two or more sentences')])
def test_corpus_without_a_two_sentence_paragraph_is_rejected(tmp_path, content, message):
    folder = corpus_of(tmp_path, content)
    with pytest.raises(ValueError, match=message):
        load_data_wiki(8, 32, folder)


def test_non_utf8_corpus_error_names_the_file_and_byte_offset(tmp_path):
    folder = corpus_of(tmp_path, b'a b . c d . e\n caf\xe9 . x y \n')
    with pytest.raises(ValueError, match=r'wiki.train.tokens is not UTF-8: .* byte offset 18'):
        load_data_wiki(8, 32, folder)


def test_corpus_whose_sentence_pairs_exceed_max_len_is_rejected(tmp_path):
    folder = corpus_of(tmp_path, b'a b c d . e f g h . i j k l\n')
    with pytest.raises(ValueError, match='none of the 2 pairs of consecutive sentences fits in '
                                         'max_len=8'):
        load_data_wiki(8, 8, folder)


@pytest.mark.parametrize('max_len', [4, 0, 64.0, '64', True])
def test_max_len_below_five_or_not_an_integer_is_rejected(small_corpus, max_len):
    with pytest.raises(ValueError, match=f'max_len must be an integer >= 5 .*got {max_len!r}'):
        load_data_wiki(8, max_len, small_corpus)


@pytest.mark.parametrize('batch_size', [0, -3, 2.5, None])
def test_batch_size_not_positive_integer_is_rejected(small_corpus, batch_size):
    with pytest.raises(ValueError, match=f'batch_size must be a positive integer, got '
                                         f'{batch_size!r}'):
        load_data_wiki(batch_size, 32, small_corpus)


def test_unknown_masking_strategy_is_rejected(small_corpus):
    with pytest.raises(ValueError, match="masking must be one of 'token', 'whole_word', 'span', "
                                         "got 'bert'"):
        load_data_wiki(8, 32, small_corpus, masking='bert')


@pytest.mark.parametrize('seed', [-1, 1.5, 'abc'])
def test_seed_not_a_non_negative_integer_is_rejected(small_corpus, seed):
    with pytest.raises(ValueError, match=f'seed must be None or an integer >= 0, got {seed!r}'):
        load_data_wiki(8, 32, small_corpus, seed=seed)


def test_a_build_leaves_the_cycle_collector_enabled_even_when_it_fails(small_corpus):
    data.WikiTextDataset(read_wiki(small_corpus), 32)
    assert gc.isenabled()
    with pytest.raises(ValueError, match='none of the 1 pairs'):
        data.WikiTextDataset([['a b c d', 'e f g h']], 8)
    assert gc.isenabled()
