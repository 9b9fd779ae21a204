"""gluonbert's blocks against d2l 1.0.3's own (imported, not copied): names, shapes, numbers."""
import numpy as onp
import pytest
import mxnet as mx
from mxnet import autograd, init, np, npx

import d2l.mxnet as d2l
import gluonbert

CONFIG = dict(vocab_size=60, num_hiddens=16, ffn_num_hiddens=24, num_heads=2, num_blks=2,
              dropout=0.1, max_len=20)
ARGS = [CONFIG[k] for k in ('vocab_size', 'num_hiddens', 'ffn_num_hiddens', 'num_heads',
                            'num_blks', 'dropout')]


def structure(net):
    return {k: v.shape for k, v in net._collect_params_with_prefix().items()}


def random_batch(batch_size=3, seq_len=11, num_preds=4, seed=0):
    rng = onp.random.RandomState(seed)
    tokens = rng.randint(0, CONFIG['vocab_size'], (batch_size, seq_len))
    segments = (onp.arange(seq_len)[None] >= seq_len // 2).repeat(batch_size, 0)
    valid_lens = rng.randint(2, seq_len + 1, (batch_size,))
    valid_lens[0] = seq_len
    pred_positions = rng.randint(0, seq_len, (batch_size, num_preds))
    return (np.array(tokens, dtype='int32'), np.array(segments, dtype='int32'),
            np.array(valid_lens, dtype='float32'), np.array(pred_positions, dtype='int32'))


@pytest.fixture
def d2l_and_gluonbert(np_mode, tmp_path):
    """A d2l BERTModel and a gluonbert one holding the same (d2l-initialized) parameters."""
    ref = d2l.BERTModel(*ARGS, max_len=CONFIG['max_len'])
    ref.initialize(init.Xavier())
    ref(*random_batch())  # d2l's parameters are deferred until the first call
    path = str(tmp_path / 'd2l.params')
    ref.save_parameters(path)
    net = gluonbert.BERTModel(*ARGS, max_len=CONFIG['max_len'])
    net.load_parameters(path)
    return ref, net


def test_parameter_names_and_shapes_equal_d2l(d2l_and_gluonbert):
    ref, net = d2l_and_gluonbert
    assert structure(net) == structure(ref)


def test_outputs_equal_d2l_on_shared_parameters(d2l_and_gluonbert):
    ref, net = d2l_and_gluonbert
    batch = random_batch()
    for ours, theirs in zip(net(*batch), ref(*batch)):
        assert isinstance(ours, np.ndarray)
        onp.testing.assert_allclose(ours.asnumpy(), theirs.asnumpy(), atol=1e-5, rtol=1e-5)


def test_hybridized_outputs_equal_d2l(d2l_and_gluonbert):
    ref, net = d2l_and_gluonbert
    net.hybridize(static_alloc=True, static_shape=True)
    for seed in (0, 1):  # the second call runs the cached graph
        batch = random_batch(seed=seed)
        for ours, theirs in zip(net(*batch), ref(*batch)):
            onp.testing.assert_allclose(ours.asnumpy(), theirs.asnumpy(), atol=1e-5, rtol=1e-5)


def test_gradients_equal_d2l(d2l_and_gluonbert):
    ref, net = d2l_and_gluonbert
    batch = random_batch()
    grads = []
    for model in (ref, net):
        with autograd.record(train_mode=False):  # dropout off
            _, mlm, nsp = model(*batch)
            loss = (mlm ** 2).mean() + (nsp ** 2).mean()
        loss.backward()
        grads.append({k: p.grad().asnumpy() for k, p in model._collect_params_with_prefix().items()})
    for name, grad in grads[0].items():
        onp.testing.assert_allclose(grads[1][name], grad, atol=1e-5, rtol=1e-4, err_msg=name)


def test_d2l_loads_a_gluonbert_file(np_mode, tmp_path):
    net = gluonbert.BERTModel(*ARGS, max_len=CONFIG['max_len'])
    net.initialize(init.Xavier())
    path = str(tmp_path / 'ours.params')
    net.save_parameters(path)
    ref = d2l.BERTModel(*ARGS, max_len=CONFIG['max_len'])
    ref.load_parameters(path)
    batch = random_batch()
    onp.testing.assert_allclose(ref(*batch)[0].asnumpy(), net(*batch)[0].asnumpy(), atol=1e-5)


def test_a_file_saved_under_set_np_loads_without_it(d2l_and_gluonbert, tmp_path):
    ref, _ = d2l_and_gluonbert
    path = str(tmp_path / 'np_mode.params')
    ref.save_parameters(path)
    expected = ref(*random_batch())[0].asnumpy()
    npx.reset_np()
    net = gluonbert.BERTModel(*ARGS, max_len=CONFIG['max_len'])
    net.load_parameters(path)
    legacy_batch = [a.as_nd_ndarray() for a in random_batch()]
    encoded = net(*legacy_batch)[0]
    assert type(encoded) is mx.nd.NDArray
    onp.testing.assert_allclose(encoded.asnumpy(), expected, atol=1e-5)


def test_works_without_set_np_and_hybridized_matches_imperative():
    net = gluonbert.BERTModel(*ARGS, max_len=CONFIG['max_len'])
    net.initialize(init.Xavier())
    batch = [a.as_nd_ndarray() for a in random_batch()]
    eager = [o.asnumpy() for o in net(*batch)]
    net.hybridize(static_alloc=True, static_shape=True)
    for _ in range(2):
        for h, e in zip(net(*batch), eager):
            onp.testing.assert_allclose(h.asnumpy(), e, atol=1e-6)


def test_without_pred_positions_mlm_output_is_none(np_mode):
    net = gluonbert.BERTModel(*ARGS, max_len=CONFIG['max_len'])
    net.initialize(init.Xavier())
    tokens, segments, valid_lens, _ = random_batch()
    for hybridize in (False, True):
        net.hybridize(hybridize)
        encoded, mlm, nsp = net(tokens, segments, valid_lens)
        assert mlm is None and encoded.shape == (3, 11, 16) and nsp.shape == (3, 2)


def test_hybridized_model_serves_calls_with_and_without_the_mlm_head(np_mode):
    net = gluonbert.BERTModel(*ARGS, max_len=CONFIG['max_len'])
    net.initialize(init.Xavier())
    net.hybridize(static_alloc=True, static_shape=True)
    tokens, segments, valid_lens, pred_positions = random_batch()
    assert net(tokens, segments, valid_lens, pred_positions)[1].shape == (3, 4, 60)
    assert net(tokens, segments, valid_lens)[1] is None
    assert net(tokens, segments, None, pred_positions)[1].shape == (3, 4, 60)


def test_no_valid_lens_attends_to_every_position(np_mode):
    encoder = gluonbert.BERTEncoder(*ARGS, max_len=CONFIG['max_len'])
    encoder.initialize(init.Xavier())
    tokens, segments, _, _ = random_batch()
    full = np.full((3,), 11, dtype='float32')
    onp.testing.assert_allclose(encoder(tokens, segments, None).asnumpy(),
                                encoder(tokens, segments, full).asnumpy(), atol=1e-6)


def test_padding_beyond_valid_len_does_not_change_valid_positions(np_mode):
    encoder = gluonbert.BERTEncoder(*ARGS, max_len=CONFIG['max_len'])
    encoder.initialize(init.Xavier())
    tokens, segments, _, _ = random_batch()
    lens = np.array([5, 5, 5], dtype='float32')
    other = tokens.copy()
    other[:, 5:] = 0
    onp.testing.assert_allclose(encoder(tokens, segments, lens)[:, :5].asnumpy(),
                                encoder(other, segments, lens)[:, :5].asnumpy(), atol=1e-6)


def test_classifier_equals_the_chapter_classifier(d2l_and_gluonbert):
    ref, net = d2l_and_gluonbert

    class ChapterBERTClassifier(mx.gluon.nn.Block):  # d2l's NLI chapter; not in d2l.mxnet
        def __init__(self, bert):
            super().__init__()
            self.encoder, self.hidden = bert.encoder, bert.hidden
            self.output = mx.gluon.nn.Dense(3)

        def forward(self, inputs):
            tokens_X, segments_X, valid_lens_x = inputs
            encoded_X = self.encoder(tokens_X, segments_X, valid_lens_x)
            return self.output(self.hidden(encoded_X[:, 0, :]))

    theirs = ChapterBERTClassifier(ref)
    ours = gluonbert.BERTClassifier(net)
    theirs.output.initialize(init.Xavier())
    ours.output.initialize()
    tokens, segments, valid_lens, _ = random_batch()
    expected = theirs((tokens, segments, valid_lens))
    ours.output.weight.set_data(theirs.output.weight.data())
    ours.output.bias.set_data(theirs.output.bias.data())
    assert structure(ours) == structure(theirs)
    ours.hybridize(static_alloc=True, static_shape=True)
    onp.testing.assert_allclose(ours((tokens, segments, valid_lens)).asnumpy(),
                                expected.asnumpy(), atol=1e-5)
