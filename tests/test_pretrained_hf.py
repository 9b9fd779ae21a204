"""HF BERT folders: import checked against a NumPy re-implementation of HF BERT's forward,
export as the exact inverse, and clear errors for what gluonbert cannot load."""
import json
import math
import os
import pickle

import mxnet as mx
import numpy as np
import pytest
from mxnet import autograd, gluon
from safetensors.numpy import load_file, save_file

import gluonbert
from gluonbert.data.wordpiece import WordPieceTokenizer, vocab_from_bert_tokens
from gluonbert.pretrained import from_pretrained, load_tokenizer, save_hf_pretrained

SIZES = dict(vocab_size=40, hidden_size=16, intermediate_size=32, num_attention_heads=4,
             num_hidden_layers=2, max_position_embeddings=24)
WORDS = ['the', 'cat', 'sat', 'on', 'mat', 'dog', 'run', '##s', '##ing', '##ed', 'a', '.', ',']


def hf_config(**fields):
    return {'architectures': ['BertForPreTraining'], 'model_type': 'bert', **SIZES,
            'hidden_act': 'gelu', 'hidden_dropout_prob': 0.1, 'attention_probs_dropout_prob': 0.1,
            'type_vocab_size': 2, 'layer_norm_eps': 1e-12, 'initializer_range': 0.02,
            'pad_token_id': 0, 'position_embedding_type': 'absolute', **fields}


def vocab_lines(size):
    tokens = ['[PAD]', '[UNK]', '[CLS]', '[SEP]', '[MASK]'] + WORDS
    return tokens + [f'[unused{i}]' for i in range(size - len(tokens))]


def hf_tensors(config, seed=0):
    """Random weights in BertForPreTraining's layout and names (decoder weight tied, so
    stored once, as HF's save_pretrained does)."""
    rng = np.random.default_rng(seed)
    H, F, V = config['hidden_size'], config['intermediate_size'], config['vocab_size']
    t = {}

    def normal(name, *shape, mean=0.0):
        t[name] = (mean + 0.3 * rng.standard_normal(shape)).astype(np.float32)

    def linear(name, out, inp):
        normal(f'{name}.weight', out, inp)
        normal(f'{name}.bias', out)

    def layer_norm(name):
        normal(f'{name}.weight', H, mean=1.0)
        normal(f'{name}.bias', H)

    normal('bert.embeddings.word_embeddings.weight', V, H)
    normal('bert.embeddings.position_embeddings.weight', config['max_position_embeddings'], H)
    normal('bert.embeddings.token_type_embeddings.weight', 2, H)
    layer_norm('bert.embeddings.LayerNorm')
    for i in range(config['num_hidden_layers']):
        p = f'bert.encoder.layer.{i}.'
        for name in ('query', 'key', 'value'):
            linear(p + 'attention.self.' + name, H, H)
        linear(p + 'attention.output.dense', H, H)
        layer_norm(p + 'attention.output.LayerNorm')
        linear(p + 'intermediate.dense', F, H)
        linear(p + 'output.dense', H, F)
        layer_norm(p + 'output.LayerNorm')
    linear('bert.pooler.dense', H, H)
    linear('cls.predictions.transform.dense', H, H)
    layer_norm('cls.predictions.transform.LayerNorm')
    normal('cls.predictions.bias', V)
    linear('cls.seq_relationship', 2, H)
    return t


def write_folder(folder, config=None, tensors=None, vocab=None, weights_file='model.safetensors'):
    config = hf_config() if config is None else config
    tensors = hf_tensors(config) if tensors is None else tensors
    os.makedirs(folder, exist_ok=True)
    with open(os.path.join(folder, 'config.json'), 'w') as f:
        json.dump(config, f)
    with open(os.path.join(folder, 'vocab.txt'), 'w') as f:
        f.write('\n'.join(vocab or vocab_lines(config['vocab_size'])) + '\n')
    if weights_file:
        save_file(tensors, os.path.join(folder, weights_file), metadata={'format': 'pt'})
    return str(folder)


