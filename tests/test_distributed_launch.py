"""Real jobs on MXNet's parameter server, on 127.0.0.1: dist_sync equals one process on the
union of the workers' batches, failures stop the job with the failed process named and its
status, a SIGKILLed worker leaves nothing behind and the run resumes with another number of
workers, and the printed multi-host plans carry every process's variables."""
import json
import os
import random
import re
import signal
import subprocess
import sys
import time
import uuid

import mxnet as mx
import numpy as np
import pytest

from gluonbert.data.synthetic import synthetic_pretraining_batch
from gluonbert.distributed.launch import free_port, main as launch_main
from gluonbert.distributed.watchdog import EXIT_NO_PROGRESS
from test_data_corpus import write_corpus
from test_parallel_step import MAX_LEN, VOCAB_SIZE, pretraining_engine, sgd_trainer, tiny_bert

TESTS = os.path.dirname(os.path.abspath(__file__))
LAUNCH = [sys.executable, '-m', 'gluonbert.distributed.launch']
MARKER = 'GLUONBERT_TEST_JOB'
TINY_JOB = ['--synthetic', '--vocab-size', '60', '--num-hiddens', '16', '--ffn-num-hiddens', '32',
            '--num-blks', '1', '--max-len', '12', '--batch-size', '7', '--dropout', '0',
            '--optimizer', 'sgd', '--lr', '0.1', '--log-every', '1000']


def processes_of(job_id):
    """Live processes (not zombies) whose environment carries this test job's marker."""
    needle = f'{MARKER}={job_id}'.encode()
    found = []
    for entry in os.listdir('/proc'):
        if not entry.isdigit():
            continue
        try:
            with open(f'/proc/{entry}/environ', 'rb') as f:
                if needle in f.read().split(b'\0'):
                    found.append(int(entry))
        except OSError:
            continue
    return found


class Jobs:
    """Starts launchers and tasks marked with a fresh id; kills whatever is left at the end."""

    def __init__(self):
        self.job_id = uuid.uuid4().hex
        self.env = dict(os.environ, **{MARKER: self.job_id}, PYTHONUNBUFFERED='1')
        self.started = []

    def start(self, args, **output):
        output = dict(dict(stdout=subprocess.PIPE, stderr=subprocess.PIPE), **output)
        process = subprocess.Popen(args, env=self.env, cwd=TESTS, text=True,
                                   start_new_session=True, **output)
        self.started.append(process)
        return process

    def run(self, args, timeout=120):
        process = self.start(args)
        out, err = process.communicate(timeout=timeout)
        return process.returncode, out, err

    def leftovers(self, wait=5.0):
        """Marked processes still alive after up to ``wait`` seconds."""
        deadline = time.monotonic() + wait
        while processes_of(self.job_id) and time.monotonic() < deadline:
            time.sleep(0.1)
        return processes_of(self.job_id)

    def clean_up(self):
        for process in self.started:
            if process.poll() is None:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait()
        for pid in processes_of(self.job_id):
            os.kill(pid, signal.SIGKILL)


@pytest.fixture
def jobs():
    jobs = Jobs()
    yield jobs
    jobs.clean_up()


def single_process_pretraining(batch_sizes):
    """The tiny BERT trained by one process on one context, on the same global batches."""
    net = tiny_bert([mx.cpu()])
    engine = pretraining_engine(net, [mx.cpu()], sgd_trainer(net, 'device'))
    for step, size in enumerate(batch_sizes):
        engine.step(synthetic_pretraining_batch(step, size, vocab_size=VOCAB_SIZE,
                                                max_len=MAX_LEN))
    return {name: p.data().asnumpy() for name, p in net._collect_params_with_prefix().items()}


def run_workers(jobs, out_dir, num_workers, kvstore, sizes, data='global'):
    return jobs.run(LAUNCH + ['-n', str(num_workers), '-s', '2', '--timeout', '100', '--',
                              sys.executable, 'distributed_worker.py', str(out_dir),
                              ','.join(map(str, sizes)), 'cpu:0,cpu:1', kvstore, data])


@pytest.mark.parametrize('kvstore, data', [('dist_sync', 'global'),
                                           ('dist_device_sync', 'global'),
                                           ('dist_sync', 'shares')])
