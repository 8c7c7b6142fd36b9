"""Makes ``batch_helpers`` importable by the batch tests (test directories are not packages here)."""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