def reference_forward(t, config, ids, segments, valid_lens, pred_positions):
    """HF BertForPreTraining's forward in float64 NumPy: sequence output, pooled output, MLM
    and NSP logits; padding masked out of the attention's keys, as HF's attention_mask does."""
    t = {k: v.astype(np.float64) for k, v in t.items()}
    eps, heads = config['layer_norm_eps'], config['num_attention_heads']
    erf = np.vectorize(math.erf)
    act = {'gelu': lambda x: 0.5 * x * (1 + erf(x / math.sqrt(2))),
           'relu': lambda x: np.maximum(x, 0)}[config['hidden_act']]

    def linear(x, name):
        return x @ t[name + '.weight'].T + t[name + '.bias']

    def layer_norm(x, name):
        mean, var = x.mean(-1, keepdims=True), x.var(-1, keepdims=True)
        return (x - mean) / np.sqrt(var + eps) * t[name + '.weight'] + t[name + '.bias']

    B, L = ids.shape
    x = (t['bert.embeddings.word_embeddings.weight'][ids]
         + t['bert.embeddings.position_embeddings.weight'][np.arange(L)]
         + t['bert.embeddings.token_type_embeddings.weight'][segments])
    x = layer_norm(x, 'bert.embeddings.LayerNorm')
    key_is_padding = np.arange(L)[None, :] >= valid_lens[:, None]  # (B, L)
    for i in range(config['num_hidden_layers']):
        p = f'bert.encoder.layer.{i}.'
        q, k, v = (linear(x, p + 'attention.self.' + n).reshape(B, L, heads, -1)
                   .transpose(0, 2, 1, 3) for n in ('query', 'key', 'value'))
        scores = q @ k.transpose(0, 1, 3, 2) / math.sqrt(q.shape[-1])
        scores = np.where(key_is_padding[:, None, None, :], -1e9, scores)
        weights = np.exp(scores - scores.max(-1, keepdims=True))
        weights /= weights.sum(-1, keepdims=True)
        context = (weights @ v).transpose(0, 2, 1, 3).reshape(B, L, -1)
        x = layer_norm(linear(context, p + 'attention.output.dense') + x,
                       p + 'attention.output.LayerNorm')
        x = layer_norm(linear(act(linear(x, p + 'intermediate.dense')), p + 'output.dense') + x,
                       p + 'output.LayerNorm')
    pooled = np.tanh(linear(x[:, 0], 'bert.pooler.dense'))
    nsp = linear(pooled, 'cls.seq_relationship')
    masked = x[np.arange(B)[:, None], pred_positions]
    h = layer_norm(act(linear(masked, 'cls.predictions.transform.dense')),
                   'cls.predictions.transform.LayerNorm')
    mlm = h @ t['bert.embeddings.word_embeddings.weight'].T + t['cls.predictions.bias']
    return x, pooled, mlm, nsp


def batch(config, seed=1):
    rng = np.random.default_rng(seed)
    ids = rng.integers(0, config['vocab_size'], size=(3, 9))
    segments = (np.arange(9)[None, :] >= rng.integers(2, 7, size=(3, 1))).astype(np.int64)
    valid_lens = np.array([9, 6, 4])
    pred_positions = np.array([[1, 2, 8], [0, 3, 5], [1, 2, 3]])
    return ids, segments, valid_lens, pred_positions


def gluonbert_forward(bert, ids, segments, valid_lens, pred_positions):
    nd = [mx.nd.array(a, dtype='float32') for a in (ids, segments, valid_lens, pred_positions)]
    encoded, mlm, nsp = bert(*nd)
    pooled = bert.hidden(encoded[:, 0, :])
    return encoded.asnumpy(), pooled.asnumpy(), mlm.asnumpy(), nsp.asnumpy()


