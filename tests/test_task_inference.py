"""Prediction batches rows by length and cuts each batch to its longest row: the outputs are
those of the full width, in the rows' order."""
import mxnet as mx
import numpy as np
from mxnet import init

from gluonbert import BERTClassifier, BERTModel
from gluonbert.model.heads import BERTForQuestionAnswering
from gluonbert.tasks.base import Features
from gluonbert.tasks.inference import in_row_order, length_batches, predict_outputs

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


def test_length_batches_cover_each_row_once_longest_first_cut_to_their_longest():
    features = _features()
    plan = list(length_batches(features.inputs, batch_size=4))
    rows = np.concatenate([batch_rows for batch_rows, _ in plan])
    assert sorted(rows) == list(range(len(features)))
    lengths = features.valid_lens[rows]
    assert (np.diff(lengths) <= 0).all()
    for batch_rows, (tokens, segments, valid_lens) in plan:
        longest = int(features.valid_lens[batch_rows].max())
        assert tokens.shape[1] == segments.shape[1] == longest
        np.testing.assert_array_equal(tokens, features.tokens[batch_rows, :tokens.shape[1]])
        np.testing.assert_array_equal(valid_lens, features.valid_lens[batch_rows])


def test_multiple_choice_rows_are_ordered_and_cut_by_their_longest_choice():
    valid_lens = np.array([[3, 40], [20, 20], [5, 9]])
    tokens = np.zeros((3, 2, WIDTH), 'int32')
    plan = list(length_batches((tokens, tokens, valid_lens), batch_size=2))
    assert [list(rows) for rows, _ in plan] == [[0, 1], [2]]
    assert [batch[0].shape for _, batch in plan] == [(2, 2, 40), (1, 2, 9)]


def test_in_row_order_restores_the_rows_order_and_pads_token_outputs_back():
    rows = [np.array([2, 0]), np.array([1])]
    pieces = [np.array([[20., 21.], [0., 1.]]), np.array([[10.]])]
    got = in_row_order(pieces, rows, width=3, token_pad=-1.)
    np.testing.assert_array_equal(got, [[0., 1., -1.], [10., -1., -1.], [20., 21., -1.]])
    per_row = in_row_order([np.array([2., 0.]), np.array([1.])], rows, width=3)
    np.testing.assert_array_equal(per_row, [0., 1., 2.])
