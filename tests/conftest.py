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