@pytest.mark.parametrize('hidden_act', ['gelu', 'relu'])
def test_from_pretrained_computes_what_hf_bert_computes(tmp_path, hidden_act):
    config = hf_config(hidden_act=hidden_act)
    tensors = hf_tensors(config)
    bert, _ = from_pretrained(write_folder(tmp_path, config, tensors))
    inputs = batch(config)
    expected = reference_forward(tensors, config, *inputs)
    for name, got, want in zip(('sequence', 'pooled', 'mlm', 'nsp'),
                               gluonbert_forward(bert, *inputs), expected):
        np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-5, err_msg=name)


def test_from_pretrained_maps_the_config_onto_gluonbert_options(tmp_path):
    bert, vocab = from_pretrained(write_folder(tmp_path, hf_config(layer_norm_eps=1e-7)))
    assert bert.config == dict(vocab_size=40, num_hiddens=16, ffn_num_hiddens=32, num_heads=4,
                               num_blks=2, dropout=0.1, max_len=24, activation='gelu',
                               embedding_layer_norm=True, layer_norm_eps=1e-7,
                               tie_mlm_decoder=True)
    assert len(vocab) == 40


def test_vocab_uses_d2l_special_tokens_at_bert_indices(tmp_path):
    _, vocab = from_pretrained(write_folder(tmp_path))
    assert [vocab['<pad>'], vocab['<unk>'], vocab['<cls>'], vocab['<sep>'], vocab['<mask>']] == [
        0, 1, 2, 3, 4]
    tokens, segments = gluonbert.get_tokens_and_segments(['the', 'cat'], ['sat'])
    assert vocab[tokens] == [2, 5, 6, 3, 7, 3]
    assert vocab['never-seen'] == 1


def test_dropout_argument_overrides_the_config(tmp_path):
    bert, _ = from_pretrained(write_folder(tmp_path), dropout=0.3)
    assert bert.config['dropout'] == 0.3


def test_parameters_go_to_every_given_device(tmp_path):
    bert, _ = from_pretrained(write_folder(tmp_path), devices=[mx.cpu(0), mx.cpu(1)])
    assert bert.encoder.pos_embedding.list_ctx() == [mx.cpu(0), mx.cpu(1)]


def test_the_decoder_weight_is_the_token_embedding(tmp_path):
    bert, _ = from_pretrained(write_folder(tmp_path))
    params = bert._collect_params_with_prefix()
    assert params['mlm.mlp.2.weight'] is params['encoder.token_embedding.weight']


def test_untied_config_loads_the_decoder_weight(tmp_path):
    config = hf_config(tie_word_embeddings=False)
    tensors = hf_tensors(config)
    tensors['cls.predictions.decoder.weight'] = np.full((40, 16), 0.5, np.float32)
    bert, _ = from_pretrained(write_folder(tmp_path, config, tensors))
    assert bert.config['tie_mlm_decoder'] is False
    assert (bert.mlm.mlp[2].weight.data().asnumpy() == 0.5).all()


def test_round_trip_hf_gluonbert_hf_is_bitwise_identical(tmp_path):
    source = write_folder(tmp_path / 'source')
    bert, vocab = from_pretrained(source)
    save_hf_pretrained(bert, vocab, str(tmp_path / 'copy'))
    before = load_file(os.path.join(source, 'model.safetensors'))
    after = load_file(str(tmp_path / 'copy' / 'model.safetensors'))
    assert sorted(after) == sorted(before)
    for name in before:
        assert after[name].dtype == before[name].dtype, name
        assert after[name].tobytes() == before[name].tobytes(), name
    with open(os.path.join(source, 'vocab.txt'), 'rb') as a, \
            open(tmp_path / 'copy' / 'vocab.txt', 'rb') as b:
        assert a.read() == b.read()


