"""Prediction batches rows by length and cuts each batch to its longest row: the outputs are
those of the full width, in the rows' order."""
import mxnet as mx
import numpy as np
from mxnet import init

from gluonbert import BERTClassifier, BERTModel
from gluonbert.model.heads import BERTForQuestionAnswering
from gluonbert.tasks.base import Features
from gluonbert.tasks.inference import predict_outputs

WIDTH = 64


def _model(head):
    mx.random.seed(0)
    bert = BERTModel(40, 16, 32, 2, 2, 0.0, max_len=WIDTH)
    bert.initialize(init.Xavier())
    net = head(bert)
    net.output.initialize(init.Xavier())
    net.hybridize()
    return net


def _features(rows=23):
    rng = np.random.RandomState(0)
    valid_lens = rng.randint(3, WIDTH + 1, rows).astype('float32')
    valid_lens[5] = 7  # the shortest and the longest are not first
    tokens = rng.randint(5, 40, (rows, WIDTH)) * (np.arange(WIDTH) < valid_lens[:, None])
    segments = (np.arange(WIDTH) >= valid_lens[:, None] // 2).astype('int32')
    return Features(tokens.astype('int32'), segments, valid_lens)


def _full_width(net, features):
    return net(tuple(mx.nd.array(a) for a in features.inputs))


def test_row_outputs_match_full_width_batches_in_the_rows_order():
    net, features = _model(BERTClassifier), _features()
    got = predict_outputs(net, features, [mx.cpu()], batch_size=4)
    np.testing.assert_allclose(got, _full_width(net, features).asnumpy(), atol=1e-5)


def test_token_outputs_are_padded_back_to_the_full_width():
    net, features = _model(BERTForQuestionAnswering), _features()
    start, end = predict_outputs(net, features, [mx.cpu()], batch_size=4, token_pad=-1e4)
    for got, want in zip((start, end), _full_width(net, features)):
        want = want.asnumpy()
        assert got.shape == want.shape == (len(features), WIDTH)
        inside = np.arange(WIDTH) < features.valid_lens[:, None]
        np.testing.assert_allclose(got[inside], want[inside], atol=1e-4)
        assert (got[~inside] <= -1e4 + 50).all()
