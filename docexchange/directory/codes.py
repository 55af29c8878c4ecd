"""QCVN 102:2016 agency codes (``OrganId``): ``V1V2V3.Z1Z2.Y1Y2.MX1X2``, read right to left.

``000.00.00.G22`` is the Government Office (level 1), ``000.00.12.H49`` a unit under UBND tỉnh Quảng Ninh
(level 2), ``000.03.12.H49`` a unit under that one (level 3). Zeros mean "not this level".

The shape is validated loosely by default (groups of ``[0-9A-Z]``, as some registries put letters in the
middle groups, e.g. ``999.010.01.H22``) and strictly (digits only, exact widths) when asked.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from docexchange.errors import InvalidAgencyCode

__all__ = ["DEFAULT_LEVEL1_LETTERS", "AgencyCode", "parse_code"]

DEFAULT_LEVEL1_LETTERS = "ABCDEGHK"
"""Letters seen opening level-1 codes (G central bodies, H UBND tỉnh, K HĐND tỉnh, A/B/C/D/E other central
systems in the SDK samples). Configurable: the full list is not public."""

_LOOSE = re.compile(r"^([0-9A-Z]{3})\.([0-9A-Z]{2,3})\.([0-9A-Z]{2,3})\.([A-Z])([0-9]{2})$")
_STRICT = re.compile(r"^([0-9]{3})\.([0-9]{2})\.([0-9]{2})\.([A-Z])([0-9]{2})$")


def _is_zero(group: str) -> bool:
    return set(group) == {"0"}


@dataclass(frozen=True, order=True)
class AgencyCode:
    """A parsed agency code. ``str()`` gives the canonical 13-character form."""

    v: str
    """Level-4 group (``V1V2V3``)."""
    z: str
    """Level-3 group (``Z1Z2``)."""
    y: str
    """Level-2 group (``Y1Y2``)."""
    m: str
    """Level-1 group (``MX1X2``): a letter and two digits."""

    def __str__(self) -> str:
        return f"{self.v}.{self.z}.{self.y}.{self.m}"

    @property
    def level(self) -> int:
        """QCVN level of the code: 1 (e.g. a ministry, UBND tỉnh) to 4."""
        if not _is_zero(self.v):
            return 4
        if not _is_zero(self.z):
            return 3
        if not _is_zero(self.y):
            return 2
        return 1

    @property
    def level1(self) -> str:
        """The level-1 group, e.g. ``H49``: which ministry or province the code belongs to."""
        return self.m

    @property
    def parent(self) -> AgencyCode | None:
        """The code one level up, derived from the code alone (the directory may say otherwise)."""
        lvl = self.level
        if lvl == 1:
            return None
        if lvl == 4:
            return AgencyCode("0" * len(self.v), self.z, self.y, self.m)
        if lvl == 3:
            return AgencyCode(self.v, "0" * len(self.z), self.y, self.m)
        return AgencyCode(self.v, self.z, "0" * len(self.y), self.m)


def parse_code(
    text: str, *, strict: bool = False, level1_letters: str = DEFAULT_LEVEL1_LETTERS
) -> AgencyCode:
    """Parse an agency code, refusing anything malformed with a message a clerk understands."""
    if not isinstance(text, str):
        raise InvalidAgencyCode(
            f"Mã định danh phải là chuỗi ký tự, không phải {type(text).__name__}",
            f"agency code must be a string, not {type(text).__name__}",
        )
    shown = repr(text)
    if text != text.strip() or " " in text:
        raise InvalidAgencyCode(
            f"Mã định danh {shown} có khoảng trắng",
            f"agency code {shown} contains spaces",
        )
    if text != text.upper():
        raise InvalidAgencyCode(
            f"Mã định danh {shown} phải viết chữ in hoa",
            f"agency code {shown} must be upper case",
        )
    groups = text.split(".")
    if len(groups) != 4:
        raise InvalidAgencyCode(
            f"Mã định danh {shown} phải có 4 nhóm dạng 000.00.00.H49 (có {len(groups)} nhóm)",
            f"agency code {shown} must have 4 groups like 000.00.00.H49 (found {len(groups)})",
        )
    match = (_STRICT if strict else _LOOSE).match(text)
    if match is None:
        raise InvalidAgencyCode(
            f"Mã định danh {shown} không đúng dạng V1V2V3.Z1Z2.Y1Y2.MX1X2 (ví dụ 000.00.00.H49)",
            f"agency code {shown} does not have the shape V1V2V3.Z1Z2.Y1Y2.MX1X2 (e.g. 000.00.00.H49)",
        )
    v, z, y, letter, digits = match.groups()
    if letter not in level1_letters:
        raise InvalidAgencyCode(
            f"Mã định danh {shown}: chữ cái cấp 1 '{letter}' không thuộc danh mục ({level1_letters})",
            f"agency code {shown}: level-1 letter '{letter}' is not one of {level1_letters}",
        )
    if digits == "00":
        raise InvalidAgencyCode(
            f"Mã định danh {shown}: nhóm cấp 1 không được là {letter}00",
            f"agency code {shown}: level-1 group cannot be {letter}00",
        )
    code = AgencyCode(v, z, y, letter + digits)
    # A lower level filled in while a higher one is empty (e.g. 001.00.00.H49) is not a code.
    lvl = code.level
    if (lvl >= 3 and _is_zero(y)) or (lvl == 4 and _is_zero(z)):
        raise InvalidAgencyCode(
            f"Mã định danh {shown}: có nhóm cấp dưới nhưng thiếu nhóm cấp trên",
            f"agency code {shown}: a lower-level group is set while a higher one is zero",
        )
    return code
