"""Shared by every suite under tests/: make `core` mean the engine.

`tests/core/` has no __init__.py, so with pytest's default import mode `tests/` is on
sys.path and `import core` would find `tests/core/` as a namespace package before the
engine (the editable install's finder comes after the path). Putting the project root
first makes `core` the engine's own package for every test, and for the processes tests
start (they inherit sys.path).
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

_ROOT = str(Path(__file__).resolve().parent.parent)
if sys.path[:1] != [_ROOT]:
    sys.path.insert(0, _ROOT)

# In CI, property-based tests draw the same examples on every run: a red CI means a change
# broke something, not that this run's dice found an old problem. Locally they draw new
# examples each run and keep searching.
if os.environ.get("CI"):
    from hypothesis import settings

    settings.register_profile("ci", derandomize=True, print_blob=True)
    settings.load_profile("ci")
