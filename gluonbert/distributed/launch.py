"""``python -m gluonbert.distributed.launch``: run a job on MXNet's parameter server.

    python -m gluonbert.distributed.launch -n 2 -s 2 -- python train.py --steps 100

starts here, on loopback addresses only, ps-lite's scheduler, ``-s`` servers and ``-n``
workers (the command after ``--``), each with its ``DMLC_*`` variables and a free port;
forwards their output line by line as ``[worker 1] ...``; and when one of them fails (a
non-zero status or a signal) stops the others and exits with the status of the first to fail
(128 + N for signal N), naming it. Each child has its own process group, killed at the end,
and dies with the launcher (``PR_SET_PDEATHSIG`` on Linux): none is left behind. MXNet's own
``tools/launch.py`` fails on Python >= 3.9 (``Thread.isAlive``) and leaves workers behind.

``worker i`` is the i-th worker started; its ``kv.rank`` is assigned by the scheduler and
may differ. Workers get ``OMP_NUM_THREADS`` = cores / workers, servers and the scheduler 1,
unless the variable is set.

Other hosts (nothing is started; the lines to run are printed):

- ``--launcher ssh --hosts a,b``: the variables and command of every process, per host;
- ``--launcher slurm``: one ``srun`` line; each task becomes its role with ``--task``;
- ``--launcher k8s``: the container command of an indexed Job, also with ``--task``.

``--task I --root-uri HOST`` makes this process task I of the ``1 + S + N`` tasks (0 the
scheduler, 1..S the servers, then the workers) and replaces it with that role's command.
"""
import argparse
import ctypes
import os
import shlex
import signal
import socket
import subprocess
import sys
import threading
import time

from ..option_types import (non_negative_float, non_negative_int, port, positive_float,
                            positive_int)
from .cluster import Cluster

LOOPBACK = '127.0.0.1'
DEFAULT_PORT = 9091
# ps-lite's scheduler and servers start on ``import mxnet`` when DMLC_ROLE says so
SERVER_COMMAND = ('python', '-c', 'import mxnet')
EXIT_TIMEOUT = 124
EXIT_CANNOT_START = 127  # as a shell for a command not found
PR_SET_PDEATHSIG = 1
POLL_SECONDS = 0.1


def roles(num_servers, num_workers):
    """``[(label, role)]`` of every process, in task order: scheduler, servers, workers."""
    return ([('scheduler', 'scheduler')]
            + [(f'server {i}', 'server') for i in range(num_servers)]
            + [(f'worker {i}', 'worker') for i in range(num_workers)])


def role_of_task(task, num_servers, num_workers):
    tasks = roles(num_servers, num_workers)
    if not 0 <= task < len(tasks):
        raise ValueError(f'--task {task}; expected 0..{len(tasks) - 1} for 1 scheduler, '
                         f'{num_servers} server(s) and {num_workers} worker(s)')
    return tasks[task]


def command_of(role, command):
    return list(SERVER_COMMAND) if role != 'worker' else list(command)


def _without_dmlc(environ):
    """``environ`` less the ``DMLC_*`` variables a shell may hold (a role, another job's
    interface or ports): a local job's processes get only the launcher's."""
    return {key: value for key, value in environ.items() if not key.startswith('DMLC_')}


