"""The one exception type the readers raise for malformed input."""
from __future__ import annotations

from pathlib import Path


class SkeletonFormatError(ValueError):
    """A skeleton / label / split file does not follow its format.

    The message names the file and (where it applies) the 1-based line, says what was expected
    and what to do. ``path`` and ``line`` are kept as attributes for programmatic use.
    """

    def __init__(self, path, line: int | None, problem: str, hint: str = ""):
        self.path = str(path)
        self.line = line
        self.problem = problem
        self.hint = hint
        where = f"{self.path}:{line}" if line is not None else self.path
        text = f"{where}: {problem}"
        if hint:
            text += f" ({hint})"
        super().__init__(text)

    def __reduce__(self):  # picklable across worker processes
        return (type(self), (self.path, self.line, self.problem, self.hint))


def display_path(path) -> str:
    return str(Path(path)) if path is not None else "<text>"
