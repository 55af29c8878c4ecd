"""Long-term validation and trust-service failures, on a PKI of our own whose services we stop."""

from __future__ import annotations

import asyncio
import io
import socket
from pathlib import Path

import pytest
from conftest import CHAIRMAN, HALONG, OwnPki, with_signing
from pyhanko.keys import load_cert_from_pemder
from pyhanko.pdf_utils.reader import PdfFileReader
from pyhanko.sign.validation import async_validate_pdf_signature
from pyhanko.sign.validation.dss import DocumentSecurityStore
from pyhanko_certvalidator import ValidationContext

from docexchange.errors import TimestampUnavailable
from docexchange.signing import AppendixMark, SigningService
from helpers import free_port


def _offline_statuses(pdf: bytes, root: Path) -> list[tuple[str, bool, bool, bool]]:
    """Validate with revocation checking *required* and nothing but what the file embeds (no fetching)."""
    reader = PdfFileReader(io.BytesIO(pdf))
    kwargs = {"trust_roots": [load_cert_from_pemder(str(root))], "allow_fetching": False,
              "revocation_mode": "hard-fail"}
    try:
        dss: DocumentSecurityStore | None = DocumentSecurityStore.read_dss(reader)
    except Exception:
        dss = None
    out = []
    for sig in reader.embedded_regular_signatures:
        vc = dss.as_validation_context(kwargs) if dss else ValidationContext(ocsps=[], crls=[], **kwargs)
        status = asyncio.run(async_validate_pdf_signature(sig, vc))
        out.append((sig.field_name, status.intact, status.valid, status.trusted and status.revoked is False))
    return out


def _port_closed(port: int) -> bool:
    with socket.socket() as s:
        s.settimeout(1)
        return s.connect_ex(("127.0.0.1", port)) != 0


def test_b_lt_validates_offline_from_embedded_data(own_services_up: OwnPki, letter: bytes) -> None:
    own = own_services_up
    with SigningService(own.settings) as svc:
        lt = svc.sign(letter, svc.person(CHAIRMAN), level="B-LT")
        lt = svc.sign(lt, svc.seal(HALONG), level="B-LT")
        lta = svc.sign(letter, svc.person(CHAIRMAN), level="B-LTA")
        bt = svc.sign(letter, svc.person(CHAIRMAN), level="B-T")
    own.server.stop()
    try:
        assert _port_closed(own.settings.pki.port), "the trust services must really be down"
        assert _offline_statuses(lt, own.root) == [("nd30_person", True, True, True), ("nd30_seal", True, True, True)]
        assert _offline_statuses(lta, own.root) == [("nd30_person", True, True, True)]
        # control: without the DSS (B-T) the same offline validation cannot establish revocation status
        ((_name, intact, valid, trusted),) = _offline_statuses(bt, own.root)
        assert intact and not (valid and trusted)
    finally:
        own.server.start()


def test_tsa_down_gives_a_clear_error_and_b_b_still_works(own_services_up: OwnPki, letter: bytes) -> None:
    dead = f"http://127.0.0.1:{free_port()}/tsa"
    settings = with_signing(own_services_up.settings, tsa_url=dead)
    with SigningService(settings) as svc:
        for level in ("B-T", "B-LT", "B-LTA"):
            with pytest.raises(TimestampUnavailable) as err:
                svc.sign(letter, svc.person(CHAIRMAN), level=level)
            assert "dấu thời gian" in err.value.message_vi and dead in err.value.message_en
        assert svc.sign(letter, svc.seal(HALONG), level="B-B", appendix=AppendixMark("05/QĐ-UBND"))


def test_tsa_answering_garbage_is_refused(own_services_up: OwnPki, letter: bytes) -> None:
    # the OCSP endpoint answers, but not with a time stamp
    settings = with_signing(own_services_up.settings, tsa_url=f"{own_services_up.settings.pki.base_url}/health")
    with SigningService(settings) as svc, pytest.raises(TimestampUnavailable):
        svc.sign(letter, svc.person(CHAIRMAN), level="B-T")
