"""A tiny d2l-style BERTClassifier and random batches, shared by the trainer tests."""
import mxnet as mx
import numpy as np
from mxnet import autograd, gluon, init

from gluonbert import BERTClassifier, BERTModel

VOCAB, MAX_LEN, HIDDEN = 40, 10, 16


def tiny_classifier(seed=0, *, dropout=0.0, num_blks=2, contexts=None, hybridize=True,
                    **bert_options):
    """``(classifier, bert)``: the classifier shares ``bert.encoder`` and ``bert.hidden``."""
    mx.random.seed(seed)
    bert = BERTModel(VOCAB, HIDDEN, 32, 2, num_blks, dropout, max_len=MAX_LEN, **bert_options)
    bert.initialize(init.Xavier(), ctx=contexts)
    net = BERTClassifier(bert)
    net.output.initialize(init.Xavier(), ctx=contexts)
    if hybridize:
        net.hybridize()
    return net, bert


def random_batch(rng, batch_size):
    """``(tokens, segments, valid_lens, labels)`` of ``batch_size`` random NLI-like examples."""
    tokens = rng.randint(1, VOCAB, (batch_size, MAX_LEN))
    segments = (np.arange(MAX_LEN) >= MAX_LEN // 2).astype('float32') * np.ones((batch_size, 1))
    valid_lens = rng.randint(MAX_LEN // 2, MAX_LEN + 1, batch_size)
    labels = rng.randint(0, 3, batch_size)
    return tuple(mx.nd.array(a) for a in (tokens, segments, valid_lens, labels))


_loss = gluon.loss.SoftmaxCELoss()


def summed_loss(net, batch):
    """The summed cross-entropy of ``batch``, recorded for backward."""
    tokens, segments, valid_lens, labels = batch
    with autograd.record():
        return _loss(net((tokens, segments, valid_lens)), labels).sum()


def values(named):
    """NumPy copies of every parameter (first device), by name."""
    return {name: p.list_data()[0].asnumpy().copy() for name, p in named.items()}
