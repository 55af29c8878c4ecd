import pytest

from docexchange.directory.codes import AgencyCode, parse_code
from docexchange.errors import InvalidAgencyCode

VALID = [
    # code, level, parent, level-1 group
    ("000.00.00.G22", 1, None, "G22"),
    ("000.00.00.H49", 1, None, "H49"),
    ("000.00.12.H49", 2, "000.00.00.H49", "H49"),
    ("000.03.12.H49", 3, "000.00.12.H49", "H49"),
    ("004.03.12.H49", 4, "000.03.12.H49", "H49"),
    ("000.00.00.K49", 1, None, "K49"),
    ("999.010.01.H22", 4, "000.010.01.H22", "H22"),  # letters/3 digits in middle groups seen in an SDK test
    ("000.00.0A.G09", 2, "000.00.00.G09", "G09"),
]

INVALID = [
    ("00.00.H49", "3 nhóm"),
    ("000.00.00.X49", "chữ cái cấp 1"),
    ("000.00.00.h49", "in hoa"),
    ("000.00.00.H49 ", "khoảng trắng"),
    (" 000.00.00.H49", "khoảng trắng"),
    ("000. 00.00.H49", "khoảng trắng"),
    ("000.00.00.H4", "không đúng dạng"),
    ("000.00.00.H490", "không đúng dạng"),
    ("000.00.00.149", "không đúng dạng"),
    ("000.00.00.H00", "H00"),
    ("001.00.00.H49", "thiếu nhóm cấp trên"),
    ("000.01.00.H49", "thiếu nhóm cấp trên"),
    ("", "1 nhóm"),
    ("000-00-00-H49", "1 nhóm"),
    ("000.00.00.00.H49", "5 nhóm"),
]


@pytest.mark.parametrize(("text", "level", "parent", "level1"), VALID)
def test_valid_codes(text: str, level: int, parent: str | None, level1: str) -> None:
    code = parse_code(text)
    assert str(code) == text
    assert code.level == level
    assert (str(code.parent) if code.parent else None) == parent
    assert code.level1 == level1


@pytest.mark.parametrize(("text", "fragment"), INVALID)
def test_invalid_codes(text: str, fragment: str) -> None:
    with pytest.raises(InvalidAgencyCode) as info:
        parse_code(text)
    assert fragment in info.value.message_vi
    assert repr(text) in info.value.message_en or text == ""


def test_strict_mode_refuses_letters_in_middle_groups() -> None:
    assert parse_code("999.010.01.H22").level == 4
    with pytest.raises(InvalidAgencyCode):
        parse_code("999.010.01.H22", strict=True)
    assert parse_code("000.00.12.H49", strict=True) == AgencyCode("000", "00", "12", "H49")


def test_non_string_is_refused() -> None:
    with pytest.raises(InvalidAgencyCode):
        parse_code(12345)  # type: ignore[arg-type]