def test_synchronous_workers_equal_one_process_on_the_union_of_their_batches(
        jobs, tmp_path, kvstore, data):
    # 2 workers x 2 contexts; a batch of 1 leaves worker 1 idle and one context of worker 0.
    # 'shares': each worker steps on its own share only, and the global batch's masked
    # positions (which scale every share's MLM loss) are summed over the workers
    sizes = [7, 5, 1, 6]
    code, out, err = run_workers(jobs, tmp_path, 2, kvstore, sizes, data)
    assert code == 0, err
    assert sorted(re.findall(r'\[worker \d\] rank (\d) of 2 done', out)) == ['0', '1']
    ranks = [mx.nd.load(str(tmp_path / f'rank-{r}.nd')) for r in (0, 1)]
    expected = single_process_pretraining(sizes)
    assert ranks[0].keys() == ranks[1].keys() == expected.keys()
    for name, value in expected.items():
        np.testing.assert_array_equal(ranks[1][name].asnumpy(), ranks[0][name].asnumpy(),
                                      err_msg=f'{name} differs between the workers')
        np.testing.assert_allclose(ranks[0][name].asnumpy(), value, rtol=1e-5, atol=1e-6,
                                   err_msg=name)
    assert jobs.leftovers() == []


def test_workers_judge_a_loss_spike_on_the_global_batch_and_skip_it_together(jobs, tmp_path):
    # The spike is planted in worker 0's slice only: judged on its own loss, worker 0 would
    # skip the step while worker 1 applied it, and their parameters would part
    code, out, err = jobs.run(LAUNCH + ['-n', '2', '-s', '1', '--timeout', '100', '--',
                                        sys.executable, 'spike_guard_worker.py', str(tmp_path),
                                        '10', '7'])
    assert code == 0, err
    outcomes = [json.loads((tmp_path / f'rank-{r}.json').read_text()) for r in (0, 1)]
    assert outcomes[0] == outcomes[1] == ['applied'] * 7 + ['skipped'] + ['applied'] * 2
    ranks = [mx.nd.load(str(tmp_path / f'rank-{r}.nd')) for r in (0, 1)]
    for name, value in ranks[0].items():
        np.testing.assert_array_equal(ranks[1][name].asnumpy(), value.asnumpy(), err_msg=name)
    assert jobs.leftovers() == []


def test_dist_async_updates_on_the_servers_as_one_process_would_with_one_worker(
        jobs, tmp_path):
    sizes = [7, 5, 1, 6]
    code, _, err = run_workers(jobs, tmp_path, 1, 'dist_async', sizes)
    assert code == 0, err
    updated = mx.nd.load(str(tmp_path / 'rank-0.nd'))
    for name, value in single_process_pretraining(sizes).items():
        np.testing.assert_allclose(updated[name].asnumpy(), value, rtol=1e-5, atol=1e-6,
                                   err_msg=name)
    assert jobs.leftovers() == []


def test_the_first_failure_stops_the_job_with_its_status_and_prefixed_output(jobs):
    # Each worker prints, then fails a little later, so that both have printed under load
    failing = [sys.executable, '-c', "import time; print('hello from a worker', flush=True); "
               "time.sleep(3); raise SystemExit(3)"]
    code, out, err = jobs.run(LAUNCH + ['-n', '2', '-s', '1', '--'] + failing, timeout=60)
    assert code == 3
    assert '[worker 0] hello from a worker' in out and '[worker 1] hello from a worker' in out
    assert re.search(r'job failed: worker \d exited with status 3', err), err
    assert jobs.leftovers() == []


def started_pids(process, count):
    """``{label: pid}`` from the launcher's first ``count`` 'started' lines."""
    pids = {}
    while len(pids) < count:
        line = process.stderr.readline()
        assert line, 'the launcher ended before starting every process'
        match = re.match(r'\[launch\] started (.+) \(pid (\d+)\)', line)
        if match:
            pids[match.group(1)] = int(match.group(2))
    return pids


def test_a_killed_server_stops_the_job_naming_it(jobs):
    sleeping = [sys.executable, '-c', 'import time; time.sleep(120)']
    launcher = jobs.start(LAUNCH + ['-n', '1', '-s', '2', '--'] + sleeping)
    pids = started_pids(launcher, 4)
    os.kill(pids['server 1'], signal.SIGKILL)
    _, err = launcher.communicate(timeout=60)
    assert launcher.returncode == 128 + signal.SIGKILL
    assert f'server 1 (pid {pids["server 1"]}) was killed by SIGKILL' in err
    assert jobs.leftovers() == []


def test_killing_the_launcher_takes_every_process_of_the_job_with_it(jobs):
    sleeping = [sys.executable, '-c', 'import time; time.sleep(120)']
    launcher = jobs.start(LAUNCH + ['-n', '2', '-s', '1', '--'] + sleeping)
    started_pids(launcher, 4)
    os.kill(launcher.pid, signal.SIGKILL)
    launcher.wait(timeout=10)
    assert jobs.leftovers() == []


def newest_checkpoint(folder):
    steps = [name for name in os.listdir(folder) if name.startswith('step-')]
    return os.path.join(folder, max(steps)) if steps else None


