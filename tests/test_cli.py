"""The command line, run as a user would: in subprocesses."""
import json
import subprocess
import sys

import pytest

# each subcommand and one option of its own
COMMANDS = {'main': '--finetune-epochs', 'pretrain': '--masking', 'finetune': '--strategy',
            'evaluate': '--model', 'export': '--int8', 'predict': '--model'}


def gluonbert(*args, env=None, cwd=None):
    return subprocess.run([sys.executable, '-m', 'gluonbert', *args], capture_output=True,
                          text=True, env=env, cwd=cwd, timeout=600)


@pytest.mark.parametrize('command, own_option', COMMANDS.items())
def test_every_subcommand_has_help_with_its_options(command, own_option):
    result = gluonbert(command, '--help')
    assert result.returncode == 0
    for option in ('--config', '--save-config', own_option):
        assert option in result.stdout


def test_unknown_subcommand_and_option_exit_with_status_2_and_no_traceback():
    for args in (('frobnicate',), ('pretrain', '--no-such-option')):
        result = gluonbert(*args)
        assert result.returncode == 2 and 'Traceback' not in result.stderr
        assert 'error:' in result.stderr


def test_config_file_with_unknown_key_or_wrong_type_is_a_user_error(tmp_path):
    for name, text, message in (('a.json', '{"stepz": 3}', "unknown option 'stepz'"),
                                ('b.toml', 'steps = "three"', "option 'steps' is 'three'; "
                                                              'expected an integer >= 1')):
        path = tmp_path / name
        path.write_text(text)
        result = gluonbert('pretrain', '--config', str(path))
        assert result.returncode == 2 and message in result.stderr
        assert 'Traceback' not in result.stderr


def test_missing_checkpoint_is_a_short_error():
    result = gluonbert('evaluate', '--model', '/no/such/folder')
    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == [
        "gluonbert evaluate: error: '/no/such/folder' is not a fine-tuned task model folder "
        "(expected model.params, config.json, vocab.json, tokenizer.json) nor an HF task "
        "folder"]


def test_main_job_then_evaluate_and_a_saved_config_reruns(tmp_path, small_data_env):
    out = tmp_path / 'run' / 'pretrained'
    saved = tmp_path / 'main.json'
    result = gluonbert('main', '--steps', '8', '--batch-size', '16', '--num-hiddens', '32',
                       '--ffn-num-hiddens', '64', '--finetune-limit', '200', '--out', str(out),
                       '--save-config', str(saved), env=small_data_env)
    assert result.returncode == 0, result.stderr
    for stage in ('== stage 1/3', '== stage 2/3', '== stage 3/3'):
        assert stage in result.stdout
    assert 'max |onnxruntime - mxnet|' in result.stdout
    assert 'sentence pairs/sec' in result.stdout
    assert 'test (best model): accuracy' in result.stdout
    assert 'true \\ predicted' in result.stdout
    for name in ('pretrained/pretrained.params', 'pretrained/loss.png',
                 'finetuned/model.params', 'finetuned/tokenizer.json',
                 'finetuned.checkpoints/curves.png', 'onnx/model.onnx', 'onnx/tokenizer.json'):
        assert (tmp_path / 'run' / name).is_file(), name
    assert json.loads(saved.read_text())['steps'] == 8
    evaluated = gluonbert('evaluate', '--model', str(tmp_path / 'run' / 'finetuned'),
                          '--test-limit', '100', env=small_data_env)
    assert evaluated.returncode == 0, evaluated.stderr
    assert 'snli on 100 examples: accuracy' in evaluated.stdout
    pairs = 'A man is sleeping .\tA person rests .\nTwo dogs run .\tNo animal moves .\n'
    predicted = subprocess.run([sys.executable, '-m', 'gluonbert', 'predict', '--model',
                                str(tmp_path / 'run' / 'finetuned')], input=pairs,
                               capture_output=True, text=True, env=small_data_env)
    lines = predicted.stdout.splitlines()
    assert predicted.returncode == 0
    assert lines[0] == 'label\tp_entailment\tp_contradiction\tp_neutral'  # as predict.py
    assert len(lines) == 3 and all(abs(sum(map(float, l.split('\t')[1:])) - 1) < 1e-3
                                   for l in lines[1:])


def test_a_saved_config_file_reruns_the_same_options(tmp_path, small_data_env):
    saved = tmp_path / 'pretrain.json'
    first = gluonbert('pretrain', '--steps', '2', '--batch-size', '8', '--num-hiddens', '16',
                      '--ffn-num-hiddens', '32', '--out', str(tmp_path / 'p'),
                      '--save-config', str(saved), env=small_data_env)
    assert first.returncode == 0, first.stderr
    again = gluonbert('pretrain', '--config', str(saved), env=small_data_env)
    assert again.returncode == 0, again.stderr
    assert '(mean over steps 1-2)' in again.stdout
    losses = [next(line for line in run.stdout.splitlines() if line.startswith('MLM loss'))
              for run in (first, again)]
    assert losses[0] == losses[1]  # same options and seed: the same run
