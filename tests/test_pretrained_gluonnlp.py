"""GluonNLP 0.10 BERT .params files: gluonbert computes what GluonNLP's own BERTModel computes
with the same weights, and writes files that GluonNLP loads back."""
import pickle

import gluonnlp
import mxnet as mx
import numpy as np
import pytest

from gluonbert.data.wordpiece import vocab_from_bert_tokens
from gluonbert.pretrained import load_gluonnlp_params, save_gluonnlp_params

WORDS = [f'w{i}' for i in range(35)]
HEADS = 4


def gluonnlp_bert(**heads):
    """A small GluonNLP model-zoo BERT (bert_12_768_12's code, smaller sizes), random weights,
    LayerNorms and biases included, and its BERTVocab."""
    vocab = gluonnlp.vocab.BERTVocab(gluonnlp.data.count_tokens(WORDS))
    model, _ = gluonnlp.model.get_model(
        'bert_12_768_12', dataset_name=None, vocab=vocab, pretrained=False,
        hparam_allow_override=True, num_layers=2, units=16, hidden_size=32, num_heads=HEADS,
        max_length=24, embed_size=16, dropout=0.0, **heads)
    model.initialize(mx.init.Normal(0.3))
    model(*inputs()[:3], inputs()[3] if heads.get('use_decoder', True) else None)
    rng = np.random.default_rng(0)
    for param in model.collect_params().values():
        param.set_data(param.data() + mx.nd.array(0.1 * rng.standard_normal(param.shape)))
    return model, vocab


def inputs():
    rng = np.random.default_rng(1)
    ids = mx.nd.array(rng.integers(0, 40, size=(3, 9)))
    segments = mx.nd.array(np.arange(9)[None, :] >= np.array([[3], [5], [2]]))
    valid_lens = mx.nd.array([9, 6, 4])
    pred_positions = mx.nd.array([[1, 2, 8], [0, 3, 5], [1, 2, 3]])
    return ids, segments, valid_lens, pred_positions


def gluonnlp_outputs(model):
    sequence, pooled, nsp, mlm = model(*inputs())
    return sequence.asnumpy(), pooled.asnumpy(), nsp.asnumpy(), mlm.asnumpy()


def gluonbert_outputs(bert):
    encoded, mlm, nsp = bert(*inputs())
    # GluonNLP zeroes the padded positions of its sequence output; gluonbert leaves them be
    mask = (np.arange(9)[None, :] < inputs()[2].asnumpy()[:, None])[..., None]
    return (encoded.asnumpy() * mask, bert.hidden(encoded[:, 0, :]).asnumpy(), nsp.asnumpy(),
            mlm.asnumpy())


@pytest.fixture
def saved(tmp_path):
    model, vocab = gluonnlp_bert()
    model.save_parameters(str(tmp_path / 'bert.params'))
    with open(tmp_path / 'bert.vocab', 'w') as f:
        f.write(vocab.to_json())
    return model, str(tmp_path / 'bert.params'), str(tmp_path / 'bert.vocab')


def test_imported_model_computes_what_gluonnlp_bert_computes(saved):
    model, params, vocab_json = saved
    bert, _ = load_gluonnlp_params(params, vocab_json, num_heads=HEADS)
    for name, got, want in zip(('sequence', 'pooled', 'nsp', 'mlm'), gluonbert_outputs(bert),
                               gluonnlp_outputs(model)):
        np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-5, err_msg=name)


def test_architecture_is_read_off_the_tensor_shapes(saved):
    _, params, vocab_json = saved
    bert, _, report = load_gluonnlp_params(params, vocab_json, num_heads=HEADS,
                                           return_report=True)
    assert bert.config == dict(vocab_size=40, num_hiddens=16, ffn_num_hiddens=32,
                               num_heads=HEADS, num_blks=2, dropout=0.1, max_len=24,
                               activation='gelu', embedding_layer_norm=True,
                               layer_norm_eps=1e-12, tie_mlm_decoder=True)
    assert report.missing == [] and report.unexpected == []


def test_gluonnlp_vocab_keeps_indices_with_d2l_special_names(saved):
    _, params, vocab_json = saved
    _, vocab = load_gluonnlp_params(params, vocab_json, num_heads=HEADS)
    reference = gluonnlp.vocab.BERTVocab.from_json(open(vocab_json).read())
    assert vocab['<cls>'] == reference['[CLS]'] and vocab['<pad>'] == reference['[PAD]']
    assert vocab['w7'] == reference['w7'] and vocab.unk == reference['[UNK]']