def test_a_sigkilled_worker_stops_the_job_and_the_run_resumes_with_another_worker_count(
        jobs, tmp_path):
    checkpoints = tmp_path / 'checkpoints'
    pretrain = [sys.executable, '-m', 'gluonbert', 'pretrain'] + TINY_JOB + [
        '--out', str(tmp_path / 'pretrained')]
    launcher = jobs.start(LAUNCH + ['-n', '2', '-s', '1', '--'] + pretrain + [
        '--steps', '100000', '--checkpoint-dir', str(checkpoints), '--checkpoint-every', '1'])
    worker = started_pids(launcher, 4)['worker 1']
    deadline = time.monotonic() + 60
    while not (checkpoints.exists() and newest_checkpoint(checkpoints)):
        assert time.monotonic() < deadline and launcher.poll() is None, 'no checkpoint'
        time.sleep(0.1)
    os.kill(worker, signal.SIGKILL)
    killed_at = time.monotonic()
    out, err = launcher.communicate(timeout=60)
    assert launcher.returncode == 128 + signal.SIGKILL
    assert time.monotonic() - killed_at < 30
    assert 'job failed: worker 1 was killed by SIGKILL (exit status 137)' in err
    assert jobs.leftovers() == []
    loggers = {line.split(']')[0] for line in out.splitlines() if line.startswith('[worker')}
    assert len(loggers) == 1, out  # only rank 0 logs

    start = int(os.path.basename(newest_checkpoint(checkpoints))[len('step-'):])
    steps = ['--steps', str(start + 3)]
    code, out, err = jobs.run(LAUNCH + ['-n', '1', '-s', '1', '--'] + pretrain + steps + [
        '--checkpoint-dir', str(checkpoints), '--resume'])
    assert code == 0, err
    assert f'resumed from step {start} ' in out
    code, _, err = jobs.run(pretrain + steps + ['--checkpoint-dir', str(tmp_path / 'straight')])
    assert code == 0, err
    resumed = mx.nd.load(os.path.join(newest_checkpoint(checkpoints), 'params.nd'))
    straight = mx.nd.load(os.path.join(newest_checkpoint(tmp_path / 'straight'), 'params.nd'))
    assert resumed.keys() == straight.keys()
    for name, value in straight.items():
        np.testing.assert_allclose(resumed[name].asnumpy(), value.asnumpy(), rtol=1e-5,
                                   atol=1e-6, err_msg=f'{name} (resumed at step {start})')


@pytest.mark.slow
def test_each_worker_of_a_corpus_run_reads_only_its_own_shards(jobs, tmp_path):
    corpus = tmp_path / 'corpus.txt'
    write_corpus(corpus, 150, random.Random(0))
    jobs.env['GLUONBERT_CACHE'] = str(tmp_path / 'cache')
    pretrain = [sys.executable, 'audited_run.py', str(tmp_path / 'opened'), 'gluonbert',
                'pretrain', '--corpus', str(corpus), '--learn-vocab', '120', '--shard-size',
                '16', '--num-hiddens', '16', '--ffn-num-hiddens', '32', '--num-heads', '2',
                '--num-blks', '1', '--max-len', '32', '--batch-size', '7', '--steps', '4',
                '--log-every', '1', '--checkpoint-dir', str(tmp_path / 'checkpoints'),
                '--out', str(tmp_path / 'pretrained')]
    code, out, err = jobs.run(LAUNCH + ['-n', '2', '-s', '1', '--'] + pretrain, timeout=300)
    assert code == 0, err
    assert jobs.leftovers() == []
    shards = sorted(os.listdir(next((tmp_path / 'cache').glob('corpus-*')) / 'train'))
    assert len(shards) >= 4
    match = re.search(r'2 workers, each reading its own shards \((\d+) of (\d+) here\): an '
                      r'epoch is (\d+) global batches', out)
    assert match and int(match.group(2)) == len(shards), out
    assert re.search(r'MLM loss \d+\.\d+, NSP loss \d+\.\d+ \(mean over steps 4-4\)', out), out
    opened = [set(log.read_text().split()) for log in tmp_path.glob('opened.*')]
    assert len(opened) == 2 and all(opened), opened  # the two workers (the servers read none)
    rank_0, rank_1 = set(shards[0::2]), set(shards[1::2])
    for files in opened:
        assert files <= rank_0 or files <= rank_1, f'a worker read {sorted(files)}'
    assert (opened[0] <= rank_0) != (opened[1] <= rank_0), opened  # one worker each


