"""Safe XML parsing shared by every XML reader.

Registry XML arrives from outside (downloads, uploads, an HTTP API), so the parser must never
expand entities (billion laughs), read local files or fetch URLs (XXE), or build unbounded trees.
A document type declaration with an internal subset is the only place entities can be declared in
a document we do not load external DTDs for, so such documents are refused outright rather than
parsed with their declarations ignored: a registry export never needs one, and refusing makes the
attack visible instead of silently producing a record with holes in it.  A DOCTYPE that only names
an external DTD (old ClinicalTrials.gov files did) is accepted; the DTD is never loaded.
"""

from __future__ import annotations

import codecs
import re
import threading

from lxml import etree

from adapter.errors import InputError

__all__ = ["parse_xml"]

_local = threading.local()


def _parser() -> etree.XMLParser:
    # lxml parsers keep per-parse state and must not be shared between threads; creating one per
    # document would cost more than the parse of a small record, hence one per thread.
    parser = getattr(_local, "parser", None)
    if parser is None:
        parser = etree.XMLParser(
            resolve_entities=False,
            no_network=True,
            load_dtd=False,
            dtd_validation=False,
            attribute_defaults=False,
            huge_tree=False,
            # collect_ids=False is deliberately not set: with lxml 6 / libxml2 2.14 it makes libxml2
            # open the external DTD named by a DOCTYPE, defeating load_dtd=False (a test guards this).
            # Readers walk element children; comments and processing instructions carry no registry
            # data (CT.gov uses comments for boilerplate such as the MeSH caution).
            remove_comments=True,
            remove_pis=True,
        )
        _local.parser = parser
    return parser


# Byte-order marks, longest first so UTF-32-LE is not mistaken for UTF-16-LE.
_BOMS: tuple[tuple[bytes, str], ...] = (
    (codecs.BOM_UTF32_LE, "utf-32-le"),
    (codecs.BOM_UTF32_BE, "utf-32-be"),
    (codecs.BOM_UTF8, "utf-8"),
    (codecs.BOM_UTF16_LE, "utf-16-le"),
    (codecs.BOM_UTF16_BE, "utf-16-be"),
)
# Encodings without a BOM recognised from how "<?" is laid out in the first four bytes (XML 1.0 appendix F).
_NO_BOM: tuple[tuple[bytes, str], ...] = (
    (b"\x00\x00\x00<", "utf-32-be"),
    (b"<\x00\x00\x00", "utf-32-le"),
    (b"\x00<\x00?", "utf-16-be"),
    (b"<\x00?\x00", "utf-16-le"),
)


def _prolog_bytes(data: bytes) -> bytes:
    """The document as bytes in which ASCII markup such as ``<!DOCTYPE`` can be searched for.

    ASCII-compatible encodings are scanned as they are (no copy); the wide encodings are
    transcoded so that a DOCTYPE cannot hide behind UTF-16 or UTF-32.
    """
    for bom, encoding in _BOMS:
        if data.startswith(bom):
            if encoding == "utf-8":
                return data[len(bom) :]
            return data[len(bom) :].decode(encoding, errors="replace").encode("utf-8")
    head = data[:4]
    for pattern, encoding in _NO_BOM:
        if head == pattern:
            return data.decode(encoding, errors="replace").encode("utf-8")
    return data


_TRAILING_POSITION = re.compile(r",? line \d+, column \d+$")
_SPACE = frozenset(b" \t\r\n")


def _check_prolog(text: bytes, source: str | None) -> None:
    """Refuse a DOCTYPE with an internal subset before the parser sees it.

    Only the prolog (what precedes the root element) is scanned, so markup-like text inside the
    document (a CDATA section quoting a DOCTYPE) does not trigger a refusal.  Anything malformed is
    left to the parser, which reports it with a position.
    """
    pos, end = 0, len(text)
    while pos < end:
        while pos < end and text[pos] in _SPACE:
            pos += 1
        if text.startswith(b"<?", pos):
            close = text.find(b"?>", pos + 2)
        elif text.startswith(b"<!--", pos):
            close = text.find(b"-->", pos + 4)
        elif text.startswith(b"<!DOCTYPE", pos):
            _check_doctype(text, pos + 9, source)
            return
        else:
            return  # the root element (or garbage): the prolog is over
        if close < 0:
            return
        pos = text.index(b">", close) + 1


def _check_doctype(text: bytes, pos: int, source: str | None) -> None:
    """Scan one DOCTYPE declaration up to its ``>``; refuse it if it opens an internal subset."""
    quote = 0
    for i in range(pos, len(text)):
        ch = text[i]
        if quote:
            if ch == quote:
                quote = 0
        elif ch in (0x22, 0x27):  # " or '
            quote = ch
        elif ch == 0x5B:  # [
            raise InputError(
                "refused: the document declares a DOCTYPE with an internal subset (entity or other "
                "DTD declarations); registry XML never needs one, and it is how entity-expansion and "
                "external-entity attacks are delivered",
                source,
            )
        elif ch == 0x3E:  # >
            return


def parse_xml(data: bytes, source: str | None = None) -> etree._Element:
    """Parse untrusted XML bytes into the root element, safely.

    - No DTD is loaded, no entity is resolved or expanded, nothing is fetched (file or network).
    - A DOCTYPE with an internal subset (where ``<!ENTITY`` declarations live) is refused with
      :class:`~adapter.errors.InputError`; a DOCTYPE naming only an external DTD is tolerated and
      the DTD ignored.
    - Malformed XML raises :class:`~adapter.errors.InputError` with the line and column.
    - ``huge_tree`` stays off, so libxml2's limits on text-node size and nesting depth apply.

    ``source`` (a file name or URL) is only used to prefix error messages.  Comments and processing
    instructions are dropped from the tree.
    """
    if isinstance(data, bytearray | memoryview):
        data = bytes(data)
    if not isinstance(data, bytes):
        raise TypeError(f"parse_xml expects bytes, not {type(data).__name__}")
    if not data or data.isspace():  # isspace() stops at the first other byte; strip() would copy
        raise InputError("empty input: no XML document", source)

    _check_prolog(_prolog_bytes(data), source)

    try:
        root = etree.fromstring(data, _parser())
    except etree.XMLSyntaxError as exc:
        line, column = exc.position if exc.position else (exc.lineno or 0, 0)
        # libxml2 repeats the position at the end of its message; it is already in front.
        message = _TRAILING_POSITION.sub("", (exc.msg or str(exc)).strip())
        raise InputError(f"malformed XML at line {line}, column {column}: {message}", source) from None
    if root is None:
        raise InputError("empty input: no root element", source)

    # Defence in depth: if an internal subset slipped past the prolog scan (an encoding the scan
    # does not know), the parser still recorded it, unexpanded.
    internal = root.getroottree().docinfo.internalDTD
    if internal is not None and (any(True for _ in internal.iterentities()) or internal.elements()):
        raise InputError("refused: the document declares a DOCTYPE with an internal subset", source)
    return root
