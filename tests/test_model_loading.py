"""Loading a saved model either gives the model that was saved or fails naming the file and
what is wrong: no silent mix of vocabularies, architectures or diverged weights."""
import json
import random

import mxnet as mx
import pytest
from mxnet import init

import gluonbert
from gluonbert import compat
from gluonbert.data.tokenization import WhitespaceTokenizer
from gluonbert.data.vocab import Vocab
from gluonbert.pretrained.hf_config import options_from_hf_config
from gluonbert.tasks import get_task
from gluonbert.tasks.saved import load_task_model, save_task_model
from gluonbert.pretrained.saved import load_pretrained_model, save_pretrained

VOCAB = Vocab(reserved_tokens=['<pad>', '<mask>', '<cls>', '<sep>'] +
              [f'w{i}' for i in range(20)])
LABELS = ['entailment', 'contradiction', 'neutral']


def small_bert(**options):
    mx.random.seed(0)
    net = gluonbert.BERTModel(len(VOCAB), 16, 24, 2, 1, 0.0, max_len=16, **options)
    net.initialize(init.Xavier())
    return net


@pytest.fixture
def pretrained(tmp_path):
    net = small_bert()
    folder = tmp_path / 'bert.small'
    save_pretrained(net, VOCAB, folder, config=net.config)
    return folder


@pytest.fixture
def finetuned(tmp_path):
    bert, task = small_bert(), get_task('snli')
    net = task.head(bert, LABELS)
    net.output.initialize(init.Xavier())
    folder = tmp_path / 'finetuned'
    save_task_model(net, bert, VOCAB, WhitespaceTokenizer(), folder, task, LABELS, 16)
    return folder


def edit_json(path, change):
    value = json.loads(path.read_text())
    path.write_text(json.dumps(change(value)))


def test_an_architecture_option_that_differs_from_the_saved_config_is_refused(pretrained):
    with pytest.raises(ValueError, match=r"num_heads=4, but the model .* was saved with "
                                         r"num_heads=2"):
        load_pretrained_model(str(pretrained), num_heads=4)
    bert, _ = load_pretrained_model(str(pretrained), num_heads=2, dropout=0.3)
    assert bert.config['dropout'] == 0.3  # dropout is not architecture: it may change


def test_a_shuffled_vocab_of_the_same_size_is_refused(pretrained, finetuned):
    for folder in (pretrained, finetuned):
        tokens = list(VOCAB.idx_to_token)
        random.Random(0).shuffle(tokens)
        (folder / 'vocab.json').write_text(json.dumps(tokens))
        with pytest.raises(ValueError, match='is not the vocabulary the model .* was saved '
                                             'with'):
            (load_pretrained_model if folder == pretrained else load_task_model)(str(folder))


def test_nan_weights_are_refused_by_parameter_name(tmp_path):
    net = small_bert()
    save_pretrained(net, VOCAB, tmp_path / 'nan', config=net.config)
    net.hidden.weight.set_data(net.hidden.weight.data() * float('nan'))
    compat.save_parameters(net, str(tmp_path / 'nan' / 'pretrained.params'))  # as written by
    # hand: save_pretrained refuses NaN
    with pytest.raises(ValueError, match='hidden.weight holds NaN or infinite values'):
        load_pretrained_model(str(tmp_path / 'nan'))


@pytest.mark.parametrize('change, message', [
    (lambda c: dict(c, num_hiddens='16'), r"config.json: num_hiddens='16'; expected an "
                                          r"integer >= 1"),
    (lambda c: dict(c, num_heads=3), 'num_hiddens=16 is not divisible by num_heads=3'),
    (lambda c: dict(c, layer_norm_eps=-1), 'layer_norm_eps=-1; expected a small positive'),
    (lambda c: dict(c, dropout=1.0), r'dropout=1.0; expected a probability in \[0, 1\)'),
    (lambda c: dict(c, colour='blue'), "unexpected keyword argument 'colour'"),
    (lambda c: {k: v for k, v in c.items() if k != 'num_heads'},
     "its config.json lacks num_heads"),
    (lambda c: [c], 'config.json holds a JSON list; expected a JSON object of BERTModel '
                    'options'),
])
def test_a_config_with_wrong_types_or_values_is_one_error_naming_the_file(pretrained, change,
                                                                          message):
    edit_json(pretrained / 'config.json', change)
    with pytest.raises(ValueError, match=message):
        load_pretrained_model(str(pretrained))