def test_saved_config_describes_the_model(tmp_path):
    bert, vocab = from_pretrained(write_folder(tmp_path / 'source'))
    save_hf_pretrained(bert, vocab, str(tmp_path / 'copy'))
    with open(tmp_path / 'copy' / 'config.json') as f:
        saved = json.load(f)
    assert {k: saved[k] for k in hf_config()} == hf_config()


def test_float16_checkpoint_round_trips_in_float16(tmp_path):
    tensors = {k: v.astype(np.float16) for k, v in hf_tensors(hf_config()).items()}
    bert, vocab = from_pretrained(write_folder(tmp_path / 'source', tensors=tensors))
    save_hf_pretrained(bert, vocab, str(tmp_path / 'copy'), dtype='float16')
    after = load_file(str(tmp_path / 'copy' / 'model.safetensors'))
    assert all(after[k].tobytes() == tensors[k].tobytes() for k in tensors)


def test_fine_tuned_classifier_saves_and_reloads_its_encoder(tmp_path):
    bert, vocab = from_pretrained(write_folder(tmp_path / 'source'))
    net = gluonbert.BERTClassifier(bert, num_classes=3)
    net.output.initialize()
    trainer = gluon.Trainer(net.collect_params(), 'sgd', {'learning_rate': 0.5})
    ids, segments, valid_lens, _ = (mx.nd.array(a) for a in batch(hf_config()))
    with autograd.record():
        loss = gluon.loss.SoftmaxCELoss()(net((ids, segments, valid_lens)), mx.nd.array([0, 1, 2]))
    loss.backward()
    trainer.step(3)
    save_hf_pretrained(bert, vocab, str(tmp_path / 'tuned'))
    reloaded, _ = from_pretrained(str(tmp_path / 'tuned'))
    tuned = bert.encoder.blks[0].attention.W_q.weight.data().asnumpy()
    source = load_file(os.path.join(tmp_path, 'source', 'model.safetensors'))
    assert not np.array_equal(tuned, source['bert.encoder.layer.0.attention.self.query.weight'])
    assert np.array_equal(reloaded.encoder.blks[0].attention.W_q.weight.data().asnumpy(), tuned)


def test_from_pretrained_works_in_numpy_mode(tmp_path, np_mode):
    config = hf_config()
    tensors = hf_tensors(config)
    bert, _ = from_pretrained(write_folder(tmp_path, config, tensors))
    ids, segments, valid_lens, pred_positions = batch(config)
    encoded, _, _ = bert(mx.np.array(ids), mx.np.array(segments), mx.np.array(valid_lens),
                         mx.np.array(pred_positions))
    assert isinstance(encoded, mx.np.ndarray)
    np.testing.assert_allclose(encoded.asnumpy(), reference_forward(
        tensors, config, ids, segments, valid_lens, pred_positions)[0], rtol=1e-5, atol=1e-5)


def test_bert_model_save_without_heads_loads_and_reports_them_missing(tmp_path):
    # BertModel.save_pretrained: no 'bert.' prefix, no pooler here, no 'cls.' heads
    tensors = {k[len('bert.'):]: v for k, v in hf_tensors(hf_config()).items()
               if k.startswith('bert.') and 'pooler' not in k}
    with pytest.warns(UserWarning, match='initialized afresh'):
        bert, _, report = from_pretrained(write_folder(tmp_path, tensors=tensors),
                                          return_report=True)
    assert report.missing == ['hidden.weight', 'hidden.bias', 'mlm.mlp.0.weight',
                              'mlm.mlp.0.bias', 'mlm.mlp.1.gamma', 'mlm.mlp.1.beta',
                              'mlm.mlp.2.bias', 'nsp.output.weight', 'nsp.output.bias']
    assert report.unexpected == []
    assert np.array_equal(bert.encoder.token_embedding.weight.data().asnumpy(),
                          tensors['embeddings.word_embeddings.weight'])


