"""Pickles from outside are data, never code: a restricted unpickler.

Other tools ship labels and whole datasets as pickles (ST-GCN's ``*_label.pkl``, PYSKL's
``ntu60_3danno.pkl``). A plain ``pickle.load`` of such a file runs whatever callable the file
names. This loader resolves only plain containers and numpy arrays / scalars; any other global
(``os.system``, ``builtins.eval``, a class of ours...) is refused with one line naming the file.
"""
from __future__ import annotations

import _compat_pickle
import io
import pickle
from pathlib import Path

# (module, name) pairs a pickle of plain containers and numpy arrays needs. numpy 2 moved
# ``numpy.core`` to ``numpy._core``; files written by either are accepted.
_ALLOWED = {
    ("builtins", "set"), ("builtins", "frozenset"), ("builtins", "slice"), ("builtins", "complex"),
    ("builtins", "bytearray"), ("collections", "OrderedDict"), ("_codecs", "encode"),
    ("numpy", "ndarray"), ("numpy", "dtype"),
    ("numpy.core.multiarray", "_reconstruct"), ("numpy.core.multiarray", "scalar"),
    ("numpy._core.multiarray", "_reconstruct"), ("numpy._core.multiarray", "scalar"),
    ("numpy.core.numeric", "_frombuffer"), ("numpy._core.numeric", "_frombuffer"),
}


class UnsafePickleError(ValueError):
    """The pickle names a global outside the allow-list; nothing it names was called."""

    def __init__(self, problem: str, source: str = "<bytes>"):
        self.problem, self.source = problem, source
        super().__init__(f"{source}: {problem}")


class PickleFormatError(ValueError):
    """Not a readable pickle (truncated, wrong file)."""

    def __init__(self, problem: str, source: str = "<bytes>"):
        self.problem, self.source = problem, source
        super().__init__(f"{source}: {problem}")


class _RestrictedUnpickler(pickle.Unpickler):
    def find_class(self, module: str, name: str):
        # protocol 0-2 pickles name Python 2 modules (``__builtin__.set``)
        module, name = _compat_pickle.NAME_MAPPING.get((module, name), (module, name))
        module = _compat_pickle.IMPORT_MAPPING.get(module, module)
        if (module, name) in _ALLOWED:
            return super().find_class(module, name)
        if (module, name) == ("builtins", "bytes"):   # protocol-2 pickles build b"" (an empty array's data) by calling it
            return _plain_bytes
        if module == "numpy" and name in _NUMPY_DTYPE_CLASSES:
            return super().find_class(module, name)
        if module == "numpy.dtypes" and name.endswith("DType"):  # numpy 2 pickles dtype classes by name
            return super().find_class(module, name)
        raise UnsafePickleError(f"refused: the pickle refers to {module}.{name}, which is not plain data "
                                "(only lists, dicts, tuples, strings, numbers and numpy arrays are accepted)")


def _plain_bytes(*args):
    """``bytes`` for a pickle: from nothing, bytes or a (str, encoding) pair only; never ``bytes(n)``
    (an allocation of n zero bytes a file could ask for)."""
    if not args:
        return b""
    if isinstance(args[0], (bytes, bytearray)) and len(args) == 1:
        return bytes(args[0])
    if isinstance(args[0], str) and len(args) <= 3:
        return bytes(*args)
    raise UnsafePickleError("refused: the pickle calls bytes() with something other than text or bytes")


# numpy scalar types pickled by reference (e.g. numpy.float32 inside a dtype)
_NUMPY_DTYPE_CLASSES = {"bool_", "int8", "int16", "int32", "int64", "uint8", "uint16", "uint32", "uint64",
                        "float16", "float32", "float64", "complex64", "complex128", "str_", "bytes_", "object_"}


def loads_restricted(data: bytes, source: str = "<bytes>"):
    """Unpickle ``data`` admitting only plain containers and numpy arrays.

    Raises ``UnsafePickleError`` (refused global) or ``PickleFormatError`` (not a pickle), each
    with ``source`` in its one-line message and the bare reason in ``.problem``.
    """
    try:
        return _RestrictedUnpickler(io.BytesIO(data)).load()
    except UnsafePickleError as err:
        raise UnsafePickleError(err.problem, source) from None
    except Exception as err:  # noqa: BLE001 - any other unpickling failure is a format problem
        raise PickleFormatError(f"not a readable pickle ({type(err).__name__}: {err})", source) from None


def load_restricted(path: str | Path):
    """``loads_restricted`` of a file."""
    path = Path(path)
    return loads_restricted(path.read_bytes(), str(path))