def test_saved_params_load_into_gluonnlp_bert_unchanged(saved, tmp_path):
    model, params, vocab_json = saved
    bert, _ = load_gluonnlp_params(params, vocab_json, num_heads=HEADS)
    save_gluonnlp_params(bert, str(tmp_path / 'copy.params'))
    reloaded, _ = gluonnlp_bert()
    reloaded.load_parameters(str(tmp_path / 'copy.params'))
    for got, want in zip(gluonnlp_outputs(reloaded), gluonnlp_outputs(model)):
        assert np.array_equal(got, want)
    before, after = mx.nd.load(params), mx.nd.load(str(tmp_path / 'copy.params'))
    assert sorted(after) == sorted(before)
    assert all(np.array_equal(after[k].asnumpy(), before[k].asnumpy()) for k in before)


def test_file_without_pooler_and_heads_loads_them_afresh(tmp_path):
    model, vocab = gluonnlp_bert(use_pooler=False, use_decoder=False, use_classifier=False)
    model.save_parameters(str(tmp_path / 'encoder.params'))
    with pytest.warns(UserWarning, match='initialized afresh'):
        _, _, report = load_gluonnlp_params(str(tmp_path / 'encoder.params'), vocab_of(vocab),
                                            num_heads=HEADS, return_report=True)
    assert report.missing == ['hidden.weight', 'hidden.bias', 'mlm.mlp.0.weight',
                              'mlm.mlp.0.bias', 'mlm.mlp.1.gamma', 'mlm.mlp.1.beta',
                              'mlm.mlp.2.bias', 'nsp.output.weight', 'nsp.output.bias']


def vocab_of(gluonnlp_vocab):
    return vocab_from_bert_tokens(gluonnlp_vocab.idx_to_token)


def test_vocab_of_other_size_than_the_embedding_is_refused(saved):
    _, params, _ = saved
    small = vocab_of(gluonnlp.vocab.BERTVocab(gluonnlp.data.count_tokens(WORDS[:-1])))
    with pytest.raises(ValueError, match="vocab has 39 tokens but 'word_embed.0.weight'"):
        load_gluonnlp_params(params, small, num_heads=HEADS)


def test_heads_that_do_not_divide_the_hidden_size_are_refused(saved):
    _, params, vocab_json = saved
    with pytest.raises(ValueError, match='num_heads=3 does not divide the 16 hidden units'):
        load_gluonnlp_params(params, vocab_json, num_heads=3)


class _Trap:
    """Unpickling this creates the file ``path``: proof that something unpickled it."""

    def __init__(self, path):
        self.path = path

    def __reduce__(self):
        return (open, (self.path, 'w'))


def test_pickle_file_is_refused_and_never_unpickled(saved, tmp_path):
    _, _, vocab_json = saved
    marker = tmp_path / 'unpickled'
    with open(tmp_path / 'evil.params', 'wb') as f:
        pickle.dump(_Trap(str(marker)), f)
    with pytest.raises(ValueError, match='is a pickle; expected an MXNet .params file'):
        load_gluonnlp_params(str(tmp_path / 'evil.params'), vocab_json, num_heads=HEADS)
    assert not marker.exists()


def test_import_and_export_work_in_numpy_mode(saved, tmp_path, np_mode):
    _, params, vocab_json = saved
    bert, _ = load_gluonnlp_params(params, vocab_json, num_heads=HEADS)
    save_gluonnlp_params(bert, str(tmp_path / 'copy.params'))
    mx.npx.reset_np()
    before, after = mx.nd.load(params), mx.nd.load(str(tmp_path / 'copy.params'))
    assert all(np.array_equal(after[k].asnumpy(), before[k].asnumpy()) for k in before)


@pytest.mark.parametrize('content, message', [
    ('["a", "b"]', 'holds a JSON list; expected a GluonNLP vocab JSON'),
    ('{"a": 1}', 'has no "idx_to_token"'),
    ('{"idx', r'is not valid JSON \(.*\); expected a GluonNLP vocab JSON')])
def test_a_vocab_json_that_is_not_gluonnlps_is_one_error_naming_it(saved, tmp_path, content,
                                                                  message):
    _, params, _ = saved
    vocab = tmp_path / 'list.vocab'
    vocab.write_text(content)
    with pytest.raises(ValueError, match=f'^{vocab} {message}'):
        load_gluonnlp_params(params, str(vocab), num_heads=2)