@pytest.mark.parametrize('name, content, message', [
    ('config.json', '{"num_hiddens": 16,', r'config.json is not valid JSON \(Expecting .*\); '
                                           'expected a JSON object of BERTModel options'),
    ('vocab.json', '<unk> <pad>', 'vocab.json.* is not a JSON list of tokens'),
    ('pretrained.params', 'garbage', 'pretrained.params is not an MXNet parameter file'),
])
def test_a_file_that_is_not_what_it_should_be_is_named(pretrained, name, content, message):
    (pretrained / name).write_text(content)
    with pytest.raises(ValueError, match=message):
        load_pretrained_model(str(pretrained))


@pytest.mark.parametrize('change', [
    lambda c: dict(c, labels='abc'), lambda c: dict(c, bert=None),
    lambda c: {k: v for k, v in c.items() if k != 'max_len'}])
def test_a_malformed_task_model_config_is_named(finetuned, change):
    edit_json(finetuned / 'config.json', change)
    with pytest.raises(ValueError, match='config.json: expected "task" .*"bert"'):
        load_task_model(str(finetuned))


def test_a_negative_hf_layer_norm_eps_is_refused():
    config = {'vocab_size': 30, 'hidden_size': 16, 'intermediate_size': 24,
              'num_attention_heads': 2, 'num_hidden_layers': 1,
              'max_position_embeddings': 16, 'layer_norm_eps': -1}
    with pytest.raises(ValueError, match='layer_norm_eps=-1.0; expected a small positive'):
        gluonbert.BERTModel(**options_from_hf_config(config))


def test_an_hf_config_holding_a_list_is_one_error():
    with pytest.raises(ValueError, match=r"^config.json holds a JSON list; expected an object "
                       r"of BERT settings \(HF's BertConfig\)$"):
        options_from_hf_config([{'hidden_size': 16}])


def test_config_edited_to_other_heads_than_the_weights_were_trained_with_is_refused(tmp_path):
    save_pretrained(small_bert(), VOCAB, tmp_path / 'b', config=small_bert().config)
    path = tmp_path / 'b' / 'config.json'
    config = json.loads(path.read_text())
    assert config['weights']['num_heads'] == 2 and len(config['weights']['sha256']) == 64
    path.write_text(json.dumps(dict(config, num_heads=4)))
    with pytest.raises(ValueError, match=rf"^{path}: num_heads=4, but the weights in "
                       rf"{tmp_path}/b/pretrained\.params were trained with num_heads=2 "
                       rf"\(recorded with their sha256; their shapes cannot tell\): restore "
                       rf"num_heads=2$"):
        load_pretrained_model(str(tmp_path / 'b'))
    del config['weights']  # a folder saved before the record: loads as it did
    path.write_text(json.dumps(dict(config, num_heads=4)))
    assert load_pretrained_model(str(tmp_path / 'b'))[0].config['num_heads'] == 4


def test_weights_of_another_model_with_the_same_shapes_are_refused(tmp_path):
    save_pretrained(small_bert(), VOCAB, tmp_path / 'b', config=small_bert().config)
    other = small_bert(activation='gelu')
    other.initialize(init.Normal(0.5), force_reinit=True)
    compat.save_parameters(other, str(tmp_path / 'b' / 'pretrained.params'))
    with pytest.raises(ValueError, match='pretrained.params is not the weights file its folder '
                       'was saved with .* the folder mixes files of two models'):
        load_pretrained_model(str(tmp_path / 'b'))


def test_weights_with_a_part_the_configured_model_lacks_name_it_without_mxnet_wording(tmp_path):
    save_pretrained(small_bert(), VOCAB, tmp_path / 'b', config=small_bert().config)
    compat.save_parameters(small_bert(embedding_layer_norm=True),
                           str(tmp_path / 'b' / 'pretrained.params'))
    with pytest.raises(ValueError) as error:
        load_pretrained_model(str(tmp_path / 'b'))
    assert 'pretrained.params holds parameter encoder.embedding_ln.' in str(error.value)
    assert 'ignore_extra' not in str(error.value) and 'allow_missing' not in str(error.value)
