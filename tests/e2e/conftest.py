"""End-to-end runs of the whole pipeline: marked ``slow`` (still part of CI; ``-m "not slow"``
skips them for a quick local loop)."""
import pytest


def pytest_collection_modifyitems(config, items):
    for item in items:
        if "/e2e/" in str(item.fspath).replace("\\", "/"):
            item.add_marker(pytest.mark.slow)
