"""Harness of the web-page tests: a project whose Hồng Gai commune has its own axis node under the Quảng Ninh
provincial node, and the constants the tests share."""

from __future__ import annotations

import sys
import tomllib
from dataclasses import dataclass
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "exchange"))

from exchange_harness import NodeProcess, dump_directory, write_project  # noqa: E402

from docexchange.config import Settings, load_settings  # noqa: E402
from docexchange.directory import load_directory  # noqa: E402
from helpers import REPO, free_port  # noqa: E402

__all__ = [
    "ARTIFACTS",
    "CHROMIUM",
    "CHROMIUM_ARGS",
    "COMMUNE_NODE",
    "GOVERNMENT_OFFICE",
    "HONG_GAI",
    "PROVINCE",
    "PROVINCE_NODE",
    "SO_NOI_VU",
    "NodeProcess",
    "UiBed",
    "write_ui_project",
]

ARTIFACTS = REPO / "test-artifacts" / "ui"
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--headless=new", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]

HONG_GAI = "000.01.11.H49"
"""Ủy ban nhân dân phường Hồng Gai (commune), on its own node ``lgsp-h49-hg``."""
PROVINCE = "000.00.00.H49"
"""Ủy ban nhân dân tỉnh Quảng Ninh, on ``lgsp-h49``."""
SO_NOI_VU = "000.00.01.H49"
"""Sở Nội vụ tỉnh Quảng Ninh: another agency of the provincial node."""
COMMUNE_NODE = "lgsp-h49-hg"
PROVINCE_NODE = "lgsp-h49"
GOVERNMENT_OFFICE = "000.00.00.G22"
"""Văn phòng Chính phủ, on the national axis ``vdxp`` (not running in these tests)."""


def write_ui_project(base: Path, keys_dir: Path, pki_port: int) -> Settings:
    """The exchange harness's project (sample directory, free ports, arrival verification on) plus a
    commune-level axis node for Hồng Gai under the Quảng Ninh node."""
    # The national axis is not started in these tests: deliveries routed to it die after two attempts, so the
    # operator's page has real dead letters to show and resend.
    write_project(base, keys_dir, pki_port, verify=True, four_level=False,
                  exchange={"routes": [{"peer": "vdxp", "max_attempts": 2, "retry_window_hours": 1.0}]})
    path = base / "config" / "agencies.toml"
    data = tomllib.loads(path.read_text("utf-8"))
    data["nodes"].append({"id": COMMUNE_NODE, "name": "Trục liên thông phường Hồng Gai", "parent": PROVINCE_NODE,
                          "host": "127.0.0.1", "port": free_port(), "organ_id": HONG_GAI})
    for a in data["agencies"]:
        if a["code"] == HONG_GAI:
            a["node"] = COMMUNE_NODE
    path.write_text(dump_directory(data), "utf-8")
    return load_settings(base / "config" / "docexchange.toml")


@dataclass
class UiBed:
    settings: Settings
    nodes: dict[str, NodeProcess]

    def url(self, node_id: str, path: str = "/ui/") -> str:
        node = load_directory(self.settings.directory_file).node(node_id)
        return f"https://{node.host}:{node.port}{path}"
