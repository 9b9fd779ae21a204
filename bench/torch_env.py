"""A separate virtual environment with torch and HF transformers, for comparisons with HF.

torch stays out of ``.venv`` and ``requirements.txt``: MXNet's pins (numpy 1.23.5) and
torch's do not mix. The first benchmark that needs it creates ``bench/.venv-torch`` (a
download of about 1 GB; git-ignored by a ``.gitignore`` inside it); later runs reuse it.
"""
import os
import subprocess
import sys

VENV = os.path.join(os.path.dirname(os.path.abspath(__file__)), '.venv-torch')
PYTHON = os.path.join(VENV, 'bin', 'python')
PACKAGES = ['torch==2.13.0', 'transformers==5.17.0', 'numpy']
# Written once pip has succeeded, so that a half-made environment is made again
DONE = os.path.join(VENV, 'installed.txt')


def torch_python():
    """The environment's interpreter, creating the environment on first use. Raises
    ``RuntimeError`` saying why when it cannot be created (no network, say)."""
    wanted = '\n'.join(PACKAGES)
    if os.path.exists(DONE) and open(DONE).read() == wanted:
        return PYTHON
    print(f'creating {VENV} ({", ".join(PACKAGES)}): once, a few minutes', flush=True)
    _run([sys.executable, '-m', 'venv', '--clear', VENV])
    with open(os.path.join(VENV, '.gitignore'), 'w') as f:
        f.write('*\n')
    _run([PYTHON, '-m', 'pip', 'install', '--quiet', *PACKAGES])
    with open(DONE, 'w') as f:
        f.write(wanted)
    return PYTHON


# What HF's Trainer needs beyond transformers (bench/real_time_to_accuracy.py), installed
# beside the environment (``EXTRAS``, on PYTHONPATH) so that the environment stays as made
TRAINER_PACKAGES = ['accelerate==1.15.0', 'psutil']
EXTRAS = os.path.join(os.path.dirname(os.path.abspath(__file__)), '.torch-extras')


def trainer_path():
    """A folder holding ``TRAINER_PACKAGES`` for the environment's interpreter (put it on
    PYTHONPATH), installed on first use; RuntimeError saying why when it cannot be."""
    python = torch_python()
    wanted = '\n'.join(TRAINER_PACKAGES)
    done = os.path.join(EXTRAS, 'installed.txt')
    if os.path.exists(done) and open(done).read() == wanted:
        return EXTRAS
    print(f'installing {", ".join(TRAINER_PACKAGES)} into {EXTRAS}: once', flush=True)
    _run([python, '-m', 'pip', 'install', '--quiet', '--no-deps', '--upgrade', '--target',
          EXTRAS, *TRAINER_PACKAGES])
    with open(os.path.join(EXTRAS, '.gitignore'), 'w') as f:
        f.write('*\n')
    with open(done, 'w') as f:
        f.write(wanted)
    return EXTRAS


def _run(command):
    done = subprocess.run(command, capture_output=True, text=True)
    if done.returncode:
        tail = (done.stderr or done.stdout).strip().splitlines()[-3:]
        raise RuntimeError(f'{" ".join(command[1:4])} failed: ' + ' | '.join(tail))


def active():
    """Whether this process runs in that environment."""
    return os.path.realpath(sys.prefix) == os.path.realpath(VENV)
