"""Fixtures for the signing tests: letters, signers, independent verifiers (pyHanko's validator and poppler's
pdfsig with its own NSS database), and a second dev PKI of our own whose services we may stop."""

from __future__ import annotations

import io
import os
import re
import shutil
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass, replace
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization
from pyhanko.keys import load_cert_from_pemder
from pyhanko.pdf_utils.reader import PdfFileReader
from pyhanko.sign.validation import validate_pdf_signature, validate_pdf_timestamp
from pyhanko_certvalidator import ValidationContext

from docexchange.config import Settings
from docexchange.directory import load_directory
from docexchange.pki.devpki import DevPki
from docexchange.signing import LetterSpec, SigningService, make_letter
from helpers import ServerThread, make_settings, trust_server

SOFTHSM_LIB = Path("/usr/lib/softhsm/libsofthsm2.so")
TOKEN = "officials"
PIN = "246810"
HALONG = "000.00.11.H49"
CHAIRMAN = "h49-halong-chu-tich"
VICE = "h49-halong-pho-chu-tich"


# -- letters ---------------------------------------------------------------------------------------------------
@pytest.fixture(scope="session")
def letter() -> bytes:
    return make_letter(LetterSpec())


# -- the session PKI's signing service ------------------------------------------------------------------------
@pytest.fixture(scope="session")
def service(pki_settings: Settings, trust_services: ServerThread) -> Iterator[SigningService]:
    svc = SigningService(pki_settings)
    yield svc
    svc.close()


@pytest.fixture(scope="session")
def root_pem(pki_settings: Settings) -> Path:
    return pki_settings.keys_dir / "ca" / "root.crt"


# -- independent verifiers -------------------------------------------------------------------------------------
@dataclass
class SigReport:
    field: str
    kind: str  # "signature" or "timestamp"
    intact: bool
    valid: bool
    trusted: bool
    coverage: str
    modification: str
    docmdp_ok: bool
    has_timestamp: bool
    signed_end: int


def pyhanko_report(pdf: bytes, root: Path) -> list[SigReport]:
    """Validate every signature with pyHanko against the dev root only (no network: revocation soft-fail)."""
    anchor = load_cert_from_pemder(str(root))
    reader = PdfFileReader(io.BytesIO(pdf))
    out = []
    for sig in reader.embedded_signatures:
        vc = ValidationContext(trust_roots=[anchor], allow_fetching=False, revocation_mode="soft-fail")
        br = sig.sig_object["/ByteRange"]
        end = int(br[2]) + int(br[3])
        if sig.sig_object.get("/Type") == "/DocTimeStamp":
            ts = validate_pdf_timestamp(sig, validation_context=vc)
            out.append(SigReport(sig.field_name, "timestamp", ts.intact, ts.valid, ts.trusted, ts.coverage.name,
                                 "", True, True, end))
        else:
            st = validate_pdf_signature(sig, vc)
            out.append(SigReport(sig.field_name, "signature", st.intact, st.valid, st.trusted, st.coverage.name,
                                 st.modification_level.name if st.modification_level else "", bool(st.docmdp_ok),
                                 st.timestamp_validity is not None and st.timestamp_validity.valid, end))
    return out


@pytest.fixture(scope="session")
def nss_db(tmp_path_factory: pytest.TempPathFactory, root_pem: Path) -> Path:
    """An NSS database trusting only the dev root (for poppler's pdfsig)."""
    if not shutil.which("pdfsig") or not shutil.which("certutil"):
        pytest.fail("poppler-utils (pdfsig) and libnss3-tools (certutil) are required")
    db = tmp_path_factory.mktemp("nssdb")
    subprocess.run(["certutil", "-N", "-d", f"sql:{db}", "--empty-password"], check=True, capture_output=True)
    subprocess.run(["certutil", "-A", "-d", f"sql:{db}", "-n", "docexchange-dev-root", "-t", "CT,C,C", "-i",
                    str(root_pem)], check=True, capture_output=True)
    return db


@dataclass
class PdfsigEntry:
    field: str
    sig_type: str
    signature: str
    certificate: str
    total: bool


def pdfsig(pdf: bytes, nssdir: Path, tmp: Path) -> list[PdfsigEntry]:
    """Run poppler's pdfsig and parse one entry per (filled) signature."""
    path = tmp / "pdfsig-input.pdf"
    path.write_bytes(pdf)
    proc = subprocess.run(["pdfsig", "-nssdir", f"sql:{nssdir}", str(path)], capture_output=True, text=True,
                          timeout=120)
    entries = []
    for block in re.split(r"^Signature #\d+:\s*$", proc.stdout, flags=re.M)[1:]:
        if "is not signed" in block:
            continue

        def grab(label: str, text: str = block) -> str:
            m = re.search(rf"- {label}: (.*)", text)
            return m.group(1).strip() if m else ""

        entries.append(PdfsigEntry(grab("Signature Field Name"), grab("Signature Type"),
                                   grab("Signature Validation"), grab("Certificate Validation"),
                                   "- Total document signed" in block))
    return entries


