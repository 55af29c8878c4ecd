"""The agency directory: agencies (mailboxes), their officials, and the tree of axis nodes.

Levels and parents come from the data (``config/agencies.toml``), never from code: the same router serves a
four-level province (with districts) and a two-level one (communes directly under the province, as since
July 2025). Merged or closed codes stay resolvable through aliases.
"""

from __future__ import annotations

import enum
import unicodedata
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from docexchange.config import load_dataclass, read_toml
from docexchange.directory.codes import DEFAULT_LEVEL1_LETTERS, parse_code
from docexchange.errors import DirectoryError, InvalidAgencyCode, UnknownAgency

__all__ = ["Agency", "AxisNode", "Directory", "GovLevel", "Official", "fold", "load_directory"]


class GovLevel(str, enum.Enum):
    """Government level of an agency (from the data, not derived from its code)."""

    CENTRAL = "central"
    PROVINCE = "province"
    DISTRICT = "district"
    COMMUNE = "commune"

    @property
    def label_vi(self) -> str:
        return {
            "central": "Trung ương",
            "province": "Cấp tỉnh",
            "district": "Cấp huyện",
            "commune": "Cấp xã",
        }[self.value]


@dataclass(frozen=True)
class Official:
    """A person who signs for an agency (a competent official)."""

    id: str
    """Stable identifier, also the name of their key files (``keys/persons/<id>.p12``)."""
    full_name: str
    """Full name as printed under the signature, e.g. ``Nguyễn Văn An``."""
    position: str
    """Position printed above the signature, e.g. ``CHỦ TỊCH`` or ``PHÓ CHỦ TỊCH``."""
    competence: str = ""
    """Authority line, e.g. ``TM. ỦY BAN NHÂN DÂN`` or ``KT. CHỦ TỊCH`` (empty when signing in own name)."""
    citizen_id: str = ""
    """CCCD number for the certificate's UID (sample values in the dev directory)."""


@dataclass(frozen=True)
class Agency:
    code: str
    """QCVN 102 code (``OrganId``)."""
    name: str
    """Full Vietnamese name, e.g. ``Ủy ban nhân dân tỉnh Quảng Ninh``."""
    level: GovLevel
    node: str
    """Id of the home axis node."""
    parent: str = ""
    """Code of the parent agency; empty for top-level agencies."""
    short_name: str = ""
    place: str = ""
    """Place name printed on letters (``Hạ Long, ngày …``)."""
    aliases: tuple[str, ...] = ()
    """Old codes (merged or closed agencies) that resolve to this one."""
    sample: bool = False
    """True when the code is not from a real registry (sample data)."""
    budget_code: str = ""
    """Mã số đơn vị ngân sách (``MNS:`` UID in the seal certificate)."""
    address: str = ""
    email: str = ""
    telephone: str = ""
    website: str = ""
    officials: tuple[Official, ...] = ()

    def official(self, official_id: str) -> Official:
        for o in self.officials:
            if o.id == official_id:
                return o
        raise UnknownAgency(
            f"Cơ quan {self.code} không có cán bộ '{official_id}'",
            f"agency {self.code} has no official '{official_id}'",
        )


@dataclass(frozen=True)
class AxisNode:
    """An interconnection axis (trục liên thông): the national one or a provincial one."""

    id: str
    name: str
    host: str
    port: int
    parent: str = ""
    """Id of the parent node; empty for the national axis (the root)."""
    organ_id: str = ""
    """Code written in TraceHeaders for this node (defaults to the code of the agency running it)."""

    @property
    def url(self) -> str:
        return f"https://{self.host}:{self.port}"


@dataclass(frozen=True)
class _DirectoryFile:
    nodes: tuple[AxisNode, ...]
    agencies: tuple[dict[str, Any], ...] = ()
    strict_codes: bool = False
    level1_letters: str = DEFAULT_LEVEL1_LETTERS


def fold(text: str) -> str:
    """Lower-case and strip Vietnamese diacritics, for search (``Quảng Ninh`` → ``quang ninh``)."""
    text = text.replace("đ", "d").replace("Đ", "D")
    decomposed = unicodedata.normalize("NFD", text)
    return "".join(c for c in decomposed if unicodedata.category(c) != "Mn").casefold()


