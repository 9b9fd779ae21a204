"""Bad distributed settings are refused up front with the value named: KVStore types, context
lists, DMLC_* variables, dist_async without an updater, and a scheduler that never answers."""
import os
import socket
import subprocess
import sys
import time

import mxnet as mx
import pytest

from gluonbert.devices import check_contexts
from gluonbert.distributed import Cluster, create_kvstore
from gluonbert.distributed.cluster import VARIABLES, cluster_from_env
from gluonbert.distributed.kvstore import resolve_update_on_kvstore
from gluonbert.distributed.watchdog import EXIT_NO_PROGRESS

JOB = {'DMLC_ROLE': 'worker', 'DMLC_PS_ROOT_URI': '127.0.0.1', 'DMLC_PS_ROOT_PORT': '9000',
       'DMLC_NUM_SERVER': '1', 'DMLC_NUM_WORKER': '2'}


@pytest.fixture
def job_env(monkeypatch):
    """This process as a worker of a two-worker job (nothing is started)."""
    for name, value in JOB.items():
        monkeypatch.setenv(name, value)
    return monkeypatch


@pytest.fixture(autouse=True)
def no_job_env(monkeypatch):
    for name in VARIABLES:
        monkeypatch.delenv(name, raising=False)


def test_an_unknown_kvstore_type_is_refused_by_name():
    with pytest.raises(ValueError, match="kvstore='dist_syn' is not a KVStore type; expected "
                                         "one of device, local, dist_sync, dist_device_sync, "
                                         "dist_async"):
        create_kvstore('dist_syn')


def test_an_empty_context_list_is_refused():
    with pytest.raises(ValueError, match='contexts is empty'):
        check_contexts([])


def test_a_gpu_that_does_not_exist_is_refused():
    missing = mx.gpu(mx.context.num_gpus())
    with pytest.raises(ValueError, match=rf'contexts\[1\]=gpu\({missing.device_id}\) does not '
                                         rf'exist: MXNet sees {missing.device_id} GPU'):
        check_contexts([mx.cpu(), missing])


def test_a_device_name_instead_of_a_context_is_refused():
    with pytest.raises(TypeError, match=r"contexts\[0\]='cpu:0' is a str; expected an "
                                        r"mx.Context"):
        check_contexts(['cpu:0'])


def test_a_context_listed_twice_is_refused():
    with pytest.raises(ValueError, match=r'name cpu\(1\) more than once'):
        check_contexts([mx.cpu(0), mx.cpu(1), mx.cpu(1)])


def test_a_dist_kvstore_without_dmlc_variables_says_how_to_launch():
    with pytest.raises(ValueError, match="kvstore='dist_sync' needs a scheduler and servers: "
                                         "this process has no DMLC_\\* variables; start it "
                                         "with python -m gluonbert.distributed.launch"):
        create_kvstore('dist_sync')


def test_missing_dmlc_variables_are_named(job_env):
    job_env.delenv('DMLC_NUM_SERVER')
    with pytest.raises(ValueError, match='but DMLC_NUM_SERVER not'):
        create_kvstore('dist_sync')


@pytest.mark.parametrize('name, value, expected', [
    ('DMLC_PS_ROOT_PORT', 'nine', "DMLC_PS_ROOT_PORT='nine'; expected an integer in 1..65535"),
    ('DMLC_PS_ROOT_PORT', '70000', "DMLC_PS_ROOT_PORT='70000'; expected an integer in"),
    ('DMLC_NUM_WORKER', '0', "DMLC_NUM_WORKER='0'; expected an integer >= 1"),
    ('DMLC_ROLE', 'master', "DMLC_ROLE='master'; expected one of scheduler, server, worker"),
    ('DMLC_PS_ROOT_URI', ' ', "DMLC_PS_ROOT_URI=' '; expected the IP address or host name"),
])
def test_a_malformed_dmlc_value_is_named(job_env, name, value, expected):
    job_env.setenv(name, value)
    with pytest.raises(ValueError, match=expected):
        create_kvstore('dist_sync')


def test_a_local_kvstore_in_a_worker_of_a_distributed_job_is_refused(job_env):
    with pytest.raises(ValueError, match="kvstore='device' keeps gradients on this machine, "
                                         "but this process is one of DMLC_NUM_WORKER=2 "
                                         "workers.*each would train alone"):
        create_kvstore('device')


def test_dist_async_without_an_updater_on_the_servers_is_refused():
    with pytest.raises(ValueError, match=r"kvstore='dist_async' .* needs the optimizer there "
                                         r"\(mxnet #11855.*update_on_kvstore=False is not "
                                         r"possible"):
        resolve_update_on_kvstore('dist_async', False)


def test_dist_async_updates_on_the_servers_and_sync_stores_on_the_workers():
    assert resolve_update_on_kvstore('dist_async') is True
    assert resolve_update_on_kvstore('dist_sync') is False
    assert resolve_update_on_kvstore('device', True) is True


def test_a_cluster_is_read_back_from_the_variables_it_writes():
    cluster = Cluster('127.0.0.1', 9000, 2, 3)
    assert cluster_from_env(cluster.env('server', '127.0.0.1')) == (cluster, 'server')


def _free_port():
    with socket.socket() as probe:
        probe.bind(('127.0.0.1', 0))
        return probe.getsockname()[1]


def test_a_worker_whose_scheduler_never_answers_exits_within_the_timeout():
    env = dict(os.environ, **JOB, DMLC_NODE_HOST='127.0.0.1')
    env['DMLC_PS_ROOT_PORT'] = str(_free_port())  # nothing listens there
    code = ('from gluonbert.distributed import create_kvstore\n'
            'create_kvstore("dist_sync", connect_timeout=2)\n')
    start = time.monotonic()
    done = subprocess.run([sys.executable, '-c', code], env=env, capture_output=True,
                          text=True, timeout=60)
    assert done.returncode == EXIT_NO_PROGRESS, done.stderr
    assert time.monotonic() - start < 60
    assert 'no progress for' in done.stderr and 'timeout 2 s' in done.stderr
    assert f'scheduler at 127.0.0.1:{env["DMLC_PS_ROOT_PORT"]}, 1 server(s), 2 worker(s)' \
        in done.stderr
