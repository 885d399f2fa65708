"""Reports: the paper's Tables 1-3 regenerated beside its numbers, its figures, one HTML page,
and the CI regression summary (docs/reports.md).

    python -m reports.build --results results --out reports/out
    >>> from reports.build import build; build("results", "reports/out")
    >>> from reports.regression import compare; markdown, failures = compare(records, baseline)

Submodules are imported on use, so ``import reports`` does not load matplotlib.
"""
