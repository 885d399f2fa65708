"""Fixtures every test folder shares; helpers live in tests/support.py."""
from __future__ import annotations

import os
import shutil
import tempfile

import pytest


def pytest_configure(config):
    """One synthetic world per test session, in a temporary folder (not the checkout's .cache):
    tests/support.py reads HITRS_TEST_CACHE when it is imported, after this hook."""
    if "HITRS_TEST_CACHE" not in os.environ:
        folder = tempfile.mkdtemp(prefix="hitrs-test-cache-")
        os.environ["HITRS_TEST_CACHE"] = folder
        config._hitrs_test_cache = folder


def pytest_unconfigure(config):
    folder = getattr(config, "_hitrs_test_cache", None)
    if folder:
        shutil.rmtree(folder, ignore_errors=True)
        os.environ.pop("HITRS_TEST_CACHE", None)


@pytest.fixture
def one_thread():
    """Tiny models on a shared 2-core box: one intra-op thread avoids thread thrashing."""
    import torch

    old = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(old)
