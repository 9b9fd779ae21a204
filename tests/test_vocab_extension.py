"""Vocabulary extension for continued pretraining: tokens pass the model's normaliser, the
embedding and the (tied or untied) MLM decoder grow together with mean-initialised rows,
everything else is kept, and the result saves as gluonbert and HF folders that load back."""
import mxnet as mx
import numpy as np
import pytest
from mxnet import init

from gluonbert import BERTModel
from gluonbert.data.wordpiece import WordPieceTokenizer, vocab_from_bert_tokens
from gluonbert.pretrained import from_pretrained, save_hf_pretrained
from gluonbert.pretrained.folders import load_pretrained_folder
from gluonbert.pretrained.vocab_extension import (extend_vocab, normalise_tokens,
                                                  read_added_tokens)
from gluonbert.pretrained.saved import save_pretrained

TOKENS = ['[PAD]', '[UNK]', '[CLS]', '[SEP]', '[MASK]', 'the', 'cat', 'sat', 'on', 'mat',
          '##s', '##ing', '.', 'a']


@pytest.fixture(params=[False, True], ids=['untied', 'tied'])
def model(request):
    vocab = vocab_from_bert_tokens(TOKENS)
    mx.random.seed(0)
    bert = BERTModel(len(vocab), 16, 32, 2, 1, 0.0, max_len=16, activation='gelu',
                     embedding_layer_norm=True, tie_mlm_decoder=request.param)
    bert.initialize(init.Normal(0.5))
    return bert, vocab, WordPieceTokenizer(vocab)


def params(bert):
    return {name: p.data().asnumpy() for name, p in bert._collect_params_with_prefix().items()}


def outputs(bert, ids):
    tokens = mx.nd.array([ids])
    _, mlm, nsp = bert(tokens, mx.nd.zeros_like(tokens), mx.nd.array([len(ids)]),
                       mx.nd.array([[1, 2]]))
    return mlm.asnumpy(), nsp.asnumpy()


def test_new_tokens_are_normalised_deduplicated_and_known_ones_skipped(model):
    bert, vocab, tokenizer = model
    new_bert, grown, report = extend_vocab(bert, vocab, ['Quokka', 'cat', 'QUOKKA', 'Zébra'],
                                           tokenizer)
    assert grown.idx_to_token == vocab.idx_to_token + ['quokka', 'zebra']
    assert (report.added, report.present, report.first_index) == (['quokka', 'zebra'],
                                                                  ['cat'], 14)
    assert tokenizer.__class__(grown)('The Quokka sat.') == ['the', 'quokka', 'sat', '.']
    assert len(vocab) == 14  # the old vocabulary is untouched


def test_embedding_and_decoder_grow_with_mean_rows_and_the_rest_is_kept(model):
    bert, vocab, tokenizer = model
    before = params(bert)
    new_bert, grown, report = extend_vocab(bert, vocab, ['quokka', 'zebra', 'wombat'],
                                           tokenizer)
    after = params(new_bert)
    assert set(after) == set(before)
    # Tied, the decoder weight is the embedding under a second name
    grown_names = {'encoder.token_embedding.weight', 'mlm.mlp.2.weight', 'mlm.mlp.2.bias'}
    assert set(report.new_weights) == grown_names
    for name, old in before.items():
        new = after[name]
        if name in grown_names:
            assert new.shape[0] == 17
            np.testing.assert_array_equal(new[:14], old)
            np.testing.assert_allclose(new[14:], np.repeat(old.mean(0, keepdims=True), 3, 0),
                                       rtol=1e-6)
        else:
            np.testing.assert_array_equal(new, old, err_msg=name)
    if bert.config['tie_mlm_decoder']:
        assert new_bert.mlm.mlp[2].weight is new_bert.encoder.token_embedding.weight
    # The old tokens' predictions are unchanged; the new ones get the mean logit's row
    ids = [2, 5, 6, 7, 3]
    (old_mlm, old_nsp), (new_mlm, new_nsp) = outputs(bert, ids), outputs(new_bert, ids)
    np.testing.assert_allclose(new_mlm[..., :14], old_mlm, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(new_nsp, old_nsp, rtol=1e-5, atol=1e-6)
    assert "kept" in str(report) and '14..16' in str(report)


def test_the_grown_model_saves_as_gluonbert_and_hf_folders_that_load_back(model, tmp_path):
    bert, vocab, tokenizer = model
    new_bert, grown, _ = extend_vocab(bert, vocab, ['quokka'], tokenizer)
    save_pretrained(new_bert, grown, str(tmp_path / 'gb'), config=new_bert.config)
    save_hf_pretrained(new_bert, grown, str(tmp_path / 'hf'), tokenizer=tokenizer)
    expected = params(new_bert)
    for folder, kind in (('gb', 'gluonbert'), ('hf', 'hf')):
        loaded, loaded_vocab, loaded_tokenizer, found = load_pretrained_folder(
            str(tmp_path / folder))
        assert found == kind and loaded_vocab.idx_to_token == grown.idx_to_token
        for name, value in params(loaded).items():
            np.testing.assert_array_equal(value, expected[name], err_msg=f'{folder} {name}')
        assert loaded_tokenizer('quokkas') == ['quokka', '##s']
    hf_bert, _ = from_pretrained(str(tmp_path / 'hf'))
    assert hf_bert.config['vocab_size'] == 15


def test_a_token_the_tokenizer_would_split_is_refused(model):
    _, _, tokenizer = model
    with pytest.raises(ValueError, match=r"added token 'covid-19' is split by the tokenizer "
                                         r"into \['covid', '-', '19'\]"):
        normalise_tokens(['covid-19'], tokenizer)


def test_added_tokens_file_is_one_token_per_line(tmp_path):
    path = tmp_path / 'add.txt'
    path.write_text('quokka\n\n  wombat \n', encoding='utf-8')
    assert read_added_tokens(str(path)) == ['quokka', 'wombat']
    path.write_text('\n\n', encoding='utf-8')
    with pytest.raises(ValueError, match='holds no token'):
        read_added_tokens(str(path))
