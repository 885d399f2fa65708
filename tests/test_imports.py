"""The checkout's own packages are the ones imported (``datasets`` is also a PyPI name)."""
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_datasets_is_ours():
    import datasets

    assert Path(datasets.__file__).resolve().parent == ROOT / "datasets"


def test_registry_lists_builtin_methods():
    import methods

    assert {"hitrs", "mcc", "crossclr"} <= set(methods.available())
