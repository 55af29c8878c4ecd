from pathlib import Path

import pytest

from docexchange.directory import GovLevel, load_directory
from docexchange.errors import ConfigError, DirectoryError, UnknownAgency
from helpers import REPO

SAMPLE = REPO / "config" / "agencies.toml"


@pytest.fixture(scope="module")
def d():  # type: ignore[no-untyped-def]
    return load_directory(SAMPLE)


def test_sample_directory_content(d) -> None:  # type: ignore[no-untyped-def]
    assert d.root.id == "vdxp"
    assert {n.id for n in d.children("vdxp")} == {"lgsp-h49", "lgsp-h57"}
    assert d.agency("000.00.00.G22").name == "Văn phòng Chính phủ"
    levels = {a.level for a in d}
    assert levels == {GovLevel.CENTRAL, GovLevel.PROVINCE, GovLevel.DISTRICT, GovLevel.COMMUNE}
    # every code below level 1 is marked sample
    from docexchange.directory import parse_code

    for a in d:
        assert a.sample == (parse_code(a.code).level > 1), a.code
        assert len(a.officials) >= 2


def test_four_level_province_path_and_parents(d) -> None:  # type: ignore[no-untyped-def]
    commune = d.agency("000.01.11.H49")
    assert commune.level is GovLevel.COMMUNE
    assert d.parent_agency(commune.code).code == "000.00.11.H49"  # the district
    assert d.parent_agency("000.00.11.H49").code == "000.00.00.H49"  # the province
    assert d.path("000.01.11.H49", "000.02.12.H49") == ["lgsp-h49"]


def test_two_level_province_commune_directly_under_province(d) -> None:  # type: ignore[no-untyped-def]
    commune = d.agency("000.00.31.H57")
    assert commune.level is GovLevel.COMMUNE
    assert d.parent_agency(commune.code).code == "000.00.00.H57"


def test_paths_across_provinces_and_to_the_centre(d) -> None:  # type: ignore[no-untyped-def]
    assert d.path("000.01.11.H49", "000.00.32.H57") == ["lgsp-h49", "vdxp", "lgsp-h57"]
    assert d.path("000.01.11.H49", "000.00.00.G22") == ["lgsp-h49", "vdxp"]
    assert d.path("000.00.00.G22", "000.00.31.H57") == ["vdxp", "lgsp-h57"]
    assert d.next_hop("lgsp-h49", "000.00.32.H57") == "vdxp"
    assert d.next_hop("vdxp", "000.00.32.H57") == "lgsp-h57"
    assert d.next_hop("lgsp-h57", "000.00.32.H57") is None


def test_alias_of_closed_code_resolves(d) -> None:  # type: ignore[no-untyped-def]
    assert d.resolve("000.00.05.H57") == "000.00.32.H57"
    assert d.agency("000.00.05.H57").name == "Ủy ban nhân dân xã Phú Vang"
    assert "000.00.05.H57" in d


def test_unknown_agency(d) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(UnknownAgency) as info:
        d.agency("000.00.99.H49")
    assert "000.00.99.H49" in str(info.value)


def test_search_ignores_diacritics(d) -> None:  # type: ignore[no-untyped-def]
    assert [a.code for a in d.search("hong gai")] == ["000.01.11.H49"]
    assert [a.code for a in d.search("Văn phòng Chính")] == ["000.00.00.G22"]
    assert "000.00.32.H57" in [a.code for a in d.search("000.00.05")]


NODES = """
[[nodes]]
id = "root"
name = "Quốc gia"
host = "127.0.0.1"
port = 1
"""


def write(tmp_path: Path, text: str) -> Path:
    p = tmp_path / "agencies.toml"
    p.write_text(text, encoding="utf-8")
    return p


def agency(code: str, node: str = "root", parent: str = "", extra: str = "") -> str:
    lines = [
        "[[agencies]]",
        f'code = "{code}"',
        'name = "Cơ quan"',
        'level = "central"',
        f'node = "{node}"',
    ]
    if parent:
        lines.append(f'parent = "{parent}"')
    return "\n".join(lines) + "\n" + extra + "\n"


BAD = [
    ("duplicate code", NODES + agency("000.00.00.G22") + agency("000.00.00.G22"), "trùng"),
    ("bad code", NODES + agency("00.00.H49"), "00.00.H49"),
    ("missing parent", NODES + agency("000.00.01.H49", parent="000.00.00.H49"), "không tồn tại"),
    ("missing node", NODES + agency("000.00.00.H49", node="lgsp-x"), "lgsp-x"),
    (
        "agency cycle",
        NODES + agency("000.00.01.H49", parent="000.00.02.H49") + agency("000.00.02.H49", parent="000.00.01.H49"),
        "vòng lặp",
    ),
    (
        "node cycle",
        NODES
        + '[[nodes]]\nid = "a"\nname = "A"\nhost = "h"\nport = 2\nparent = "b"\n'
        + '[[nodes]]\nid = "b"\nname = "B"\nhost = "h"\nport = 3\nparent = "a"\n',
        "vòng lặp",
    ),
    ("two roots", NODES + '[[nodes]]\nid = "x"\nname = "X"\nhost = "h"\nport = 2\n', "đúng một trục gốc"),
    ("missing node parent", NODES + '[[nodes]]\nid = "x"\nname = "X"\nhost = "h"\nport = 2\nparent = "zz"\n', "zz"),
    ("unknown key", NODES + agency("000.00.00.G22", extra='colour = "red"'), "colour"),
    ("wrong type", NODES.replace("port = 1", 'port = "one"'), "port"),
    ("missing key", '[[nodes]]\nid = "r"\nhost = "h"\nport = 1\n', "name"),
    ("alias collides", NODES + agency("000.00.00.G22") + agency("000.00.00.G09", extra='aliases = ["000.00.00.G22"]'),
     "000.00.00.G22"),
    ("not toml", "[[nodes]\n", "TOML"),
]


@pytest.mark.parametrize(("label", "text", "fragment"), BAD, ids=[b[0] for b in BAD])
def test_directory_errors_name_the_problem(tmp_path: Path, label: str, text: str, fragment: str) -> None:
    path = write(tmp_path, text)
    with pytest.raises((DirectoryError, ConfigError)) as info:
        load_directory(path)
    message = str(info.value)
    assert fragment in message
    assert str(path) in message
