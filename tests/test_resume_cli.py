"""Every run can be resumed and repeated, from the command line: a pretraining or fine-tuning
run killed with SIGKILL resumes (``--resume``) to the parameters of an uninterrupted run, on
one context and on two, and the same command twice gives bit-identical parameters."""
import os
import signal
import subprocess
import sys
import time

import mxnet as mx
import numpy as np
import pytest

from conftest import small_data_environment

pytestmark = pytest.mark.slow

TINY = ['--num-hiddens', '16', '--ffn-num-hiddens', '32', '--num-heads', '2', '--num-blks', '1',
        '--max-len', '24', '--batch-size', '16', '--seed', '3']
PRETRAIN = ['pretrain', '--steps', '40', '--checkpoint-every', '5', '--log-every', '5'] + TINY
FINETUNE = ['finetune', '--epochs', '2', '--train-limit', '320', '--test-limit', '32',
            '--max-len', '24', '--batch-size', '16', '--checkpoint-every', '4', '--seed', '3',
            '--dropout', '0.1']


def gluonbert(args, env):
    done = subprocess.run([sys.executable, '-m', 'gluonbert'] + args, capture_output=True,
                          text=True, env=env, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    return done


def killed_after_checkpoint(args, checkpoints, step, env):
    """Run ``args``, SIGKILL it as soon as the checkpoint of ``step`` exists."""
    process = subprocess.Popen([sys.executable, '-m', 'gluonbert'] + args, env=env,
                               stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    target = checkpoints / f'step-{step:08d}'
    deadline = time.monotonic() + 300
    while not target.exists():
        assert process.poll() is None, process.stderr.read().decode()[-3000:]
        assert time.monotonic() < deadline, 'no checkpoint in time'
        time.sleep(0.02)
    assert process.poll() is None, 'the run ended before it could be killed'
    process.send_signal(signal.SIGKILL)
    process.wait()
    process.stderr.close()


def params(path):
    return {k: v.asnumpy() for k, v in mx.nd.load(str(path)).items()}


def assert_identical(a, b):
    assert a.keys() == b.keys()
    for name in a:
        np.testing.assert_array_equal(a[name], b[name], err_msg=name)


@pytest.fixture(scope='module')
def pretrained(tmp_path_factory):
    """A tiny pretrained folder (made with the embedded data) to fine-tune from."""
    folder = tmp_path_factory.mktemp('pretrained')
    env = small_data_environment(folder)
    gluonbert(['pretrain', '--steps', '3', '--out', str(folder / 'bert')] + TINY, env)
    return folder / 'bert', env


@pytest.mark.parametrize('devices', ['cpu', 'cpu:0,cpu:1'])
def test_killed_pretraining_resumes_to_the_uninterrupted_parameters(
        tmp_path, small_data_env, devices):
    run = PRETRAIN + ['--devices', devices]
    killed_after_checkpoint(run + ['--out', str(tmp_path / 'a')], tmp_path / 'a.checkpoints',
                            10, small_data_env)
    assert not (tmp_path / 'a').exists()
    resumed = gluonbert(run + ['--out', str(tmp_path / 'a'), '--resume'], small_data_env)
    assert 'resumed from step ' in resumed.stdout
    gluonbert(run + ['--out', str(tmp_path / 'b')], small_data_env)
    gluonbert(run + ['--out', str(tmp_path / 'c')], small_data_env)
    straight = params(tmp_path / 'b' / 'pretrained.params')
    assert_identical(params(tmp_path / 'c' / 'pretrained.params'), straight)  # same seed
    assert_identical(params(tmp_path / 'a' / 'pretrained.params'), straight)


@pytest.mark.parametrize('devices', ['cpu', 'cpu:0,cpu:1'])
def test_killed_finetuning_resumes_to_the_uninterrupted_parameters(tmp_path, pretrained,
                                                                    devices):
    folder, env = pretrained
    run = FINETUNE + ['--pretrained', str(folder), '--devices', devices]
    # 20 updates per epoch: killed in the second epoch, after its first checkpoint
    killed_after_checkpoint(run + ['--out', str(tmp_path / 'a')], tmp_path / 'a.checkpoints',
                            24, env)
    gluonbert(run + ['--out', str(tmp_path / 'a'), '--resume'], env)
    gluonbert(run + ['--out', str(tmp_path / 'b')], env)
    gluonbert(run + ['--out', str(tmp_path / 'c')], env)
    straight = params(tmp_path / 'b' / 'classifier.params')
    assert_identical(params(tmp_path / 'c' / 'classifier.params'), straight)  # same seed
    assert_identical(params(tmp_path / 'a' / 'classifier.params'), straight)


def test_resume_without_a_checkpoint_is_a_one_line_error(tmp_path, small_data_env):
    done = subprocess.run([sys.executable, '-m', 'gluonbert'] + PRETRAIN + [
        '--out', str(tmp_path / 'none'), '--resume'], capture_output=True, text=True,
        env=small_data_env, timeout=300)
    assert done.returncode == 2
    assert 'no checkpoint to resume from in' in done.stderr
    assert 'Traceback' not in done.stderr
