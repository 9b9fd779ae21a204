"""A ``DMLC_ROLE`` left in the shell (or mistyped) stops gluonbert with one line before
``import mxnet`` would hang the process."""
import os
import subprocess
import sys

import pytest

from gluonbert.runtime import dmlc_role_problem

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def run(args, role):
    env = dict(os.environ, PYTHONPATH=REPO, DMLC_ROLE=role)
    return subprocess.run([sys.executable, *args], env=env, capture_output=True, text=True,
                          timeout=120)


@pytest.mark.parametrize('role', ['server', 'scheduler', 'Worker', ''])
@pytest.mark.parametrize('args', [['-m', 'gluonbert', '--help'],
                                  ['-m', 'gluonbert.distributed.launch', '-n', '1', '--',
                                   'true']])
def test_a_role_that_would_hang_import_mxnet_is_one_line_and_exit_2(args, role):
    result = run(args, role)
    assert result.returncode == 2, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and f'DMLC_ROLE={role!r}' in lines[0]


def test_in_a_program_it_is_a_value_error_not_a_hang():
    result = run(['-c', 'import gluonbert'], 'server')
    assert result.returncode == 1
    assert result.stderr.strip().splitlines()[-1].startswith("ValueError: DMLC_ROLE='server'")


def test_only_the_worker_role_is_safe_to_import_with():
    assert dmlc_role_problem({}) is None and dmlc_role_problem({'DMLC_ROLE': 'worker'}) is None
    assert 'waits forever' in dmlc_role_problem({'DMLC_ROLE': 'scheduler'})
    assert 'exactly' in dmlc_role_problem({'DMLC_ROLE': 'WORKER'})
