"""A fine-tuned task model folder keeps its task's settings (question answering: windows and
span length), so that loading it rebuilds the task as trained; folders saved before tasks had
settings load with the defaults, and a bad value is an error naming the file."""
import json

import mxnet as mx
import pytest
from mxnet import init

import gluonbert
from gluonbert.data.tokenization import WhitespaceTokenizer
from gluonbert.data.vocab import Vocab
from gluonbert.tasks import get_task
from gluonbert.tasks.saved import load_task_model, save_task_model

VOCAB = Vocab(reserved_tokens=['<pad>', '<mask>', '<cls>', '<sep>', 'who', 'built', 'it'])
MAX_LEN = 32


def saved(folder, task):
    mx.random.seed(0)
    bert = gluonbert.BERTModel(len(VOCAB), 16, 24, 2, 1, 0.0, max_len=MAX_LEN)
    bert.initialize(init.Xavier())
    net = task.head(bert, None)
    net.output.initialize(init.Xavier())
    save_task_model(net, bert, VOCAB, WhitespaceTokenizer(), folder, task, None, MAX_LEN)
    return folder


def edited_config(folder, edit):
    path = folder / 'config.json'
    config = json.loads(path.read_text())
    edit(config)
    path.write_text(json.dumps(config))
    return path


def test_question_answering_settings_are_saved_and_rebuilt(tmp_path):
    task = get_task('question-answering', doc_stride=7, max_query_len=6, max_answer_len=4,
                    articles=['le', 'la'])
    folder = saved(tmp_path / 'qa', task)
    assert json.loads((folder / 'config.json').read_text())['task_settings'] == \
        task.settings()
    _, loaded, *_ = load_task_model(folder)
    assert loaded.settings() == task.settings()


def test_settings_left_to_their_defaults_are_saved_as_the_values_trained_with(tmp_path):
    task = get_task('question-answering')
    task.fit_to(MAX_LEN)  # as finetune does
    _, loaded, *_ = load_task_model(saved(tmp_path / 'qa', task))
    assert (loaded.doc_stride, loaded.max_query_len) == (MAX_LEN // 3, MAX_LEN // 6)


def test_a_folder_saved_before_tasks_had_settings_loads_with_the_defaults(tmp_path):
    folder = saved(tmp_path / 'qa', get_task('question-answering', doc_stride=3))
    edited_config(folder, lambda config: config.pop('task_settings'))
    _, task, *_ = load_task_model(folder)
    assert task.settings() == dict(get_task('question-answering').settings(),
                                   doc_stride=MAX_LEN // 3, max_query_len=MAX_LEN // 6)


def test_tasks_without_settings_save_an_empty_object(tmp_path):
    folder = saved(tmp_path / 'mc', get_task('multiple-choice'))
    assert json.loads((folder / 'config.json').read_text())['task_settings'] == {}
    assert load_task_model(folder)[1].name == 'multiple-choice'


@pytest.mark.parametrize('settings, message', [
    ({'doc_stride': 0}, 'doc_stride=0; expected an integer >= 1 (tokens), or None'),
    ({'max_answer_len': '30'}, "max_answer_len='30'; expected an integer >= 1"),
    ({'doc_stride': 40}, 'doc_stride=40: expected 1 to 24'),
    ({'stride': 4}, "task 'question-answering' has no setting stride"),
    ({'articles': 'the'}, "articles='the'; expected a list of words"),
    ([4], 'task settings [4]; expected an object'),
])
def test_a_bad_setting_in_a_folder_is_an_error_naming_the_file(tmp_path, settings, message):
    folder = saved(tmp_path / 'qa', get_task('question-answering'))
    path = edited_config(folder, lambda config: config.update(task_settings=settings))
    with pytest.raises(ValueError) as error:
        load_task_model(folder)
    assert str(error.value).startswith(f'{path}: "task_settings": ')
    assert message in str(error.value)


def test_a_model_holding_nan_is_not_saved_over_a_good_one(tmp_path):
    folder = saved(tmp_path / 'm', get_task('question-answering'))
    before = {p.name: p.read_bytes() for p in folder.iterdir()}
    task = get_task('question-answering')
    bert = gluonbert.BERTModel(len(VOCAB), 16, 24, 2, 1, 0.0, max_len=MAX_LEN)
    bert.initialize(init.Xavier())
    net = task.head(bert, None)
    net.output.initialize(init.Xavier())
    weight = bert.encoder.token_embedding.weight
    weight.set_data(weight.data() * float('nan'))
    with pytest.raises(ValueError, match=r'm: not saved: parameter encoder\.token_embedding'
                       r'\.weight holds NaN or infinite values .* left as it was'):
        save_task_model(net, bert, VOCAB, WhitespaceTokenizer(), folder, task, None, MAX_LEN)
    assert {p.name: p.read_bytes() for p in folder.iterdir()} == before


def test_a_task_folder_whose_config_says_other_heads_is_refused(tmp_path):
    folder = saved(tmp_path / 'qa', get_task('question-answering'))
    path = edited_config(folder, lambda config: config['bert'].update(num_heads=4))
    with pytest.raises(ValueError, match=rf"^{path}: num_heads=4, but the weights in "
                       rf"{folder}/model\.params were trained with num_heads=2"):
        load_task_model(folder)
