"""Exact resume: a real training process killed with SIGKILL at a random update, then
resumed, ends with the parameters of a run that was never interrupted, bit for bit."""
import os
import signal
import subprocess
import sys

import mxnet as mx
import numpy as np

TESTS = os.path.dirname(os.path.abspath(__file__))
UPDATES = 12


def command(checkpoint_dir, out_file):
    return [sys.executable, os.path.join(TESTS, 'resumable_run.py'), str(checkpoint_dir),
            str(out_file), str(UPDATES)]


ENV = dict(os.environ, PYTHONPATH=os.pathsep.join([TESTS, os.environ.get('PYTHONPATH', '')]))


def test_a_run_killed_at_a_random_update_resumes_bit_identical(tmp_path):
    subprocess.run(command(tmp_path / 'straight', tmp_path / 'straight.nd'), env=ENV,
                   check=True, capture_output=True, timeout=300)

    kill_after = int(np.random.default_rng().integers(1, UPDATES - 1))
    run = subprocess.Popen(command(tmp_path / 'killed', tmp_path / 'killed.nd'), env=ENV,
                           stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    for line in run.stdout:
        if line.strip() == f'update {kill_after}':
            os.kill(run.pid, signal.SIGKILL)   # maybe in the middle of the next save
            break
    run.wait(timeout=60)
    run.stdout.close()
    assert run.returncode == -signal.SIGKILL, f'killed after update {kill_after}'
    assert not os.path.exists(tmp_path / 'killed.nd')

    resumed = subprocess.run(command(tmp_path / 'killed', tmp_path / 'killed.nd'), env=ENV,
                             check=True, capture_output=True, text=True, timeout=300)
    start = int(resumed.stdout.splitlines()[0].split()[-1])
    assert kill_after <= start < UPDATES, resumed.stdout

    straight, killed = mx.nd.load(str(tmp_path / 'straight.nd')), mx.nd.load(
        str(tmp_path / 'killed.nd'))
    assert straight.keys() == killed.keys()
    for name in straight:
        np.testing.assert_array_equal(killed[name].asnumpy(), straight[name].asnumpy(),
                                      err_msg=f'{name} (killed after update {kill_after}, '
                                              f'resumed at {start})')