def test_unused_tensors_are_reported_by_their_checkpoint_name(tmp_path):
    tensors = hf_tensors(hf_config())
    tensors['classifier.weight'] = np.zeros((3, 16), np.float32)
    with pytest.warns(UserWarning, match='classifier.weight'):
        _, _, report = from_pretrained(write_folder(tmp_path, tensors=tensors),
                                       return_report=True)
    assert report.unexpected == ['classifier.weight'] and report.missing == []


def test_legacy_names_position_ids_and_decoder_bias_alias_load(tmp_path):
    tensors = hf_tensors(hf_config())
    renamed = {k.replace('LayerNorm.weight', 'LayerNorm.gamma').replace(
        'LayerNorm.bias', 'LayerNorm.beta'): v for k, v in tensors.items()}
    renamed['cls.predictions.decoder.bias'] = renamed['cls.predictions.bias']
    renamed['bert.embeddings.position_ids'] = np.arange(24)[None, :]
    bert, _, report = from_pretrained(write_folder(tmp_path, tensors=renamed), return_report=True)
    assert report.missing == [] and report.unexpected == []
    assert np.array_equal(bert.encoder.embedding_ln.gamma.data().asnumpy(),
                          tensors['bert.embeddings.LayerNorm.weight'])


def test_sharded_checkpoint_loads_from_its_index(tmp_path):
    tensors = hf_tensors(hf_config())
    names = sorted(tensors)
    folder = write_folder(tmp_path, tensors=tensors, weights_file=None)
    shards = {'model-00001-of-00002.safetensors': names[:20],
              'model-00002-of-00002.safetensors': names[20:]}
    for shard, shard_names in shards.items():
        save_file({n: tensors[n] for n in shard_names}, os.path.join(folder, shard))
    with open(os.path.join(folder, 'model.safetensors.index.json'), 'w') as f:
        json.dump({'weight_map': {n: s for s, ns in shards.items() for n in ns}}, f)
    _, _, report = from_pretrained(folder, return_report=True)
    assert report.missing == [] and report.unexpected == []


@pytest.mark.parametrize('field, value', [
    ('hidden_act', 'gelu_new'), ('position_embedding_type', 'relative_key'),
    ('type_vocab_size', 3), ('is_decoder', True),
    ('embedding_size', 8)])
def test_unsupported_architecture_is_refused_naming_the_field(tmp_path, field, value):
    folder = write_folder(tmp_path, config=hf_config(**{field: value}),
                          tensors=hf_tensors(hf_config()))
    with pytest.raises(ValueError, match=f'{field}={value!r} is not supported'):
        from_pretrained(folder)


def test_config_without_a_size_is_refused_naming_it(tmp_path):
    config = hf_config()
    del config['intermediate_size']
    with pytest.raises(ValueError, match='lacks intermediate_size'):
        from_pretrained(write_folder(tmp_path, config=config, tensors=hf_tensors(hf_config())))


def test_different_dropout_rates_need_an_explicit_dropout(tmp_path):
    folder = write_folder(tmp_path, config=hf_config(attention_probs_dropout_prob=0.2))
    with pytest.raises(ValueError, match='attention_probs_dropout_prob=0.2 differ'):
        from_pretrained(folder)
    assert from_pretrained(folder, dropout=0.1)[0].config['dropout'] == 0.1


def test_tensor_of_wrong_shape_is_refused_naming_it(tmp_path):
    tensors = hf_tensors(hf_config())
    tensors['bert.encoder.layer.1.intermediate.dense.weight'] = np.zeros((31, 16), np.float32)
    with pytest.raises(ValueError, match=r"'bert.encoder.layer.1.intermediate.dense.weight' "
                                         r"has shape \(31, 16\).*needs \(32, 16\)"):
        from_pretrained(write_folder(tmp_path, tensors=tensors))


