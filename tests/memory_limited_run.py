"""Preprocess a corpus larger than the memory allowed, then pretrain a few steps on it.

``python memory_limited_run.py CORPUS OUT_FOLDER HEADROOM_MIB``: warms up (imports, a small
preprocessing, a training step), then limits the address space (``RLIMIT_AS``) to what the
process uses plus ``HEADROOM_MIB``, checks that the corpus cannot be read into memory whole,
preprocesses it into shards and trains 3 steps on them, read lazily. Prints one JSON line.
Used by test_data_memory_limit.py.
"""
import json
import os
import resource
import sys

import mxnet as mx
import numpy as np
from mxnet import gluon, init

from gluonbert import BERTModel
from gluonbert.data.corpus import CorpusSource
from gluonbert.data.corpus_vocab import word_vocab, WordTokenizer
from gluonbert.data.preprocess import PreprocessSettings, preprocess
from gluonbert.data.shards import ShardedDataset
from gluonbert.train.pretrain import train_bert

SETTINGS = PreprocessSettings(max_len=32, chunk_tokens=4000, shard_size=256)


class LazyBatches:
    """Batches of ``dataset`` in a seeded shard-local order, read only when iterated."""

    def __init__(self, dataset, batch_size):
        self.dataset, self.batch_size = dataset, batch_size

    def __iter__(self):
        order = np.random.default_rng(0).permutation(len(self.dataset))
        for begin in range(0, len(order) - self.batch_size + 1, self.batch_size):
            yield tuple(mx.nd.array(a) for a in self.dataset[order[begin:begin + self.batch_size]])


def address_space():
    with open('/proc/self/status') as f:
        fields = dict(line.split(':', 1) for line in f)
    return int(fields['VmSize'].split()[0]) * 1024, int(fields['VmPeak'].split()[0]) * 1024


def run(corpus, out, warm_corpus, headroom):
    source = CorpusSource(corpus)
    vocab = word_vocab([CorpusSource(warm_corpus)])
    tokenizer = WordTokenizer(vocab)
    # Warm-up: every code path once, so that the limit measures growth, not first use
    preprocess([CorpusSource(warm_corpus)], vocab, tokenizer, out + '.warm', SETTINGS,
               progress=False)
    net = BERTModel(len(vocab), 16, 32, 2, 1, 0.0, max_len=SETTINGS.max_len)
    net.initialize(init.Xavier())
    trainer = gluon.Trainer(net.collect_params(), 'adam', {'learning_rate': 1e-3})
    warm = ShardedDataset(out + '.warm')
    train_bert(LazyBatches(warm, 16), net, gluon.loss.SoftmaxCELoss(), len(vocab),
               [mx.cpu()], 2, trainer=trainer, quiet=True)
    baseline, _ = address_space()
    limit = baseline + headroom
    resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
    try:
        with open(corpus, 'rb') as f:
            f.read()
        whole_read = 'fits'
    except MemoryError:
        whole_read = 'MemoryError'
    meta = preprocess([source], vocab, tokenizer, out, SETTINGS, progress=False)
    dataset = ShardedDataset(out)
    result = train_bert(LazyBatches(dataset, 16), net, gluon.loss.SoftmaxCELoss(), len(vocab),
                        [mx.cpu()], 3, trainer=trainer, quiet=True)
    _, peak = address_space()
    print(json.dumps({'corpus_bytes': os.path.getsize(corpus), 'limit_headroom': headroom,
                      'growth': peak - baseline, 'whole_read': whole_read,
                      'examples': len(dataset), 'shards': len(meta['splits']['train']['shards']),
                      'losses': [h[1] for h in result['history']]}))


if __name__ == '__main__':
    run(sys.argv[1], sys.argv[2], sys.argv[3], int(float(sys.argv[4]) * 2 ** 20))
