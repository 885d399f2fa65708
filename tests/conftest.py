"""Shared test helpers: where ../shared lives and skip reasons when it is absent."""
from __future__ import annotations

from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared"


def shared_path(*parts: str) -> Path:
    """Path under ../shared, or skip the test with the reason it is missing."""
    path = SHARED.joinpath(*parts)
    if not path.exists():
        pytest.skip(f"{path} not found: the real fixtures / golden files live in ../shared next to the checkout "
                    "(research-licensed, never copied into the repository)")
    return path


@pytest.fixture
def one_thread():
    """Tiny models on a shared 2-core box: one intra-op thread avoids thread thrashing."""
    import torch

    old = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(old)
