"""The export folder, written whole or not at all, by ``gluonbert.atomic.atomic_folder``.

An existing folder is replaced only when it is a previous export (it holds ``export.json``
and nothing but an export's files), and only with ``overwrite=True``; any other folder is
refused before any work is done, so exporting never deletes what a folder held.
"""
import os

from ..atomic import atomic_folder, check_replaceable
from ..data.tokenization import TOKENIZER_FILE

MODEL_FILE, INT8_FILE = 'model.onnx', 'model.int8.onnx'
VOCAB_FILE, LABELS_FILE, EXPORT_FILE = 'vocab.json', 'labels.json', 'export.json'
EXPORT_FILES = (MODEL_FILE, INT8_FILE, VOCAB_FILE, LABELS_FILE, TOKENIZER_FILE, EXPORT_FILE)
EXPORT_KIND = 'gluonbert ONNX export'


def check_export_folder(folder):
    """Raise FileExistsError unless ``folder`` is missing, empty or a previous export."""
    check_replaceable(os.path.abspath(folder), EXPORT_FILES, EXPORT_FILE, EXPORT_KIND)


def staged_folder(folder, overwrite=False):
    """A temporary folder that becomes the export ``folder`` when the block succeeds."""
    path = os.path.abspath(os.fspath(folder))
    if not overwrite and os.path.isdir(path) and os.listdir(path):
        raise FileExistsError(f'folder={path!r} exists and is not empty; pass overwrite=True '
                              f'to replace a previous export')
    return atomic_folder(path, EXPORT_FILES, EXPORT_FILE, EXPORT_KIND)


def write_bytes(path, data):
    with open(path, 'wb') as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())