def thread_settings(role, num_workers, environ):
    """``OMP_NUM_THREADS`` for a process of ``role`` sharing this machine's cores, unless set."""
    if 'OMP_NUM_THREADS' in environ:
        return {}
    cores = len(os.sched_getaffinity(0)) if hasattr(os, 'sched_getaffinity') else os.cpu_count()
    return {'OMP_NUM_THREADS': str(max(1, cores // num_workers) if role == 'worker' else 1)}


def free_port():
    """A TCP port on the loopback interface that nothing listens on now."""
    with socket.socket() as probe:
        probe.bind((LOOPBACK, 0))
        return probe.getsockname()[1]


def check_port_free(port):
    """ValueError naming ``port`` when something listens on it (the scheduler would fail on
    it with ps-lite's "bind failed" traceback)."""
    with socket.socket() as probe:
        try:
            probe.bind((LOOPBACK, port))
        except OSError as error:
            raise ValueError(f'--port {port} is busy on {LOOPBACK} ({error.strerror}): another '
                             f'process holds it; choose another --port, or leave it out for a '
                             f'free one') from None


def describe_status(code):
    if code < 0:
        return f'was killed by {signal.Signals(-code).name}'
    return f'exited with status {code}'


def exit_status(code):
    """A child's ``returncode`` as a shell exit status: 128 + N for signal N."""
    return 128 - code if code < 0 else code


class _CannotStart(Exception):
    pass


class _Interrupted(Exception):
    def __init__(self, signum):
        super().__init__(signum)
        self.signum = signum


class LocalJob:
    """The processes of one job on this machine: start, forward, supervise, stop."""

    def __init__(self, command, num_workers, num_servers, *, port=None, timeout=None,
                 grace=5.0, out=None, err=None):
        self.command = list(command)
        if port:
            check_port_free(port)
        self.cluster = Cluster(LOOPBACK, port or free_port(), num_servers, num_workers)
        self.timeout, self.grace = timeout, grace
        self.out = out or sys.stdout.buffer
        self.err = err or sys.stderr
        self.processes = []  # (label, role, Popen)
        self._lock = threading.Lock()
        self._forwarders = []

    def say(self, message):
        with self._lock:
            self.err.write(f'[launch] {message}\n')
            self.err.flush()

    def run(self):
        """Run the job to its end; return the launcher's exit status."""
        handlers = {signum: signal.signal(signum, self._interrupt)
                    for signum in (signal.SIGINT, signal.SIGTERM)}
        try:
            self._start()
            status = self._supervise()
        except _CannotStart as error:
            self.say(f'job failed: {error}')
            status = EXIT_CANNOT_START
        except _Interrupted as interrupted:
            self.say(f'{signal.Signals(interrupted.signum).name} received; stopping the job')
            status = 128 + interrupted.signum
        finally:
            for signum, handler in handlers.items():
                signal.signal(signum, handler)
            self._stop(patience=self.grace if self._all_workers_succeeded() else 0.0)
        return status

    @staticmethod
    def _interrupt(signum, frame):
        raise _Interrupted(signum)

    def _start(self):
        self.say(f'{self.cluster.describe()}; command: {shlex.join(self.command)}')
        launcher = os.getpid()
        for label, role in roles(self.cluster.num_servers, self.cluster.num_workers):
            env = dict(_without_dmlc(os.environ), **self.cluster.env(role, node_host=LOOPBACK),
                       PYTHONUNBUFFERED='1',
                       **thread_settings(role, self.cluster.num_workers, os.environ))
            command = command_of(role, self.command)
            if role != 'worker':
                command[0] = sys.executable
            try:
                process = subprocess.Popen(command, env=env, stdout=subprocess.PIPE,
                                           stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                           start_new_session=True,
                                           preexec_fn=_die_with(launcher))
            except OSError as error:
                raise _CannotStart(f'cannot start {label} ({shlex.join(command)}): '
                                   f'{error.strerror}') from error
            self.processes.append((label, role, process))
            self.say(f'started {label} (pid {process.pid})')
        # Forwarding threads start only now: fork with threads running (preexec_fn) can hang
        for label, _, process in self.processes:
            thread = threading.Thread(target=self._forward, args=(label, process.stdout),
                                      daemon=True)
            thread.start()
            self._forwarders.append(thread)

    def _forward(self, label, pipe):
        prefix = f'[{label}] '.encode()
        for line in iter(pipe.readline, b''):
            with self._lock:
                self.out.write(prefix + line if line.endswith(b'\n') else prefix + line + b'\n')
                self.out.flush()
        pipe.close()

    def _all_workers_succeeded(self):
        return all(p.poll() == 0 for _, role, p in self.processes if role == 'worker')

    def _supervise(self):
        deadline = None if self.timeout is None else time.monotonic() + self.timeout
        while True:
            for label, _, process in self.processes:
                code = process.poll()
                if code not in (None, 0):
                    others = sum(p.poll() is None for _, _, p in self.processes)
                    self.say(f'{label} (pid {process.pid}) {describe_status(code)}; stopping '
                             f'the {others} other running process(es)')
                    self.say(f'job failed: {label} {describe_status(code)} (exit status '
                             f'{exit_status(code)})')
                    return exit_status(code)
            if self._all_workers_succeeded():
                self.say(f'all {self.cluster.num_workers} worker(s) finished')
                return 0
            if deadline is not None and time.monotonic() > deadline:
                running = [label for label, _, p in self.processes if p.poll() is None]
                self.say(f'job failed: still running after --timeout {self.timeout:g} s '
                         f'({", ".join(running)}); stopping it')
                return EXIT_TIMEOUT
            time.sleep(POLL_SECONDS)

    def _stop(self, patience):
        """Let the children end by themselves for ``patience`` seconds, then SIGTERM their
        process groups, then SIGKILL what is left after ``grace`` seconds."""
        self._wait_all(patience)
        for signum, wait in ((signal.SIGTERM, self.grace), (signal.SIGKILL, self.grace)):
            for _, _, process in self.processes:
                if process.poll() is None:
                    _signal_group(process.pid, signum)
            self._wait_all(wait)
        for _, _, process in self.processes:
            # Descendants that outlived their group leader
            _signal_group(process.pid, signal.SIGKILL)
        for thread in self._forwarders:
            thread.join(timeout=self.grace)

    def _wait_all(self, seconds):
        deadline = time.monotonic() + seconds
        while any(p.poll() is None for _, _, p in self.processes) and \
                time.monotonic() < deadline:
            time.sleep(POLL_SECONDS)


def _signal_group(pgid, signum):
    try:
        os.killpg(pgid, signum)
    except (ProcessLookupError, PermissionError):
        pass


def _die_with(parent):
    """A ``preexec_fn``: the child gets SIGKILL when the launcher dies, even by SIGKILL."""
    if not sys.platform.startswith('linux'):
        return None
    libc = ctypes.CDLL(None, use_errno=True)

    def set_parent_death_signal():
        libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL)
        if os.getppid() != parent:  # the launcher died before prctl
            os.kill(os.getpid(), signal.SIGKILL)
    return set_parent_death_signal


# ---- several hosts -----------------------------------------------------------------------

def _env_line(env, command):
    return ' '.join(['env'] + [f'{k}={shlex.quote(v)}' for k, v in env.items()]
                    + [shlex.join(command)])


def ssh_plan(command, num_workers, num_servers, hosts, port):
    """The line to run on each host for each process (scheduler on the first host, servers
    and workers spread round-robin)."""
    cluster = Cluster(hosts[0], port, num_servers, num_workers)
    lines = [f'# {cluster.describe()}; run every line, in any order']
    folder = os.getcwd()
    counts = {'scheduler': 0, 'server': 0, 'worker': 0}
    for label, role in roles(num_servers, num_workers):
        host = hosts[counts[role] % len(hosts)] if role != 'scheduler' else hosts[0]
        counts[role] += 1
        env = cluster.env(role, node_host=host)
        remote = f'cd {shlex.quote(folder)} && ' + _env_line(env, command_of(role, command))
        lines.append(f'ssh {host} {shlex.quote(remote)}  # {label}')
    return '\n'.join(lines)


def _task_command(num_workers, num_servers, port, root_uri, task, command):
    return (['python', '-m', 'gluonbert.distributed.launch', '--task', task, '--root-uri',
             root_uri, '--port', str(port), '-n', str(num_workers), '-s', str(num_servers),
             '--'] + list(command))


def slurm_plan(command, num_workers, num_servers, port):
    tasks = 1 + num_servers + num_workers
    inner = shlex.join(_task_command(num_workers, num_servers, port, 'ROOT', 'TASK', command))
    inner = inner.replace('ROOT', '"$(scontrol show hostnames "$SLURM_JOB_NODELIST" | '
                          'head -n 1)"').replace('TASK', '"$SLURM_PROCID"')
    return (f'# {tasks} tasks: 0 the scheduler, 1..{num_servers} the servers, then the '
            f'workers; --kill-on-bad-exit stops the job when one fails\n'
            f'srun --ntasks={tasks} --kill-on-bad-exit=1 bash -c {shlex.quote(inner)}')


def k8s_plan(command, num_workers, num_servers, port):
    tasks = 1 + num_servers + num_workers
    inner = shlex.join(_task_command(num_workers, num_servers, port, 'ROOT', 'TASK', command))
    inner = inner.replace('ROOT', '"$JOB_NAME-0.$SERVICE"').replace(
        'TASK', '"$JOB_COMPLETION_INDEX"')
    return (f'# an indexed Job: completions={tasks}, parallelism={tasks}, '
            f'completionMode=Indexed, backoffLimit=0, a headless Service $SERVICE for its pods '
            f'(pod 0 is the scheduler); container command:\n'
            f'bash -c {shlex.quote(inner)}')


def run_task(task, root_uri, port, num_workers, num_servers, node_host, command):
    """Replace this process by task ``task``'s role, with its variables."""
    label, role = role_of_task(task, num_servers, num_workers)
    cluster = Cluster(root_uri, port, num_servers, num_workers)
    if role == 'scheduler':
        node_host = node_host or root_uri
    env = dict(os.environ, **cluster.env(role, node_host=node_host), PYTHONUNBUFFERED='1')
    command = command_of(role, command)
    if role != 'worker':
        command[0] = sys.executable
    sys.stderr.write(f'[launch] task {task} is the {label}: {cluster.describe()}\n')
    sys.stderr.flush()
    os.execvpe(command[0], command, env)


# ---- command line ------------------------------------------------------------------------

def _parser():
    parser = argparse.ArgumentParser(
        prog='python -m gluonbert.distributed.launch',
        description='Run a command as the workers of a job on MXNet\'s parameter server.',
        epilog='example: python -m gluonbert.distributed.launch -n 2 -s 2 -- '
               'python -m gluonbert pretrain --steps 20')
    parser.add_argument('-n', '--num-workers', type=positive_int, default=1)
    parser.add_argument('-s', '--num-servers', type=positive_int,
                        help='parameter servers (default: as many as workers)')
    parser.add_argument('--launcher', choices=['local', 'ssh', 'slurm', 'k8s'], default='local',
                        help='local: run here; ssh, slurm, k8s: print what to run')
    parser.add_argument('--hosts', help='ssh: comma-separated hosts; the first runs the '
                        'scheduler')
    parser.add_argument('--port', type=port, help='the scheduler\'s port (local: a free one; '
                        f'other launchers: {DEFAULT_PORT})')
    parser.add_argument('--timeout', type=positive_float,
                        help='local: stop the job and exit 124 after this many seconds')
    parser.add_argument('--grace', type=non_negative_float, default=5.0,
                        help='seconds between SIGTERM and SIGKILL when stopping (default 5)')
    parser.add_argument('--task', type=non_negative_int, help='run as task TASK of 1 + S + N')
    parser.add_argument('--root-uri', help='with --task: the scheduler\'s address')
    parser.add_argument('--node-host', help='with --task: the address this task listens on')
    parser.add_argument('command', nargs=argparse.REMAINDER,
                        help='-- then the worker command')
    return parser


def main(argv=None):
    parser = _parser()
    opts = parser.parse_args(argv)
    command = opts.command[1:] if opts.command[:1] == ['--'] else opts.command
    if not command:
        parser.error('no worker command; put it after --, e.g. -- python train.py')
    num_servers = opts.num_workers if opts.num_servers is None else opts.num_servers
    port = opts.port or DEFAULT_PORT
    try:
        if opts.task is not None:
            if not opts.root_uri:
                parser.error('--task needs --root-uri, the scheduler\'s address')
            run_task(opts.task, opts.root_uri, port, opts.num_workers, num_servers,
                     opts.node_host, command)
        if opts.launcher == 'ssh':
            if not opts.hosts:
                parser.error('--launcher ssh needs --hosts, e.g. --hosts node1,node2')
            print(ssh_plan(command, opts.num_workers, num_servers,
                           [h.strip() for h in opts.hosts.split(',') if h.strip()], port))
            return 0
        if opts.launcher == 'slurm':
            print(slurm_plan(command, opts.num_workers, num_servers, port))
            return 0
        if opts.launcher == 'k8s':
            print(k8s_plan(command, opts.num_workers, num_servers, port))
            return 0
        job = LocalJob(command, opts.num_workers, num_servers, port=opts.port,
                       timeout=opts.timeout, grace=opts.grace)
        return job.run()
    except ValueError as error:
        parser.error(str(error))


if __name__ == '__main__':
    sys.exit(main())