def assert_pdfsig_valid(pdf: bytes, nssdir: Path, tmp: Path, expected_signatures: int) -> list[PdfsigEntry]:
    entries = pdfsig(pdf, nssdir, tmp)
    regular = [e for e in entries if e.sig_type != "unknown"]  # pdfsig cannot check RFC 3161 document time stamps
    assert len(regular) == expected_signatures, entries
    for e in regular:
        assert e.signature == "Signature is Valid.", e
        assert e.certificate == "Certificate is Trusted.", e
    return entries


# -- a PKI of our own (its services can be stopped without disturbing other tests) ---------------------------------
@dataclass
class OwnPki:
    settings: Settings
    pki: DevPki
    server: ServerThread

    @property
    def root(self) -> Path:
        return self.settings.keys_dir / "ca" / "root.crt"

    def root_der(self) -> bytes:
        return self.pki.root_cert.public_bytes(serialization.Encoding.DER)


@pytest.fixture(scope="session")
def own_pki(tmp_path_factory: pytest.TempPathFactory) -> Iterator[OwnPki]:
    base = tmp_path_factory.mktemp("own-pki")
    settings = make_settings(base)
    pki = DevPki.from_settings(settings)
    pki.init(load_directory(settings.directory_file))
    server = trust_server(settings)
    server.start()
    yield OwnPki(settings, DevPki.open(settings), server)
    server.stop()


@pytest.fixture
def own_services_up(own_pki: OwnPki) -> OwnPki:
    """The own PKI with its services running (restarted if a test stopped them)."""
    if own_pki.server._thread is None:
        own_pki.server.start()
    return own_pki


def with_signing(settings: Settings, **changes: object) -> Settings:
    return replace(settings, signing=replace(settings.signing, **changes))


# -- a real SoftHSM2 token -------------------------------------------------------------------------------------
@dataclass
class Token:
    conf: Path
    lib: Path
    label: str
    key_label: str


_IMPORT_CERT = """
import sys, pkcs11
from pkcs11 import Attribute, ObjectClass, CertificateType
from cryptography import x509
lib, label, pin, key_label, der_path = sys.argv[1:6]
der = open(der_path, "rb").read()
cert = x509.load_der_x509_certificate(der)
with pkcs11.lib(lib).get_token(token_label=label).open(rw=True, user_pin=pin) as s:
    s.create_object({
        Attribute.CLASS: ObjectClass.CERTIFICATE, Attribute.CERTIFICATE_TYPE: CertificateType.X_509,
        Attribute.TOKEN: True, Attribute.LABEL: key_label, Attribute.ID: b"\\x01", Attribute.VALUE: der,
        Attribute.SUBJECT: cert.subject.public_bytes(), Attribute.ISSUER: cert.issuer.public_bytes(),
        Attribute.SERIAL_NUMBER: cert.serial_number.to_bytes(20, "big"),
    })
"""


@pytest.fixture(scope="session")
def softhsm_token(tmp_path_factory: pytest.TempPathFactory, dev_pki: DevPki) -> Iterator[Token]:
    """A real SoftHSM2 token holding the chairman's key and certificate (made with softhsm2-util)."""
    if not SOFTHSM_LIB.is_file() or not shutil.which("softhsm2-util"):
        pytest.fail("SoftHSM2 is required (Debian package softhsm2)")
    base = tmp_path_factory.mktemp("softhsm")
    (base / "tokens").mkdir()
    conf = base / "softhsm2.conf"
    conf.write_text(f"directories.tokendir = {base / 'tokens'}\nobjectstore.backend = file\nlog.level = ERROR\n")
    env = {**os.environ, "SOFTHSM2_CONF": str(conf)}
    subprocess.run(["softhsm2-util", "--init-token", "--free", "--label", TOKEN, "--pin", PIN, "--so-pin",
                    "13579111"], check=True, capture_output=True, env=env)
    material = dev_pki.person(CHAIRMAN)
    key_pem = base / "key.pem"
    key_pem.write_bytes(material.key.private_bytes(  # type: ignore[union-attr]
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()))
    subprocess.run(["softhsm2-util", "--import", str(key_pem), "--token", TOKEN, "--label", CHAIRMAN, "--id", "01",
                    "--pin", PIN], check=True, capture_output=True, env=env)
    key_pem.unlink()
    der = base / "cert.der"
    der.write_bytes(material.cert.public_bytes(serialization.Encoding.DER))
    subprocess.run([sys.executable, "-c", _IMPORT_CERT, str(SOFTHSM_LIB), TOKEN, PIN, CHAIRMAN, str(der)],
                   check=True, capture_output=True, env=env)
    # the PKCS#11 library reads SOFTHSM2_CONF once, when this process first loads it
    old = os.environ.get("SOFTHSM2_CONF")
    os.environ["SOFTHSM2_CONF"] = str(conf)
    yield Token(conf, SOFTHSM_LIB, TOKEN, CHAIRMAN)
    if old is None:
        os.environ.pop("SOFTHSM2_CONF", None)
    else:
        os.environ["SOFTHSM2_CONF"] = old


