"""``--amp bf16`` on the command line: pretraining follows the float32 losses, fine-tuning
trains, and the saved folders are float32 ones that evaluate without AMP. In subprocesses:
AMP rewrites MXNet's operators for the whole process."""
import json
import re
import subprocess
import sys

import pytest

from gluonbert.train.mixed_precision import cpu_bfloat16_support

SMALL = ['--steps', '30', '--batch-size', '32', '--num-hiddens', '32', '--ffn-num-hiddens',
         '64', '--max-len', '32', '--log-every', '5', '--lr', '3e-3', '--seed', '0']


def gluonbert(*args, env):
    done = subprocess.run([sys.executable, '-m', 'gluonbert', *map(str, args)],
                          capture_output=True, text=True, env=env, timeout=600)
    assert done.returncode == 0, done.stderr
    return done.stdout


def mlm_losses(checkpoints):
    """The logged MLM losses of a run, by update."""
    rows = json.loads((checkpoints / 'metrics.json').read_text())
    return [row['mlm_loss'] for row in rows if 'mlm_loss' in row]


@pytest.mark.slow
def test_bf16_pretraining_follows_float32_and_its_model_fine_tunes(tmp_path, small_data_env):
    supported, why = cpu_bfloat16_support()
    if not supported:
        pytest.skip(why)
    for name, amp in (('fp32', []), ('bf16', ['--amp', 'bf16'])):
        out = gluonbert('pretrain', *SMALL, *amp, '--out', tmp_path / name, env=small_data_env)
        assert (', bfloat16 AMP' in out) == bool(amp)
    fp32, bf16 = (mlm_losses(tmp_path / f'{name}.checkpoints') for name in ('fp32', 'bf16'))
    assert len(fp32) == len(bf16) == 6
    assert bf16[-1] < bf16[0] - 0.5  # it learns
    for a, b in zip(fp32, bf16):  # and follows float32 within bfloat16's rounding
        assert abs(a - b) < 0.02 * a, (fp32, bf16)
    out = gluonbert('finetune', '--pretrained', tmp_path / 'bf16', '--amp', 'bf16', '--max-len',
                    '32', '--train-limit', '200', '--test-limit', '100', '--epochs', '1',
                    '--out', tmp_path / 'snli', env=small_data_env)
    assert 'bfloat16 AMP' in out and 'test (best model): accuracy' in out
    evaluated = gluonbert('evaluate', '--model', tmp_path / 'snli', '--test-limit', '100',
                          env=small_data_env)
    assert re.search(r'snli on 100 examples: accuracy 0\.\d+', evaluated)
