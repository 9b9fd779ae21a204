"""The full data sets (``../shared/data`` beside the repository, or ``$GLUONBERT_DATA``), for
the tests that need them: each skips, naming what is missing, on a clone that has none."""
from pathlib import Path

import pytest

from gluonbert.data.locate import DataNotFoundError

SHARED_DATA = Path(__file__).resolve().parents[2] / 'shared' / 'data'


def located(locate, what):
    """``locate()``'s result, or a skip saying that ``what`` was not found and where."""
    try:
        return locate()
    except DataNotFoundError as error:
        pytest.skip(f'needs {what} ({error})')


def shared_folder(name):
    """``../shared/data/<name>``, or a skip when this checkout has no such folder beside it."""
    folder = SHARED_DATA / name
    if not folder.is_dir():
        pytest.skip(f'needs {folder} (the full data set, absent beside this checkout)')
    return folder
