"""The ``DMLC_*`` settings of a distributed job: read and checked in each process, written by
the launcher for each role.

MXNet's parameter server (ps-lite) starts one scheduler, ``DMLC_NUM_SERVER`` servers and
``DMLC_NUM_WORKER`` workers, each told its ``DMLC_ROLE`` and where the scheduler listens
(``DMLC_PS_ROOT_URI``, ``DMLC_PS_ROOT_PORT``). MXNet 1.9.1 aborts the process with a C++ check
when one is missing and waits forever when the processes disagree; here a bad value is named
before anything starts.
"""
import os
from dataclasses import dataclass

ROLES = ('scheduler', 'server', 'worker')
VARIABLES = ('DMLC_ROLE', 'DMLC_PS_ROOT_URI', 'DMLC_PS_ROOT_PORT', 'DMLC_NUM_SERVER',
             'DMLC_NUM_WORKER')
LAUNCH_HINT = ('start it with python -m gluonbert.distributed.launch -n WORKERS -s SERVERS '
               '-- COMMAND')


def _positive_int(name, value, minimum=1, maximum=None):
    try:
        number = int(value)
    except (TypeError, ValueError):
        number = None
    if number is None or str(value).strip() != str(number) or number < minimum \
            or (maximum is not None and number > maximum):
        bounds = f'in {minimum}..{maximum}' if maximum is not None else f'>= {minimum}'
        raise ValueError(f'{name}={value!r}; expected an integer {bounds}')
    return number


@dataclass(frozen=True)
class Cluster:
    """Where the scheduler listens, and how many servers and workers the job has."""
    root_uri: str
    root_port: int
    num_servers: int
    num_workers: int

    def __post_init__(self):
        if not isinstance(self.root_uri, str) or not self.root_uri.strip():
            raise ValueError(f'DMLC_PS_ROOT_URI={self.root_uri!r}; expected the IP address or '
                             f'host name of the scheduler')
        object.__setattr__(self, 'root_port',
                           _positive_int('DMLC_PS_ROOT_PORT', self.root_port, 1, 65535))
        object.__setattr__(self, 'num_servers',
                           _positive_int('DMLC_NUM_SERVER', self.num_servers))
        object.__setattr__(self, 'num_workers',
                           _positive_int('DMLC_NUM_WORKER', self.num_workers))

    def env(self, role, node_host=None):
        """The variables of a process of ``role``; ``node_host`` is the address it listens on
        (ps-lite picks the first non-loopback interface otherwise)."""
        if role not in ROLES:
            raise ValueError(f'role={role!r}; expected one of {ROLES}')
        env = {'DMLC_ROLE': role, 'DMLC_PS_ROOT_URI': self.root_uri,
               'DMLC_PS_ROOT_PORT': str(self.root_port),
               'DMLC_NUM_SERVER': str(self.num_servers),
               'DMLC_NUM_WORKER': str(self.num_workers)}
        if node_host is not None:
            env['DMLC_NODE_HOST'] = node_host
        return env

    def describe(self):
        return (f'scheduler at {self.root_uri}:{self.root_port}, {self.num_servers} server(s), '
                f'{self.num_workers} worker(s)')


def cluster_from_env(environ=None):
    """``(cluster, role)`` from the ``DMLC_*`` variables, or None when none is set.

    Raises ValueError naming the variable when some are missing or a value is malformed.
    """
    environ = os.environ if environ is None else environ
    present = [name for name in VARIABLES if environ.get(name) is not None]
    if not present:
        return None
    missing = [name for name in VARIABLES if name not in present]
    if missing:
        raise ValueError(f'{", ".join(present)} set but {", ".join(missing)} not: a process '
                         f'of a distributed job needs all of {", ".join(VARIABLES)}; '
                         f'{LAUNCH_HINT}')
    role = environ['DMLC_ROLE']
    if role not in ROLES:
        raise ValueError(f'DMLC_ROLE={role!r}; expected one of {", ".join(ROLES)}')
    cluster = Cluster(environ['DMLC_PS_ROOT_URI'], environ['DMLC_PS_ROOT_PORT'],
                      environ['DMLC_NUM_SERVER'], environ['DMLC_NUM_WORKER'])
    return cluster, role