class Directory:
    """Agencies and axis nodes, validated on construction (use :func:`load_directory`)."""

    def __init__(
        self,
        agencies: Iterable[Agency],
        nodes: Iterable[AxisNode],
        *,
        source: str = "<directory>",
        strict_codes: bool = False,
        level1_letters: str = DEFAULT_LEVEL1_LETTERS,
    ) -> None:
        self.source = source
        self.strict_codes = strict_codes
        self.level1_letters = level1_letters
        self._nodes: dict[str, AxisNode] = {}
        self._agencies: dict[str, Agency] = {}
        self._aliases: dict[str, str] = {}
        for node in nodes:
            if node.id in self._nodes:
                self._fail(f"trục '{node.id}' bị khai báo hai lần", f"axis node '{node.id}' declared twice")
            self._nodes[node.id] = node
        for agency in agencies:
            self._add_agency(agency)
        self._check_nodes()
        self._check_agencies()

    # -- construction checks -------------------------------------------------------------------
    def _fail(self, vi: str, en: str) -> None:
        raise DirectoryError(f"{self.source}: {vi}", f"{self.source}: {en}")

    def _code(self, text: str, where: str) -> str:
        try:
            return str(parse_code(text, strict=self.strict_codes, level1_letters=self.level1_letters))
        except InvalidAgencyCode as exc:
            raise DirectoryError(
                f"{self.source}: {where}: {exc.message_vi}", f"{self.source}: {where}: {exc.message_en}"
            ) from None

    def _add_agency(self, agency: Agency) -> None:
        code = self._code(agency.code, f"cơ quan {agency.name!r}")
        if code in self._agencies or code in self._aliases:
            self._fail(f"mã {code} bị trùng", f"duplicate agency code {code}")
        self._agencies[code] = agency
        for alias in agency.aliases:
            a = self._code(alias, f"bí danh của {code}")
            if a in self._agencies or a in self._aliases:
                self._fail(f"bí danh {a} trùng với mã khác", f"alias {a} of {code} collides with another code")
            self._aliases[a] = code

    def _check_nodes(self) -> None:
        roots = [n for n in self._nodes.values() if not n.parent]
        if len(roots) != 1:
            self._fail(
                f"phải có đúng một trục gốc (trục quốc gia), có {len(roots)}",
                f"there must be exactly one root axis node (the national axis), found {len(roots)}",
            )
        for node in self._nodes.values():
            if node.parent and node.parent not in self._nodes:
                self._fail(
                    f"trục '{node.id}' có trục cha '{node.parent}' không tồn tại",
                    f"axis node '{node.id}' has parent '{node.parent}' which does not exist",
                )
            seen = {node.id}
            cur = node
            while cur.parent:
                if cur.parent in seen:
                    self._fail(
                        f"cây trục có vòng lặp qua '{cur.parent}'", f"the axis tree has a cycle through '{cur.parent}'"
                    )
                seen.add(cur.parent)
                cur = self._nodes[cur.parent]

    def _check_agencies(self) -> None:
        official_ids: set[str] = set()
        for code, agency in self._agencies.items():
            if agency.node not in self._nodes:
                self._fail(
                    f"cơ quan {code} có trục '{agency.node}' không tồn tại",
                    f"agency {code} has home axis node '{agency.node}' which does not exist",
                )
            if agency.parent:
                parent = self._code(agency.parent, f"cơ quan cha của {code}")
                if parent not in self._agencies:
                    self._fail(
                        f"cơ quan {code} có cơ quan cha {parent} không tồn tại",
                        f"agency {code} has parent {parent} which does not exist",
                    )
            seen = {code}
            cur = agency
            while cur.parent:
                p = str(parse_code(cur.parent, level1_letters=self.level1_letters))
                if p in seen:
                    self._fail(
                        f"quan hệ cấp trên có vòng lặp qua {p}", f"the agency parent chain has a cycle through {p}"
                    )
                seen.add(p)
                cur = self._agencies[p]
            for official in agency.officials:
                if official.id in official_ids:
                    self._fail(f"mã cán bộ '{official.id}' bị trùng", f"duplicate official id '{official.id}'")
                official_ids.add(official.id)

    # -- lookups -------------------------------------------------------------------------------
    def resolve(self, code_or_alias: str) -> str:
        """The canonical code for a code or an alias (old code of a merged/closed agency)."""
        text = code_or_alias.strip()
        if text in self._agencies:
            return text
        if text in self._aliases:
            return self._aliases[text]
        raise UnknownAgency(
            f"Không có cơ quan mã {text!r} trong danh bạ", f"no agency with code {text!r} in the directory"
        )

    def agency(self, code_or_alias: str) -> Agency:
        return self._agencies[self.resolve(code_or_alias)]

    def __contains__(self, code: object) -> bool:
        return isinstance(code, str) and (code in self._agencies or code in self._aliases)

    def __iter__(self) -> Iterator[Agency]:
        return iter(self._agencies.values())

    def __len__(self) -> int:
        return len(self._agencies)

    @property
    def agencies(self) -> tuple[Agency, ...]:
        return tuple(self._agencies.values())

    @property
    def nodes(self) -> tuple[AxisNode, ...]:
        return tuple(self._nodes.values())

    def node(self, node_id: str) -> AxisNode:
        try:
            return self._nodes[node_id]
        except KeyError:
            raise UnknownAgency(
                f"Không có trục liên thông '{node_id}'", f"no axis node '{node_id}' in the directory"
            ) from None

    @property
    def root(self) -> AxisNode:
        return next(n for n in self._nodes.values() if not n.parent)

    def children(self, node_id: str) -> tuple[AxisNode, ...]:
        return tuple(n for n in self._nodes.values() if n.parent == node_id)

    def agencies_of(self, node_id: str) -> tuple[Agency, ...]:
        return tuple(a for a in self._agencies.values() if a.node == node_id)

    def home_node(self, code: str) -> AxisNode:
        return self._nodes[self.agency(code).node]

    def parent_agency(self, code: str) -> Agency | None:
        agency = self.agency(code)
        return self.agency(agency.parent) if agency.parent else None

    def find_official(self, official_id: str) -> tuple[Agency, Official]:
        for agency in self._agencies.values():
            for official in agency.officials:
                if official.id == official_id:
                    return agency, official
        raise UnknownAgency(f"Không có cán bộ '{official_id}'", f"no official '{official_id}' in the directory")

    def node_ancestors(self, node_id: str) -> list[str]:
        """``node_id`` and its ancestors up to the root, in that order."""
        chain = [self.node(node_id).id]
        while self._nodes[chain[-1]].parent:
            chain.append(self._nodes[chain[-1]].parent)
        return chain

    def node_path(self, src: str, dst: str) -> list[str]:
        """Nodes a packet passes from node ``src`` to node ``dst``, both included."""
        up = self.node_ancestors(src)
        down = self.node_ancestors(dst)
        common = next(n for n in up if n in down)
        return up[: up.index(common) + 1] + list(reversed(down[: down.index(common)]))

    def path(self, sender: str, recipient: str) -> list[str]:
        """Axis nodes a packet from agency ``sender`` passes to reach agency ``recipient``."""
        return self.node_path(self.agency(sender).node, self.agency(recipient).node)

    def next_hop(self, at_node: str, recipient: str) -> str | None:
        """The next node after ``at_node`` toward ``recipient``'s home node; None when already home."""
        route = self.node_path(at_node, self.agency(recipient).node)
        return route[1] if len(route) > 1 else None

    def search(self, text: str, limit: int = 20) -> list[Agency]:
        """Agencies whose code, alias or name contains ``text`` (diacritics and case ignored)."""
        needle = fold(text.strip())
        hits = []
        for agency in self._agencies.values():
            hay = " ".join([agency.code, *agency.aliases, fold(agency.name), fold(agency.short_name)])
            if needle in fold(hay):
                hits.append(agency)
        return hits[:limit]


def _agency_from_table(table: dict[str, Any], source: str, index: int) -> Agency:
    data = dict(table)
    officials = data.pop("officials", [])
    if not isinstance(officials, list):
        raise DirectoryError(
            f"{source}: agencies[{index}].officials phải là danh sách",
            f"{source}: agencies[{index}].officials must be a list of tables",
        )
    agency = load_dataclass(Agency, data, source, prefix=f"agencies[{index}].")
    people = tuple(
        load_dataclass(Official, o, source, prefix=f"agencies[{index}].officials[{j}].")
        for j, o in enumerate(officials)
    )
    return Agency(**{**agency.__dict__, "officials": people})


def load_directory(path: Path) -> Directory:
    """Read and validate ``agencies.toml``."""
    source = str(path)
    data = read_toml(path)
    raw = load_dataclass(_DirectoryFile, data, source)
    agencies = [_agency_from_table(t, source, i) for i, t in enumerate(raw.agencies)]
    return Directory(
        agencies, raw.nodes, source=source, strict_codes=raw.strict_codes, level1_letters=raw.level1_letters
    )
