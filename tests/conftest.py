"""Shared paths for the test suite, and no silent skips in CI."""

from __future__ import annotations

import os
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


# CI has everything a test may skip for (../shared beside the checkout, PostgreSQL at
# 127.0.0.1:5432, the package registries), so a skip there is a test that quietly stopped running:
# three did for several landings, looking for files that only a later CI step installs.
_skipped: list[str] = []


def pytest_runtest_logreport(report: pytest.TestReport) -> None:
    if report.skipped and not hasattr(report, "wasxfail"):
        _skipped.append(report.nodeid)


def _failing_skips(config: pytest.Config) -> bool:
    # Under pytest-xdist the controller receives every worker's reports; the workers leave it to it.
    return bool(os.environ.get("CI")) and not hasattr(config, "workerinput") and bool(_skipped)


def pytest_sessionfinish(session: pytest.Session) -> None:
    if _failing_skips(session.config) and session.exitstatus == pytest.ExitCode.OK:
        session.exitstatus = pytest.ExitCode.TESTS_FAILED


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter, config: pytest.Config) -> None:
    if _failing_skips(config):
        terminalreporter.write_sep("=", f"CI is set: {len(_skipped)} skipped test(s) fail the run", red=True)
        for nodeid in _skipped:
            terminalreporter.write_line(nodeid)