def test_missing_encoder_tensor_is_refused_naming_it(tmp_path):
    tensors = hf_tensors(hf_config())
    del tensors['bert.encoder.layer.0.attention.self.key.bias']
    with pytest.raises(ValueError, match='lacks 1 tensors that gluonbert\'s encoder needs, '
                                         'for: encoder.blks.0.attention.W_k.bias'):
        from_pretrained(write_folder(tmp_path, tensors=tensors))


def test_vocab_of_other_size_than_the_embedding_is_refused(tmp_path):
    folder = write_folder(tmp_path, vocab=vocab_lines(40)[:39])
    with pytest.raises(ValueError, match='vocabulary has 39 tokens but config.json says '
                                         'vocab_size=40'):
        from_pretrained(folder)


class _Trap:
    """Unpickling this creates the file ``path``: proof that something unpickled it."""

    def __init__(self, path):
        self.path = path

    def __reduce__(self):
        return (open, (self.path, 'w'))


def test_pickle_checkpoint_is_refused_and_never_unpickled(tmp_path):
    folder = write_folder(tmp_path / 'bert', weights_file=None)
    marker = tmp_path / 'unpickled'
    with open(os.path.join(folder, 'pytorch_model.bin'), 'wb') as f:
        pickle.dump(_Trap(str(marker)), f)
    with pytest.raises(ValueError, match='pickle-based PyTorch checkpoint.*never unpickles'):
        from_pretrained(folder)
    with pytest.raises(ValueError, match='never unpickles'):
        from_pretrained(os.path.join(folder, 'pytorch_model.bin'))
    assert not marker.exists()


def test_pickle_named_model_safetensors_is_refused_and_never_unpickled(tmp_path):
    folder = write_folder(tmp_path / 'bert', weights_file=None)
    marker = tmp_path / 'unpickled'
    with open(os.path.join(folder, 'model.safetensors'), 'wb') as f:
        pickle.dump(_Trap(str(marker)), f)
    with pytest.raises(ValueError, match='not a readable safetensors file'):
        from_pretrained(folder)
    assert not marker.exists()


def test_folder_without_weights_says_what_it_expected(tmp_path):
    with pytest.raises(FileNotFoundError, match='has no model.safetensors'):
        from_pretrained(write_folder(tmp_path, weights_file=None))


def test_saving_a_model_without_embedding_layer_norm_is_refused(tmp_path):
    bert = gluonbert.BERTModel(40, 16, 32, 4, 1, 0.1, 24)  # d2l's architecture
    bert.initialize()
    vocab = vocab_from_bert_tokens(vocab_lines(40))
    with pytest.raises(ValueError, match='embedding_layer_norm=False has no HF BERT'):
        save_hf_pretrained(bert, vocab, str(tmp_path))


def test_saving_with_a_vocab_of_other_size_is_refused(tmp_path):
    bert, vocab = from_pretrained(write_folder(tmp_path / 'source'))
    vocab.idx_to_token = vocab.idx_to_token[:-1]
    with pytest.raises(ValueError, match='vocab has 39 tokens but the model\'s embedding has 40'):
        save_hf_pretrained(bert, vocab, str(tmp_path / 'copy'))


def test_load_tokenizer_follows_tokenizer_config(tmp_path):
    folder = write_folder(tmp_path)
    with open(os.path.join(folder, 'tokenizer_config.json'), 'w') as f:
        json.dump({'do_lower_case': False}, f)
    tokenizer = load_tokenizer(folder)
    assert not tokenizer.lower and not tokenizer.strip_accents
    assert tokenizer('The cats sat.') == ['<unk>', 'cat', '##s', 'sat', '.']


def test_load_tokenizer_without_config_lower_cases_an_uncased_vocab(tmp_path):
    tokenizer = load_tokenizer(write_folder(tmp_path))
    assert tokenizer.lower and tokenizer('The dog runs.') == ['the', 'dog', 'run', '##s', '.']


