"""Our XSD for the edXML packets docexchange emits (``edxml.xsd``, package data), and :func:`validate`.

No official XSD for QCVN 102:2016 is public. This one describes what our writer produces — element order,
NĐ 30/2020 annex VI lengths, code tables, formats — and is stricter than the tolerant reader: a packet from
another sender may fail it and still be read.
"""

from __future__ import annotations

import functools
import threading
from dataclasses import dataclass
from importlib import resources
from typing import Any

from lxml import etree

from docexchange.edxml._xml import ReadLimits, parse_native
from docexchange.errors import EdxmlError

__all__ = ["SchemaProblem", "SchemaReport", "schema_bytes", "validate"]


@dataclass(frozen=True)
class SchemaProblem:
    line: int
    column: int
    message: str
    """libxml2's message (English), naming the element and the rule broken."""

    def __str__(self) -> str:
        return f"dòng {self.line}, cột {self.column} (line {self.line}, column {self.column}): {self.message}"


@dataclass(frozen=True)
class SchemaReport:
    problems: tuple[SchemaProblem, ...]

    @property
    def valid(self) -> bool:
        return not self.problems

    @property
    def message_vi(self) -> str:
        if self.valid:
            return "Gói tin đúng lược đồ edXML của docexchange"
        return f"Gói tin không đúng lược đồ edXML: {len(self.problems)} lỗi"

    @property
    def message_en(self) -> str:
        if self.valid:
            return "the packet conforms to docexchange's edXML schema"
        return f"the packet does not conform to the edXML schema: {len(self.problems)} problem(s)"


def schema_bytes() -> bytes:
    """The XSD itself."""
    return resources.files(__name__).joinpath("edxml.xsd").read_bytes()


_local = threading.local()


@functools.lru_cache(maxsize=1)
def _schema_source() -> bytes:
    return schema_bytes()


def _schema() -> Any:
    """One compiled schema per thread (an lxml validator keeps its error log on the instance)."""
    schema = getattr(_local, "schema", None)
    if schema is None:
        parser = etree.XMLParser(resolve_entities=False, no_network=True, load_dtd=False)
        try:
            schema = etree.XMLSchema(etree.fromstring(_schema_source(), parser))
        except (etree.XMLSyntaxError, etree.XMLSchemaParseError) as exc:  # pragma: no cover - packaging error
            raise EdxmlError("Lược đồ edXML đóng gói bị hỏng", f"the bundled edXML schema is broken: {exc}") from exc
        _local.schema = schema
    return schema


def validate(data: bytes, *, limits: ReadLimits | None = None) -> SchemaReport:
    """Check ``data`` against our XSD. Unreadable XML raises (MalformedXml, UnsafeXml, PacketTooLarge)."""
    tree, start = parse_native(data, limits or ReadLimits())
    schema = _schema()
    ok = schema.validate(tree)
    if ok:
        return SchemaReport(())
    extra_lines = bytes(data[:start]).count(b"\n")
    problems = tuple(
        SchemaProblem(entry.line + extra_lines, entry.column, entry.message) for entry in schema.error_log
    )
    return SchemaReport(problems or (SchemaProblem(1, 1, "invalid"),))
