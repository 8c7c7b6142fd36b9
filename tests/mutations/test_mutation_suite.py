"""trial2fhir's validator flags every mutation the independent checker flags, and none of the originals.

The checker's verdicts are recorded data (``checker_verdicts.json``, see README.md here): the
checker needs about 1.2 GB and 15 s per run, so it is run once when the suite changes, not per test.
"""

from __future__ import annotations

import orjson
import pytest

from adapter.validation import resource_issues
from adapter.validation.fast import fast_structure

from .bases import bases
from .mutations import VERDICTS, mutations

VERSIONS = ("4.0", "5.0")


def _verdicts(version: str) -> dict[str, bool]:
    return orjson.loads(VERDICTS.read_bytes())["versions"][version]


def _flags(resource: dict, version: str) -> bool:
    return any(issue.is_error for issue in resource_issues(resource, version))


@pytest.mark.parametrize("version", VERSIONS)
def test_suite_is_large_and_recorded(version: str) -> None:
    cases = mutations(version)
    verdicts = _verdicts(version)
    assert len(cases) >= 200
    missing = [m.name for m in cases if m.name not in verdicts]
    assert not missing, f"re-run the checker (tests/mutations/README.md): no verdict for {missing[:5]}"
    assert {m.category for m in cases} >= {
        "required",
        "code",
        "type",
        "invariant",
        "reference",
        "other-version",
        "empty",
        "unknown",
        "format",
        "cardinality",
    }


@pytest.mark.parametrize("version", VERSIONS)
def test_originals_are_clean_for_both(version: str) -> None:
    verdicts = _verdicts(version)
    for name, resource in bases(version).items():
        issues = resource_issues(resource, version)
        if name.startswith("extra-"):  # converter outputs: warnings (e.g. dom-6, no narrative) allowed
            issues = [i for i in issues if i.is_error]
        assert issues == [], f"{name}: {issues}"
        assert verdicts.get(f"original--{name}") is False, f"the checker flags the original {name}"


@pytest.mark.parametrize("version", VERSIONS)
def test_flags_every_mutation_the_checker_flags(version: str) -> None:
    verdicts = _verdicts(version)
    cases = mutations(version)
    ours = {m.name: _flags(m.resource, version) for m in cases}
    missed = [m.name for m in cases if verdicts[m.name] and not ours[m.name]]
    assert missed == []
    checker_rate = sum(verdicts[m.name] for m in cases) / len(cases)
    our_rate = sum(ours.values()) / len(cases)
    print(f"\nFHIR {version}: {len(cases)} mutations; trial2fhir flags {our_rate:.1%}, the checker {checker_rate:.1%}")
    assert our_rate >= checker_rate


@pytest.mark.parametrize("version", VERSIONS)
def test_compiled_structure_check_is_never_looser_than_the_walker(version: str) -> None:
    """``--validate structure`` trusts a yes from the compiled check without running the walker."""
    fast = fast_structure(version)
    originals = bases(version)
    for name, resource in originals.items():
        if resource["resourceType"] != "Bundle":
            assert fast.accepts(resource), f"{name}: the compiled check rejects a valid original"
    loose = []
    for case in mutations(version):
        walker_errors = [i for i in resource_issues(case.resource, version, invariants=False) if i.is_error]
        if walker_errors and fast.accepts(case.resource):
            loose.append(case.name)
    assert loose == []
