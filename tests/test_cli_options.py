"""Options are checked in one place (``gluonbert.option_types``), on the command line and in
``--config`` files alike; a config file may set any option, required ones included."""
import json
import re
import subprocess
import sys

import pytest

from gluonbert import cli
from gluonbert.data.masking import MASKING_STRATEGIES
from gluonbert.model.transformer import ACTIVATIONS
from gluonbert.option_types import activation_bytes, check_memory
from gluonbert.optimizer import OPTIMIZERS
from gluonbert.train.recipes import warmup_updates
from gluonbert.train.schedules import SCHEDULES, default_schedule

FINETUNE = ['finetune', '--pretrained', 'runs/p']


@pytest.mark.parametrize('args, message', [
    (FINETUNE + ['--lr', '0'], "--lr: '0'; expected a finite number > 0"),
    (FINETUNE + ['--lr', '-1'], "--lr: '-1'; expected a finite number > 0"),
    (FINETUNE + ['--lr', 'nan'], "--lr: 'nan'; expected a finite number > 0"),
    (FINETUNE + ['--dropout', '-1'], "--dropout: '-1'; expected a probability in [0, 1)"),
    (FINETUNE + ['--dropout', '2'], "--dropout: '2'; expected a probability in [0, 1)"),
    (['pretrain', '--num-blks', '0'], "--num-blks: '0'; expected an integer >= 1"),
    (['pretrain', '--num-heads', '0'], "--num-heads: '0'; expected an integer >= 1"),
    (['pretrain', '--batch-size', '0'], "--batch-size: '0'; expected an integer >= 1"),
    (FINETUNE + ['--accumulate', '0'], "--accumulate: '0'; expected an integer >= 1"),
    (FINETUNE + ['--train-limit', '-5'], "--train-limit: '-5'; expected an integer >= 0"),
    (FINETUNE + ['--freeze', '(enc'], "--freeze: '(enc'; expected a regular expression"),
    (['pretrain', '--max-len', '5000'], "--max-len: '5000'; expected an integer in [5, 1000]"),
    (['pretrain', '--seed', '-1'], "--seed: '-1'; expected an integer in [0, 2**32)"),
])
def test_an_option_that_cannot_be_meant_is_refused_naming_it(args, message, capsys):
    with pytest.raises(SystemExit) as exit_info:
        cli.parse_args(args)
    assert exit_info.value.code == 2
    assert message in capsys.readouterr().err


@pytest.mark.parametrize('args, message', [
    (FINETUNE + ['--schedule', 'constant', '--warmup-steps', '10'],
     '--schedule constant has no warm-up, and --warmup-steps 10 asks for one; use --schedule '
     'constant_with_warmup, or leave out --warmup-steps'),
    (FINETUNE + ['--schedule', 'constant', '--warmup-ratio', '0.2'],
     '--schedule constant has no warm-up, and --warmup-ratio 0.2 asks for one'),
    (FINETUNE + ['--warmup-steps', '10', '--warmup-ratio', '0.2'],
     '--warmup-steps 10 and --warmup-ratio 0.2 both set the warm-up; give one'),
    (['pretrain', '--schedule', 'constant', '--warmup-steps', '10'],
     '--schedule constant has no warm-up, and --warmup-steps 10 asks for one'),
])
def test_warm_up_options_that_contradict_each_other_are_one_error_before_any_work(
        args, message, capsys):
    assert cli.main(args) == 2  # before reading --pretrained runs/p, which does not exist
    error = capsys.readouterr().err.strip().splitlines()
    assert len(error) == 1 and error[0].startswith(f'gluonbert: error: {message}')


def test_a_config_file_s_schedule_and_the_command_line_s_warm_up_are_checked_together(
        tmp_path):
    path = tmp_path / 'ft.json'
    path.write_text('{"schedule": "constant"}')
    with pytest.raises(ValueError, match='--schedule constant has no warm-up'):
        cli.parse_args(FINETUNE + ['--config', str(path), '--warmup-ratio', '0.1'])


def test_a_default_warm_up_fits_the_schedule_the_user_chose():
    assert warmup_updates(None, None, 100, 'constant') == 0  # constant: no warm-up
    assert warmup_updates(None, None, 100, 'linear') == 10  # the recipe's 10%
    assert warmup_updates(None, 0.25, 100, 'cosine') == 25
    assert warmup_updates(7, None, 100, 'linear') == 7
    assert default_schedule(0) == 'constant'  # pretrain without --schedule
    assert default_schedule(10) == 'constant_with_warmup'  # ... and with --warmup-steps 10


@pytest.mark.parametrize('text, message', [
    ('{"lr": 0}', "option 'lr' is 0; expected a finite number > 0"),
    ('{"dropout": 1.5}', "option 'dropout' is 1.5; expected a probability in [0, 1)"),
    ('{"batch_size": true}', "option 'batch_size' is True; expected an integer >= 1"),
    ('{"epochs": "3"}', "option 'epochs' is '3'; expected an integer >= 1 (a number, not"),
    ('{"schedule": "step"}', "option 'schedule' is 'step'; expected one of"),
    ('{"show_groups": 1}', "option 'show_groups' is 1; expected true or false"),
])
def test_config_file_values_are_held_to_the_same_checks(tmp_path, text, message):
    path = tmp_path / 'ft.json'
    path.write_text(text)
    with pytest.raises(ValueError, match=re.escape(message)):
        cli.parse_args(FINETUNE + ['--config', str(path)])


