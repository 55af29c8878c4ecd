"""The live trust services answer real clients: pyHanko's HTTP time-stamp client and `openssl ocsp`."""

from __future__ import annotations

import asyncio
import hashlib
import subprocess
import urllib.request
from pathlib import Path

from asn1crypto import x509 as asn1_x509
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.x509.oid import NameOID
from pyhanko.sign.timestamps import HTTPTimeStamper
from pyhanko.sign.validation.generic_cms import validate_tst_signed_data
from pyhanko_certvalidator import ValidationContext

from docexchange.pki.devpki import CertKind, DevPki
from helpers import ServerThread


def asn1(cert: x509.Certificate) -> asn1_x509.Certificate:
    return asn1_x509.Certificate.load(cert.public_bytes(serialization.Encoding.DER))


def test_tsa_answers_pyhanko_and_token_verifies(dev_pki: DevPki, trust_services: ServerThread) -> None:
    digest = hashlib.sha256(b"Quyet dinh so 05/QD-UBND").digest()
    stamper = HTTPTimeStamper(f"{trust_services.url}/tsa")
    token = asyncio.run(stamper.async_timestamp(digest, "sha256"))
    signed_data = token["content"]
    tst_info = signed_data["encap_content_info"]["content"].parsed
    assert tst_info["message_imprint"]["hashed_message"].native == digest
    ctx = ValidationContext(
        trust_roots=[asn1(dev_pki.root_cert)],
        other_certs=[asn1(c) for c in dev_pki.intermediates()],
        allow_fetching=True,
    )
    from pyhanko.sign.validation.status import TimestampSignatureStatus

    kwargs = asyncio.run(validate_tst_signed_data(signed_data, ctx, lambda _algo: digest))
    status = TimestampSignatureStatus(**kwargs)
    assert status.intact and status.valid
    assert status.trusted, status.validation_path
    assert status.signing_cert.subject.native["common_name"] == "docexchange Dev TSA"
    # a token for other bytes does not match
    other = TimestampSignatureStatus(
        **asyncio.run(validate_tst_signed_data(signed_data, ctx, lambda _algo: b"\x00" * 32))
    )
    assert not other.intact


def status_of(req: urllib.request.Request) -> tuple[str, set[str]]:
    from asn1crypto import core, tsp

    with urllib.request.urlopen(req, timeout=10) as resp:
        body = resp.read()
    status = tsp.PKIStatusInfo.load(core.load(body)[0].dump())
    return status["status"].native, set(status["fail_info"].native)


def test_tsa_refuses_garbage_and_sha1(trust_services: ServerThread) -> None:
    from asn1crypto import tsp

    req = urllib.request.Request(f"{trust_services.url}/tsa", data=b"garbage",
                                 headers={"Content-Type": "application/timestamp-query"})
    assert status_of(req) == ("rejection", {"bad_data_format"})
    sha1_req = tsp.TimeStampReq({
        "version": 1,
        "message_imprint": {"hash_algorithm": {"algorithm": "sha1"}, "hashed_message": b"\x00" * 20},
        "cert_req": True,
    }).dump()
    req = urllib.request.Request(f"{trust_services.url}/tsa", data=sha1_req,
                                 headers={"Content-Type": "application/timestamp-query"})
    assert status_of(req) == ("rejection", {"bad_alg"})


def _openssl_ocsp(dev_pki: DevPki, url: str, cert_file: Path, tmp: Path) -> str:
    issuer = tmp / "issuer.pem"
    issuer.write_bytes(dev_pki.ca_cert("person").public_bytes(serialization.Encoding.PEM))
    root = tmp / "root.pem"
    root.write_bytes(dev_pki.root_cert.public_bytes(serialization.Encoding.PEM))
    out = subprocess.run(
        ["openssl", "ocsp", "-issuer", str(issuer), "-cert", str(cert_file), "-url", f"{url}/ocsp/person",
         "-CAfile", str(root), "-verify_other", str(issuer)],
        capture_output=True, text=True, timeout=30, check=True,
    )
    assert "Response verify OK" in out.stderr + out.stdout
    return out.stdout


def test_ocsp_good_then_revoked_and_crl_lists_serial(
    dev_pki: DevPki, trust_services: ServerThread, tmp_path: Path
) -> None:
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "Cán bộ thử thu hồi")])
    m = dev_pki.issue(CertKind.PERSON, subject, "test-revoke-person", ca_id="person")
    cert_file = tmp_path / "c.pem"
    cert_file.write_bytes(m.cert.public_bytes(serialization.Encoding.PEM))

    first = _openssl_ocsp(dev_pki, trust_services.url, cert_file, tmp_path)
    assert f"{cert_file}: good" in first

    # `docexchange pki revoke` in another process, exactly as an operator would
    env_cfg = str(Path(dev_pki.keys_dir).parent / "config" / "docexchange.toml")
    subprocess.run(["docexchange", "--config", env_cfg, "pki", "revoke", f"{m.cert.serial_number:x}",
                    "--reason", "key_compromise"], check=True, capture_output=True, timeout=60)

    second = _openssl_ocsp(dev_pki, trust_services.url, cert_file, tmp_path)
    assert f"{cert_file}: revoked" in second
    assert "keyCompromise" in second

    with urllib.request.urlopen(f"{trust_services.url}/crl/person.crl", timeout=10) as resp:
        crl = x509.load_der_x509_crl(resp.read())
    assert crl.is_signature_valid(dev_pki.ca_cert("person").public_key())  # type: ignore[arg-type]
    entry = crl.get_revoked_certificate_by_serial_number(m.cert.serial_number)
    assert entry is not None
    assert entry.extensions.get_extension_for_class(x509.CRLReason).value.reason == x509.ReasonFlags.key_compromise


def test_ocsp_unknown_for_foreign_serial_and_errors(dev_pki: DevPki, trust_services: ServerThread) -> None:
    from cryptography.hazmat.primitives import hashes
    from cryptography.x509 import ocsp

    person = dev_pki.person("h49-chu-tich")
    # ask the org responder about a person certificate: wrong issuer → unauthorized
    req = ocsp.OCSPRequestBuilder().add_certificate(person.cert, person.chain[0], hashes.SHA256()).build()
    http = urllib.request.Request(f"{trust_services.url}/ocsp/org", data=req.public_bytes(serialization.Encoding.DER),
                                  headers={"Content-Type": "application/ocsp-request"})
    with urllib.request.urlopen(http, timeout=10) as resp:
        answer = ocsp.load_der_ocsp_response(resp.read())
    assert answer.response_status == ocsp.OCSPResponseStatus.UNAUTHORIZED
    http = urllib.request.Request(f"{trust_services.url}/ocsp/person", data=b"junk",
                                  headers={"Content-Type": "application/ocsp-request"})
    with urllib.request.urlopen(http, timeout=10) as resp:
        answer = ocsp.load_der_ocsp_response(resp.read())
    assert answer.response_status == ocsp.OCSPResponseStatus.MALFORMED_REQUEST


def test_ca_certificates_served_for_aia(dev_pki: DevPki, trust_services: ServerThread) -> None:
    with urllib.request.urlopen(f"{trust_services.url}/certs/person.crt", timeout=10) as resp:
        assert x509.load_der_x509_certificate(resp.read()) == dev_pki.ca_cert("person")
