"""Shared paths for the test suite."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

# Helper modules shared by test packages (pg_support) are imported by name, as each package's own
# helpers are (--import-mode=importlib puts no test directory on the path by itself).
sys.path.insert(0, str(Path(__file__).resolve().parent))

REPO = Path(__file__).resolve().parent.parent
FIXTURES = REPO / "fixtures"
SHARED = REPO.parent / "shared"
CORPUS = SHARED / "corpus"
CHECKER = SHARED / "conformance" / "check"


@pytest.fixture(scope="session")
def fixtures_dir() -> Path:
    return FIXTURES


@pytest.fixture(scope="session")
def corpus_dir() -> Path:
    if not CORPUS.is_dir():
        pytest.skip("../shared/corpus is not beside this checkout")
    return CORPUS
