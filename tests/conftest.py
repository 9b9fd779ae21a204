"""Shared test set-up: no downloads, and no npx mode leaking from one test to the next."""
import os

import pytest
from mxnet import npx

os.environ['GLUONBERT_NO_DOWNLOAD'] = '1'


@pytest.fixture(autouse=True)
def legacy_mode_after_each_test():
    """d2l needs ``npx.set_np()``; a test that sets it must not change the next test's mode."""
    yield
    npx.reset_np()


@pytest.fixture
def np_mode():
    """Run the test as a d2l reader would: after ``npx.set_np()``."""
    npx.set_np()
    yield
    npx.reset_np()


def small_data_environment(folder):
    """Environment for subprocesses: ``$GLUONBERT_DATA`` (in ``folder``) holds only the
    slices shipped with gluonbert (WikiText-2 and SNLI), so runs are quick and never read the
    full data sets."""
    from gluonbert.data import embedded_slice_dir
    from gluonbert.data.nli import embedded_snli_dir
    data = folder / 'data'
    data.mkdir()
    (data / 'wikitext-2').symlink_to(embedded_slice_dir())
    (data / 'snli-1.0-devtest').symlink_to(embedded_snli_dir())
    return dict(os.environ, GLUONBERT_DATA=str(data), GLUONBERT_NO_DOWNLOAD='1',
                GLUONBERT_CACHE=str(folder / 'cache'))


@pytest.fixture
def small_data_env(tmp_path):
    """``small_data_environment`` in the test's own folder."""
    return small_data_environment(tmp_path)
