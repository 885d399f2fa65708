"""Text from records (names, ids, metric keys) escaped for the format it goes into.

Records are data anyone can drop into a results folder: a name like ``=HYPERLINK(...)`` must not
become a spreadsheet formula in ``summary.csv`` or the tables' CSV, and ``<script>`` or ``|`` in
a name must not become HTML or break a row in the Markdown tables. HTML pages escape with
``html.escape`` (``reports/html.py``), LaTeX with ``tables.tex_escape``.
"""
from __future__ import annotations

import html
from typing import Any

import pandas as pd

FORMULA_PREFIXES = ("=", "+", "-", "@", "\t", "\r")


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def csv_cell(value: Any) -> Any:
    """A CSV cell a spreadsheet shows as text: text starting with ``= + - @``, a tab or a CR gets a
    leading ``'`` (OWASP's rule), except plain numbers and the lone ``-`` (random-init levels),
    which no spreadsheet evaluates. Non-text values pass unchanged."""
    if isinstance(value, str) and value.startswith(FORMULA_PREFIXES) and value != "-" and not _is_number(value):
        return "'" + value
    return value


def csv_frame(df: pd.DataFrame) -> pd.DataFrame:
    """``df`` with every text cell and column name through :func:`csv_cell`."""
    out = df.copy()
    for col in out.columns:
        if not (pd.api.types.is_numeric_dtype(out[col]) or pd.api.types.is_bool_dtype(out[col])):
            out[col] = out[col].astype(object).map(csv_cell)   # object or pandas' string dtype
    out.columns = [csv_cell(c) if isinstance(c, str) else c for c in out.columns]
    return out


def md_text(value: Any) -> str:
    """Text for a Markdown line or table cell: HTML escaped (``& < >``), ``|`` and brackets
    backslash-escaped (no broken rows, no links), line breaks and other control characters
    folded to spaces."""
    text = "" if value is None else str(value)
    text = "".join(" " if (ord(ch) < 32 or ord(ch) == 127) else ch for ch in text)
    text = html.escape(text, quote=False)
    for ch in ("|", "[", "]"):
        text = text.replace(ch, "\\" + ch)
    return text