def test_tasks_become_their_roles_as_under_slurm_or_kubernetes(jobs):
    port = str(free_port())
    push = ('import mxnet as mx\n'
            'kv = mx.kv.create("dist_sync")\n'
            'kv.init(0, mx.nd.zeros(2))\n'
            'kv.push(0, mx.nd.ones(2) * (kv.rank + 1))\n'
            'out = mx.nd.zeros(2)\n'
            'kv.pull(0, out=out)\n'
            'print("pulled", out.asnumpy().tolist())\n')
    tasks = [jobs.start(LAUNCH + ['--task', str(task), '--root-uri', '127.0.0.1', '--node-host',
                                  '127.0.0.1', '--port', port, '-n', '2', '-s', '1', '--',
                                  sys.executable, '-c', push])
             for task in range(4)]
    results = [task.communicate(timeout=60) for task in tasks]
    assert [task.returncode for task in tasks] == [0, 0, 0, 0]
    assert 'task 0 is the scheduler' in results[0][1] and 'task 3 is the worker 1' in \
        results[3][1]
    assert [out.strip() for out, _ in results[2:]] == ['pulled [3.0, 3.0]'] * 2


def test_without_a_launcher_a_worker_whose_peer_died_exits_within_its_timeout(
        jobs, tmp_path):
    port = str(free_port())
    pretrain = [sys.executable, '-m', 'gluonbert', 'pretrain'] + TINY_JOB + [
        '--steps', '100000', '--log-every', '1', '--timeout', '5',
        '--checkpoint-dir', str(tmp_path / 'checkpoints'), '--out', str(tmp_path / 'model')]
    logs = [tmp_path / f'task-{task}.log' for task in range(4)]
    tasks = []
    for task, log in enumerate(logs):
        with open(log, 'w') as f:
            tasks.append(jobs.start(LAUNCH + ['--task', str(task), '--root-uri', '127.0.0.1',
                                              '--node-host', '127.0.0.1', '--port', port,
                                              '-n', '2', '-s', '1', '--'] + pretrain,
                                    stdout=f, stderr=subprocess.STDOUT))
    deadline = time.monotonic() + 60
    while not any('step 3/' in log.read_text() for log in logs[2:]):
        assert time.monotonic() < deadline, 'training did not start'
        time.sleep(0.1)
    os.kill(tasks[3].pid, signal.SIGKILL)
    assert tasks[2].wait(timeout=60) == EXIT_NO_PROGRESS
    assert re.search(r'no progress for \d+ s \(timeout 5 s\) while waiting for step \d+ to '
                     r'complete', logs[2].read_text())


def test_the_ssh_plan_gives_every_process_its_host_and_variables(capsys):
    assert launch_main(['--launcher', 'ssh', '--hosts', 'node1,node2', '-n', '2', '-s', '1',
                        '--port', '9000', '--', 'python', 'train.py']) == 0
    plan = capsys.readouterr().out.splitlines()
    assert plan[0].startswith('# scheduler at node1:9000, 1 server(s), 2 worker(s)')
    assert [line.rsplit('# ', 1)[1] for line in plan[1:]] == [
        'scheduler', 'server 0', 'worker 0', 'worker 1']
    worker_1 = plan[4]
    assert worker_1.startswith('ssh node2 ')
    for variable in ('DMLC_ROLE=worker', 'DMLC_PS_ROOT_URI=node1', 'DMLC_PS_ROOT_PORT=9000',
                     'DMLC_NUM_SERVER=1', 'DMLC_NUM_WORKER=2', 'DMLC_NODE_HOST=node2'):
        assert variable in worker_1
    assert 'python train.py' in worker_1 and 'import mxnet' in plan[1]


@pytest.mark.parametrize('launcher, task_variable', [('slurm', '$SLURM_PROCID'),
                                                      ('k8s', '$JOB_COMPLETION_INDEX')])
def test_the_slurm_and_k8s_plans_run_each_task_as_its_role(capsys, launcher, task_variable):
    assert launch_main(['--launcher', launcher, '-n', '2', '-s', '2', '--', 'python',
                        'train.py']) == 0
    plan = capsys.readouterr().out
    assert '--task' in plan and task_variable in plan and '-n 2 -s 2 -- python train.py' in plan
    assert ('srun --ntasks=5 --kill-on-bad-exit=1' in plan) == (launcher == 'slurm')


def test_a_port_already_taken_is_one_line_naming_it(capsys):
    import socket
    with socket.socket() as taken:
        taken.bind(('127.0.0.1', 0))
        taken.listen()
        port = taken.getsockname()[1]
        with pytest.raises(SystemExit) as stopped:
            launch_main(['-n', '1', '-s', '1', '--port', str(port), '--', sys.executable, '-c',
                         'pass'])
    assert stopped.value.code == 2
    err = capsys.readouterr().err
    assert f'error: --port {port} is busy on 127.0.0.1 (Address already in use): another ' \
           f'process holds it; choose another --port' in err and 'Traceback' not in err, err
