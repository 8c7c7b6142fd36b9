"""Errors that reach users: each carries a one-line message naming the input it is about."""

from __future__ import annotations


class Trial2FhirError(Exception):
    """Base class; ``str(error)`` is a complete one-line message for a CLI or an OperationOutcome."""

    code = "processing"
    """FHIR ``IssueType`` code used when the error becomes an OperationOutcome issue."""


class InputError(Trial2FhirError):
    """The input cannot be read as any supported registry format (malformed, unsafe, unknown)."""

    code = "structure"

    def __init__(self, message: str, source: str | None = None) -> None:
        self.source = source
        super().__init__(f"{source}: {message}" if source else message)


class RecordError(InputError):
    """The input parsed, but a record lacks what a ResearchStudy cannot do without (its registry id)."""

    code = "required"
