"""Each command's options are one typed dataclass (``gluonbert.options``): the command line, a
``--config`` file and a script build the same object, held to the same checks, and the trainer
options that pretraining and fine-tuning share are declared once."""
import dataclasses
import json

import mxnet as mx
import pytest
from mxnet import init

import gluonbert
from gluonbert import cli, jobs
from gluonbert.data.vocab import Vocab
from gluonbert.options import (COMMANDS, TRAINER, TRAINER_OPTIONS, FinetuneOptions,
                               PretrainOptions)
from gluonbert.optimizer import OPTIMIZERS
from gluonbert.pretrained.saved import save_pretrained


def _actions(command):
    return {a.dest: a for a in cli.build_parser().subcommands[command]._actions
            if a.dest not in ('help', 'config', 'save_config')}


@pytest.mark.parametrize('command', sorted(COMMANDS))
def test_every_option_of_a_command_is_a_field_of_its_dataclass_with_its_default(command):
    fields = {f.name: f for f in dataclasses.fields(COMMANDS[command])}
    actions = _actions(command)
    assert set(actions) == set(fields)
    for name, action in actions.items():
        if fields[name].default is not dataclasses.MISSING:
            assert action.default == fields[name].default, name


def test_the_trainer_options_of_pretrain_and_finetune_come_from_one_declaration():
    pretrain, finetune = _actions('pretrain'), _actions('finetune')
    for name in TRAINER_OPTIONS:
        assert pretrain[name].type is finetune[name].type, name
        assert pretrain[name].container.title == finetune[name].container.title == TRAINER
        if name != 'optimizer':
            assert pretrain[name].choices == finetune[name].choices, name
    # the one declared difference: pretrain takes any MXNet optimizer (the chapter's sgd too)
    assert pretrain['optimizer'].choices is None
    assert set(finetune['optimizer'].choices) == set(OPTIMIZERS)
    assert (pretrain['optimizer'].default, finetune['optimizer'].default) == ('adam', 'adamw')


def test_the_command_line_gives_the_dataclass_a_script_would_build():
    opts = cli.parse_args(['finetune', '--pretrained', 'runs/p', '--lr', '1e-3', '--epochs',
                           '2'])
    assert opts == FinetuneOptions(pretrained='runs/p', lr=1e-3, epochs=2)
    assert cli.finetune_options('runs/p', lr=1e-3, epochs=2) == opts
    with pytest.raises(ValueError, match="finetune has no option 'lrate'"):
        cli.finetune_options('runs/p', lrate=1e-3)


def test_a_saved_config_holds_the_fields_and_reads_back_to_the_same_options(tmp_path):
    path = tmp_path / 'p.json'
    opts = cli.parse_args(['pretrain', '--steps', '7', '--corpus', 'a.txt', '--save-config',
                           str(path)])
    assert json.loads(path.read_text()) == dataclasses.asdict(opts)
    assert cli.parse_args(['pretrain', '--config', str(path)]) == opts


@pytest.mark.parametrize('build, message', [
    (lambda: FinetuneOptions(pretrained='p', lr=0), "option 'lr' is 0; expected a finite "
                                                    'number > 0'),
    (lambda: FinetuneOptions(pretrained='p', epochs='3'), "option 'epochs' is '3'; expected "
                                                          'an integer >= 1 (a number'),
    (lambda: FinetuneOptions(pretrained='p', task='nli'), "option 'task' is 'nli'; expected "
                                                          'one of'),
    (lambda: FinetuneOptions(pretrained=None), "option 'pretrained' is None; expected a "
                                               'string'),
    (lambda: PretrainOptions(corpus='a.txt'), "option 'corpus' is 'a.txt'; expected a list"),
    (lambda: PretrainOptions(synthetic=1), "option 'synthetic' is 1; expected true or false"),
    (lambda: FinetuneOptions(pretrained='p', schedule='constant', warmup_steps=10),
     '--schedule constant has no warm-up, and --warmup-steps 10 asks for one'),
    (lambda: PretrainOptions(schedule='constant', warmup_steps=10),
     '--schedule constant has no warm-up'),
])
def test_options_a_script_builds_are_checked_as_the_command_line_s(build, message):
    with pytest.raises(ValueError, match=message.replace('(', r'\(')):
        build()


def test_a_script_s_paths_and_whole_numbers_become_the_command_line_s_values(tmp_path):
    opts = FinetuneOptions(pretrained=tmp_path / 'p', lr=1, out=tmp_path / 'o')
    assert (opts.pretrained, opts.out) == (str(tmp_path / 'p'), str(tmp_path / 'o'))
    assert opts.lr == 1.0 and isinstance(opts.lr, float)


def test_finetune_runs_from_python_with_its_options_dataclass(tmp_path, capsys):
    vocab = Vocab(reserved_tokens=['<pad>', '<mask>', '<cls>', '<sep>', 'a', 'man', 'dog'])
    mx.random.seed(0)
    bert = gluonbert.BERTModel(len(vocab), 16, 24, 2, 1, 0.0, max_len=32)
    bert.initialize(init.Xavier())
    save_pretrained(bert, vocab, tmp_path / 'pretrained', config=bert.config)
    train = tmp_path / 'train.tsv'
    train.write_text('sentence\tlabel\n' + 'a man\tyes\na dog\tno\n' * 10)
    result = jobs.finetune(FinetuneOptions(
        pretrained=tmp_path / 'pretrained', task='classification', train=train, max_len=16,
        batch_size=4, epochs=1, out=tmp_path / 'finetuned'))
    assert result['task'] == 'classification' and result['updates'] == 5
    assert 0.0 <= result['dev']['dev_accuracy'] <= 1.0
    assert (tmp_path / 'finetuned' / 'model.params').is_file()
    assert 'lr 0.0005, linear schedule, 1 warm-up of 5 updates' in capsys.readouterr().out


def test_the_checks_before_any_work_import_neither_the_jobs_nor_the_command_line():
    import ast
    from gluonbert import preflight
    tree = ast.parse(open(preflight.__file__, encoding='utf-8').read())
    imported = {node.module or alias.name for node in ast.walk(tree)
                if isinstance(node, ast.ImportFrom) for alias in node.names}
    assert not imported & {'jobs', 'cli'}, imported


def test_the_recipe_epochs_follow_the_models_width_where_not_set():
    opts = FinetuneOptions(pretrained='p')
    assert opts.epochs is None
    assert opts.for_model(128).epochs == 8        # d2l's small BERT: the recipe's 8
    assert opts.for_model(384).epochs == 3        # a published checkpoint: run_glue's 3
    assert opts.for_model(None).epochs == 8       # width unknown: the small model's
    assert FinetuneOptions(pretrained='p', epochs=5).for_model(384).epochs == 5


def test_evaluate_and_predict_take_finetunes_precision_option():
    for command in ('evaluate', 'predict'):
        assert cli.parse_args([command, '--model', 'runs/m']).amp == 'auto'
        assert cli.parse_args([command, '--model', 'runs/m', '--amp', 'off']).amp == 'off'


def test_the_width_of_a_fine_tuned_folder_is_its_berts(tmp_path):
    from gluonbert.pretrained.folders import model_width
    (tmp_path / 'config.json').write_text(json.dumps({'task': 'classification',
                                                      'bert': {'num_hiddens': 384}}))
    assert model_width(tmp_path) == 384