def test_a_config_file_may_set_a_required_option(tmp_path):
    path = tmp_path / 'ft.toml'
    path.write_text('pretrained = "runs/bert.small"\ntask = "sick"\nepochs = 3\n')
    args = cli.parse_args(['finetune', '--config', str(path)])
    assert (args.pretrained, args.task, args.epochs) == ('runs/bert.small', 'sick', 3)
    assert cli.parse_args(['finetune', '--config', str(path), '--pretrained', 'b']).pretrained \
        == 'b'


def test_a_required_option_given_nowhere_is_still_an_error(capsys):
    with pytest.raises(SystemExit):
        cli.parse_args(['finetune'])
    assert 'required: --pretrained (on the command line or in --config)' in \
        capsys.readouterr().err


def test_a_config_file_that_is_a_folder_or_a_save_config_into_a_folder_is_a_user_error(
        tmp_path):
    with pytest.raises(ValueError, match='is a folder; expected a JSON or TOML file'):
        cli.parse_args(['pretrain', '--config', str(tmp_path)])
    assert cli.main(['pretrain', '--save-config', str(tmp_path)]) == 2
    with pytest.raises(IsADirectoryError, match='is a folder; expected the path of a file'):
        cli.parse_args(['pretrain', '--save-config', str(tmp_path)])


def test_the_saved_config_reads_back(tmp_path):
    path = tmp_path / 'p.json'
    cli.parse_args(['pretrain', '--steps', '7', '--save-config', str(path)])
    assert json.loads(path.read_text())['steps'] == 7
    assert cli.parse_args(['pretrain', '--config', str(path)]).steps == 7


def test_a_max_len_whose_activations_cannot_fit_is_refused_with_an_estimate():
    needed = activation_bytes(512, 1000, 128, 256, 2, 2)
    assert 30 * 2 ** 30 < needed < 32 * 2 ** 30  # 3 x heads x len^2 floats dominate
    with pytest.raises(ValueError, match=r'--max-len 1000 with --batch-size 512 needs at '
                                         r'least 30.7 GiB .* 24.0 GiB are available'):
        check_memory(512, 1000, 128, 256, 2, 2, available=24 * 2 ** 30)
    check_memory(512, 64, 128, 256, 2, 2, available=24 * 2 ** 30)


def test_the_choices_are_the_library_s_own_lists():
    actions = {a.dest: a for a in cli.build_parser().subcommands['finetune']._actions}
    assert set(actions['optimizer'].choices) == set(OPTIMIZERS)
    assert tuple(actions['schedule'].choices) == SCHEDULES
    pretrain = {a.dest: a for a in cli.build_parser().subcommands['pretrain']._actions}
    assert tuple(pretrain['activation'].choices) == ACTIVATIONS
    assert tuple(pretrain['masking'].choices) == MASKING_STRATEGIES


def metrics(stdout, prefix):
    """``{name: value}`` of the line of ``stdout`` that starts with ``prefix``."""
    line = next(line for line in stdout.splitlines() if line.startswith(prefix))
    return {k: float(v) for k, v in re.findall(r'(\w+) (-?[\d.]+)', line[len(prefix):])}


@pytest.mark.slow
def test_the_main_job_learns_on_the_embedded_slices_at_its_own_max_len(tmp_path,
                                                                       small_data_env):
    out = tmp_path / 'run' / 'pretrained'
    result = subprocess.run([sys.executable, '-m', 'gluonbert', 'main', '--out', str(out)],
                            env=small_data_env, capture_output=True, text=True, timeout=900)
    assert result.returncode == 0, result.stderr
    test = metrics(result.stdout, 'test (best model): ')
    baseline = metrics(result.stdout, 'trivial baseline: ')
    assert baseline['accuracy'] == 0.344  # the majority class of the 1,000 test pairs
    assert test['accuracy'] > baseline['accuracy'] + 0.06 and test['mcc'] > 0.1, result.stdout
    # the unknown tokens are SNLI's words missing from the WikiText-2 slice's vocabulary
    assert 'words the vocabulary lacks, not punctuation' in result.stdout
    config = json.loads((tmp_path / 'run' / 'finetuned' / 'config.json').read_text())
    assert config['max_len'] == 64  # the main job's, not finetune's default 128
    assert json.loads((out / 'config.json').read_text())['max_len'] == 1000  # d2l's table


def test_the_main_job_looks_for_snli_once_for_its_fine_tuning_and_export(tmp_path,
                                                                         monkeypatch):
    from gluonbert import jobs
    calls = []
    monkeypatch.setattr('gluonbert.data.nli.locate_snli',
                        lambda **kwargs: calls.append(kwargs) or ('snli-folder', 'infersent'))
    ran = {}
    for job in ('pretrain', 'finetune', 'export'):
        monkeypatch.setattr(jobs, job, lambda opts, fallback=None, job=job:
                            ran.setdefault(job, (opts, fallback)))
    cli.run_main(cli.parse_args(['main', '--out', str(tmp_path / 'main' / 'pretrained')]))
    assert calls == [{'fallback': 'embedded'}]
    assert ran['finetune'][0].data_dir == ran['export'][0].data_dir == 'snli-folder'
