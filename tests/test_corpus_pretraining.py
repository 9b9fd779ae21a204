"""The start of an own-corpus run: a fresh model's vocabulary (word, given, learned and
cached), a pretrained folder extended with added tokens, and the preprocessed corpus cached
under every setting that changes the examples."""
import random

import mxnet as mx
import numpy as np
import pytest

from gluonbert import corpus_pretraining as cp
from gluonbert.options import PretrainOptions
from gluonbert.data.shards import ShardedDataset
from test_data_corpus import write_corpus
from test_vocab_extension import TOKENS


@pytest.fixture(autouse=True)
def cache(tmp_path, monkeypatch):
    monkeypatch.setenv('GLUONBERT_CACHE', str(tmp_path / 'cache'))
    return tmp_path / 'cache'


@pytest.fixture
def corpus(tmp_path):
    path = tmp_path / 'corpus.txt'
    write_corpus(path, 60, random.Random(0))
    return str(path)


def options(path, **overrides):
    values = dict(corpus=[path], doc_per_line=False, vocab=None, learn_vocab=None,
                  pretrained=None, add_tokens=None, dropout=0.1, max_len=32, seed=0,
                  masking='token', mask_rate=0.15, short_seq_prob=0.1, valid_fraction=0.1,
                  shard_size=1 << 14)
    values.update(overrides)
    return PretrainOptions(**values)


def start(opts):
    sources = cp.corpus_sources(opts.corpus, opts.doc_per_line)
    return sources, cp.starting_point(opts, sources, [mx.cpu()])


def test_a_learned_vocabulary_is_cached_and_reused(corpus, cache):
    _, (bert, vocab, tokenizer, notes) = start(options(corpus, learn_vocab=80))
    assert bert is None and len(vocab) <= 80 and 'learned WordPiece' in notes[0]
    assert len(list(cache.glob('wordpiece-*.txt'))) == 1
    _, (_, again, _, _) = start(options(corpus, learn_vocab=80))
    assert again.idx_to_token == vocab.idx_to_token


def test_preprocessed_shards_are_reused_and_a_changed_mask_rate_rebuilds(corpus, cache):
    opts = options(corpus)
    sources, (_, vocab, tokenizer, _) = start(opts)
    first = cp.preprocessed(opts, sources, vocab, tokenizer)
    assert first.valid is not None and len(first.train) > 0
    again = cp.preprocessed(opts, sources, vocab, tokenizer)
    assert again.folder == first.folder
    other = cp.preprocessed(options(corpus, mask_rate=0.3), sources, vocab, tokenizer)
    assert other.folder != first.folder
    assert other.train[0][3].shape[0] == round(32 * 0.3)
    assert len(list(cache.glob('corpus-*'))) == 2


def test_a_pretrained_folder_keeps_its_vocabulary_and_takes_added_tokens(corpus, tmp_path):
    from gluonbert import BERTModel
    from gluonbert.data.wordpiece import vocab_from_bert_tokens
    from gluonbert.pretrained import save_hf_pretrained
    vocab = vocab_from_bert_tokens(TOKENS)
    bert = BERTModel(len(vocab), 16, 32, 2, 1, 0.0, max_len=32, tie_mlm_decoder=True,
                     embedding_layer_norm=True, activation='gelu')
    bert.initialize(mx.init.Normal(0.02))
    save_hf_pretrained(bert, vocab, str(tmp_path / 'hf'))
    (tmp_path / 'add.txt').write_text('River\nbridge\ncat\n', encoding='utf-8')
    opts = options(corpus, pretrained=str(tmp_path / 'hf'), add_tokens=str(tmp_path / 'add.txt'))
    _, (grown, grown_vocab, tokenizer, notes) = start(opts)
    assert grown_vocab.idx_to_token[len(vocab):] == ['river', 'bridge']
    assert grown.config['vocab_size'] == len(vocab) + 2
    assert tokenizer('The river.') == ['the', 'river', '.']
    assert 'continuing hf folder' in notes[0] and '2 tokens added' in notes[1]


@pytest.mark.parametrize('overrides, message', [
    (dict(add_tokens='x.txt'), '--add-tokens needs --pretrained'),
    (dict(pretrained='p', learn_vocab=100), '--learn-vocab with --pretrained'),
    (dict(corpus=[]), '--corpus: no corpus given'),
])
def test_conflicting_or_missing_options_are_named(corpus, overrides, message):
    with pytest.raises(ValueError, match=message):
        start(options(corpus, **overrides))


def worker_batches(corpus, batch_size, num_workers=2):
    opts = options(corpus, shard_size=10)
    sources, (_, vocab, tokenizer, _) = start(opts)
    folder = cp.preprocessed(opts, sources, vocab, tokenizer).folder
    return [cp.ShardBatches(ShardedDataset(folder, rank=rank, num_workers=num_workers),
                            batch_size, seed=0) for rank in range(num_workers)]


def test_each_worker_draws_its_share_of_every_global_batch_from_its_own_shards(corpus):
    workers = worker_batches(corpus, 7)
    examples = [len(batches.dataset) for batches in workers]
    assert examples == workers[0].dataset.examples_per_worker()
    # As many steps on each worker: the batches the smaller share fills
    assert len(workers[0]) == len(workers[1]) == min(examples[0] // 4, examples[1] // 3) > 1
    for rank, batches in enumerate(workers):
        assert batches.num_workers == 2
        drawn = list(batches.epoch(1))
        assert len(drawn) == len(batches) and {len(b[0]) for b in drawn} == {4 - rank}
        order = batches.order(1)
        own = batches.dataset[order[:len(drawn) * (4 - rank)]]
        for column, array in enumerate(own):
            np.testing.assert_array_equal(np.concatenate([b[column] for b in drawn]), array)


def test_a_global_batch_smaller_than_the_workers_is_refused(corpus):
    with pytest.raises(ValueError, match='--batch-size 1 with 2 workers'):
        worker_batches(corpus, 1)


def test_the_engine_refuses_shares_of_another_number_of_workers(corpus):
    from test_parallel_step import pretraining_engine, sgd_trainer, tiny_bert
    net = tiny_bert([mx.cpu()])
    engine = pretraining_engine(net, [mx.cpu()], sgd_trainer(net, 'device'))
    with pytest.raises(ValueError, match='shares of 2 workers, the KVStore has 1'):
        engine.fit(worker_batches(corpus, 7)[0], num_updates=1)
