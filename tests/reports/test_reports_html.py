"""report.html is self-contained and renders in headless Chromium (tables and images in the DOM)."""
from __future__ import annotations

import re
import shutil
import subprocess

import pytest

from reports.build import build
from tests.support import make_results

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser") or "/usr/bin/chromium"
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync"]


@pytest.fixture(scope="module")
def report(tmp_path_factory):
    root = tmp_path_factory.mktemp("html")
    make_results(root, seeds=(0, 1), skip={("mcc", "prediction", 0.1, None)})
    build(root, root / "out")
    return root / "out" / "report.html"


def test_html_is_self_contained(report):
    text = report.read_text(encoding="utf-8")
    assert not re.search(r"""(src|href)\s*=\s*["'](https?:|//|file:)""", text)  # nothing fetched from outside
    assert text.count('src="data:image/png;base64,') == 4
    assert text.count('<table class="result"') == 4   # Tables 1-3 and the recognition table
    assert "SYNTHETIC data (synthetic-ntu, synthetic-pkummd)" in text
    for needle in ("Provenance", "0123456789", "cpu (x86_64, 2 cores)", "total wall time", "config "):
        assert needle in text


def test_renders_in_headless_chromium(report, tmp_path):
    if not shutil.which(CHROMIUM):
        pytest.skip("chromium is not installed (apt-get install -y chromium); the HTML render check needs it")
    try:
        proc = subprocess.run([CHROMIUM, *FLAGS, f"--user-data-dir={tmp_path / 'profile'}", "--dump-dom",
                               report.resolve().as_uri()], capture_output=True, text=True, timeout=120)
    except (OSError, subprocess.TimeoutExpired) as err:
        pytest.skip(f"chromium could not run here: {err}")
    if proc.returncode != 0 or "<html" not in proc.stdout:
        pytest.skip(f"chromium could not render (exit {proc.returncode}): {proc.stderr[-300:]}")
    dom = proc.stdout
    assert len(re.findall(r'<table class="result" data-table="table[123]"', dom)) == 3
    assert all(f'data-table="{k}"' in dom for k in ("table1", "table2", "table3"))
    # the page's load handler stamps each decoded image with its pixel width: all four decoded
    widths = [int(w) for w in re.findall(r'data-rendered-width="(\d+)"', dom)]
    assert len(widths) == 4 and min(widths) > 100
    assert "MCC" in dom and "Hi-TRS-3s" in dom and "SYNTHETIC data" in dom
