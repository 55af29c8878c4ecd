from pathlib import Path

import pytest

from docexchange.config import PadesLevel, Settings, load_settings
from docexchange.errors import ConfigError
from helpers import REPO


def test_shipped_config_documents_every_setting_with_its_default() -> None:
    loaded = load_settings(REPO / "config" / "docexchange.toml")
    defaults = Settings()
    for block in ("paths", "pki", "serve", "store", "signing", "verification", "exchange", "scheduler"):
        assert getattr(loaded, block) == getattr(defaults, block), block
    text = (REPO / "config" / "docexchange.toml").read_text()
    from dataclasses import fields

    for block in fields(Settings):
        if block.name == "base_dir":
            continue
        assert f"[{block.name}]" in text
        for f in fields(getattr(defaults, block.name)):
            documented = f"\n{f.name} =" in text or f"# [[{block.name}.{f.name}]]" in text  # arrays of tables
            assert documented, f"{block.name}.{f.name} not documented"


def test_paths_resolve_against_project_root() -> None:
    s = load_settings(REPO / "config" / "docexchange.toml")
    assert s.keys_dir == REPO / "keys"
    assert s.directory_file == REPO / "config" / "agencies.toml"


@pytest.mark.parametrize(
    ("text", "fragments"),
    [
        ('[signing]\nlevel = "B-X"\n', ["signing.level", "'B-LT'"]),
        ("[pki]\nport = \"80\"\n", ["pki.port", "an integer"]),
        ("[pki]\nprot = 80\n", ["'pki.prot'", "unknown key"]),
        ("[nonsense]\nx = 1\n", ["'nonsense'"]),
        ("[serve]\nnodes = [1]\n", ["serve.nodes[0]", "a string"]),
        ("[serve]\ntrust_services = 1\n", ["serve.trust_services", "true or false"]),
        ("pki = 3\n", ["'pki'", "a table"]),
    ],
)
def test_bad_settings_name_file_key_and_expectation(tmp_path: Path, text: str, fragments: list[str]) -> None:
    cfg = tmp_path / "docexchange.toml"
    cfg.write_text(text)
    with pytest.raises(ConfigError) as info:
        load_settings(cfg)
    message = info.value.message_en
    assert str(cfg) in message
    for fragment in fragments:
        assert fragment in message


def test_valid_override(tmp_path: Path) -> None:
    cfg = tmp_path / "docexchange.toml"
    cfg.write_text('[signing]\nlevel = "B-T"\n[serve]\nnodes = ["vdxp"]\n')
    s = load_settings(cfg)
    assert s.signing.level is PadesLevel.B_T
    assert s.serve.nodes == ("vdxp",)
    assert s.pki.port == 8480


def test_explicit_missing_file_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as info:
        load_settings(tmp_path / "nope.toml")
    assert "nope.toml" in str(info.value)