def test_saved_tokenizer_config_restores_the_tokenizer(tmp_path):
    bert, vocab = from_pretrained(write_folder(tmp_path / 'source'))
    tokenizer = WordPieceTokenizer(vocab, lower=False)
    save_hf_pretrained(bert, vocab, str(tmp_path / 'copy'), tokenizer=tokenizer)
    assert load_tokenizer(str(tmp_path / 'copy')).lower is False


def test_saving_over_a_downloaded_folder_with_other_files_is_refused_and_keeps_them(tmp_path):
    source = write_folder(tmp_path / 'source')
    bert, vocab = from_pretrained(source)
    (tmp_path / 'source' / 'README.md').write_text('model card')
    before = {p.name: p.read_bytes() for p in (tmp_path / 'source').iterdir()}
    with pytest.raises(FileExistsError, match=r'is not a HF BERT folder \(holds README.md\)'):
        save_hf_pretrained(bert, vocab, source)
    assert {p.name: p.read_bytes() for p in (tmp_path / 'source').iterdir()} == before
    save_hf_pretrained(bert, vocab, str(tmp_path / 'copy'))
    save_hf_pretrained(bert, vocab, str(tmp_path / 'copy'))  # its own previous save: replaced


@pytest.mark.parametrize('model_type', ['roberta', 'distilbert', 'deberta-v2', 'albert'])
def test_checkpoint_of_another_architecture_is_one_error_naming_its_model_type(tmp_path,
                                                                               model_type):
    folder = write_folder(tmp_path, config=hf_config(model_type=model_type))
    with pytest.raises(ValueError, match=rf"config.json: model_type '{model_type}' is another "
                                         rf"architecture; gluonbert reads BERT checkpoints"):
        from_pretrained(folder)


def test_architectures_of_another_model_without_model_type_are_refused(tmp_path):
    config = hf_config(architectures=['RobertaForMaskedLM'])
    del config['model_type']
    with pytest.raises(ValueError, match=r"architectures \['RobertaForMaskedLM'\] without a "
                                         r"model_type is not BERT"):
        from_pretrained(write_folder(tmp_path, config=config))


def test_config_json_of_another_json_type_is_one_error(tmp_path):
    folder = write_folder(tmp_path)
    with open(os.path.join(folder, 'config.json'), 'w') as f:
        json.dump([hf_config()], f)
    with pytest.raises(ValueError, match=r"config.json holds a JSON list; expected a JSON "
                                         r"object of BERT settings \(HF's BertConfig\)$"):
        from_pretrained(folder)


@pytest.mark.parametrize('bad', [np.nan, np.inf])
def test_weight_holding_nan_or_inf_is_refused_naming_the_tensor(tmp_path, bad):
    tensors = hf_tensors(hf_config())
    tensors['bert.encoder.layer.1.output.dense.weight'][3, 5] = bad
    with pytest.raises(ValueError, match=r"'bert.encoder.layer.1.output.dense.weight' holds "
                                         r"NaN or infinite values"):
        from_pretrained(write_folder(tmp_path, tensors=tensors))


def test_task_model_save_loads_its_encoder_and_names_the_unused_head(tmp_path):
    # BertForSequenceClassification.save_pretrained: bert.* with the pooler, a classifier
    tensors = {k: v for k, v in hf_tensors(hf_config()).items() if k.startswith('bert.')}
    tensors.update({'classifier.weight': np.zeros((3, 16), np.float32),
                    'classifier.bias': np.zeros(3, np.float32)})
    config = hf_config(architectures=['BertForSequenceClassification'])
    with pytest.warns(UserWarning, match=r'initialized afresh \(not in the checkpoint\): MLM '
                                         r'head, NSP head; unused checkpoint tensors: '
                                         r'classifier.bias, classifier.weight'):
        bert, _, report = from_pretrained(write_folder(tmp_path, config, tensors),
                                          return_report=True)
    assert 'hidden.weight' in report.loaded
    assert np.array_equal(bert.hidden.weight.data().asnumpy(), tensors['bert.pooler.dense.weight'])
