"""Repository root on sys.path first, so ``datasets`` is this suite's package, never the PyPI one."""
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))
