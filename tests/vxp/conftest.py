"""Fixtures of the national-axis-style API tests: three real axis nodes (Quảng Ninh → national → Huế) over
HTTPS with mutual TLS between them, built with the exchange tests' harness, and a letter signed person-then-seal
with :mod:`docexchange.signing` packed in edXML by the sending commune's "own software"."""

from __future__ import annotations

import sys
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import pytest_asyncio

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(HERE.parent / "exchange"))

from exchange_harness import Federation, write_directory, write_project  # noqa: E402
from vxp_harness import HONG_GAI, SNV_HUE, THUAN_HOA, Letter, sign_letter, snapshot  # noqa: E402

from docexchange.config import Settings  # noqa: E402
from docexchange.web.app import NodeOptions  # noqa: E402
from helpers import ServerThread  # noqa: E402

THREE_NODES = ("vdxp", "lgsp-h49", "lgsp-h57")


def three_node_project(base: Path, pki_settings: Settings) -> Settings:
    """A project on the session PKI whose directory has the three nodes of config/agencies.toml on free ports:
    Quảng Ninh (lgsp-h49) and Huế (lgsp-h57) under the national axis (vdxp); arrival verification on."""
    settings = write_project(base, pki_settings.keys_dir, pki_settings.pki.port, verify=True)
    write_directory(Path(settings.directory_file), four_level=False)
    return settings


@pytest.fixture(scope="module")
def vxp_settings(tmp_path_factory: pytest.TempPathFactory, pki_settings: Settings) -> Settings:
    return three_node_project(tmp_path_factory.mktemp("vxp-project"), pki_settings)


@pytest.fixture(scope="module")
def letter(vxp_settings: Settings, trust_services: ServerThread) -> Letter:
    """UBND phường Hồng Gai's letter to Sở Nội vụ Huế: PDF signed by its chairman, then sealed (PAdES B-LT
    against the live TSA/OCSP), in an edXML packet written as the commune's QLVB would."""
    return sign_letter(vxp_settings, HONG_GAI, [SNV_HUE], number="12")


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def federation(vxp_settings: Settings, trust_services: ServerThread) -> AsyncIterator[Federation]:
    fed = Federation(vxp_settings)
    # Documents in these tests are delivered at Huế: only that node verifies arrivals (saves two worker pools).
    await fed.start("vdxp", "lgsp-h49", options=NodeOptions(verify_on_arrival=False))
    await fed.start("lgsp-h57")
    try:
        yield fed
    finally:
        await fed.close()


class Axis:
    """What the API tests get from the server side, as plain values: node URLs, the CA file, credentials issued
    by the operator, and digests of a node's store (to check that a refused call changed nothing)."""

    def __init__(self, fed: Federation) -> None:
        self.fed = fed
        self.settings = fed.settings
        self.ca_file = str(fed.ca_file)

    def url(self, node_id: str) -> str:
        return self.fed.directory.node(node_id).url

    def home(self, agency: str) -> str:
        return self.fed.directory.agency(agency).node

    async def credential(self, node_id: str, system_id: str, agencies: list[str], role: str = "agency") -> str:
        from docexchange.web.auth import Role

        return await self.fed.credential(node_id, system_id, Role(role), agencies)

    async def revoke(self, node_id: str, system_id: str) -> None:
        from docexchange.web.keys import CREDENTIALS

        await self.fed.app(node_id)[CREDENTIALS].revoke(system_id)

    def snapshot(self, node_id: str, *, nonces: bool = True) -> str:
        return snapshot(self.settings, node_id, nonces=nonces)

    def snapshots(self, *, nonces: bool = True) -> dict[str, str]:
        return {n: self.snapshot(n, nonces=nonces) for n in self.fed.apps}


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def axis(federation: Federation) -> Axis:
    return Axis(federation)


@pytest.fixture(scope="module")
def second_letter(vxp_settings: Settings, trust_services: ServerThread) -> Letter:
    """Another letter of Hồng Gai, to Sở Nội vụ Huế and UBND phường Thuận Hóa (two mailboxes at Huế)."""
    return sign_letter(vxp_settings, HONG_GAI, [SNV_HUE, THUAN_HOA], number="13",
                       subject="Về việc cử cán bộ tham gia tập huấn văn thư điện tử")
