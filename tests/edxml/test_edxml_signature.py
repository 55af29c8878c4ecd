"""The envelope signature: sign, verify, survive TraceHeaders, detect tampering, report weak and absent ones."""

from __future__ import annotations

import base64
import datetime as dt
import re
import shutil
import subprocess
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.hazmat.primitives.serialization import Encoding
from cryptography.x509.oid import NameOID
from edxml_samples import CORPUS, make_cert, sample_status
from lxml import etree
from signxml import SignatureConstructionMethod, XMLSigner

from docexchange.clock import VN_TZ
from docexchange.edxml import (
    PacketSigner,
    SignatureStatus,
    append_trace,
    read_packet,
    sign_packet,
    validate,
    verify_packet,
    write_document,
    write_status,
)
from docexchange.edxml.model import QCVN_NS, TraceHeader
from docexchange.edxml.signature import INTERSECT_XPATH, SUBTRACT_XPATH
from docexchange.errors import CertificateNotUsable, SigningError

DSIG = "http://www.w3.org/2000/09/xmldsig#"
HOP = TraceHeader("000.00.00.G22", dt.datetime(2025, 1, 5, 11, 0, tzinfo=VN_TZ))


def finding_codes(check) -> set[str]:
    return {f.code for f in check.findings}


# --------------------------------------------------------------------------------------------- our profile


@pytest.mark.parametrize("kind", ["rsa-pkcs1v15", "rsa-pss", "rsa-sha512", "ecdsa-p256"])
def test_sign_and_verify(kind, signers, document):
    signer = signers[kind]
    data = write_document(document, signer=signer)
    check = verify_packet(data)
    assert check.status is SignatureStatus.VALID, check.findings
    assert check.scope == "envelope"
    assert check.signer == signer.cert
    assert "sha1" not in (check.signature_method or "") and "sha1" not in (check.digest_method or "")
    assert check.message_vi == "Chữ ký gói tin: hợp lệ"
    assert validate(data).valid
    assert read_packet(data) == document  # the signature does not disturb reading
    # placed where the standard says: the last child of edXMLHeader, in the XML-DSig namespace
    root = etree.fromstring(data)
    header = root.find(f"{{{QCVN_NS}}}edXMLEnvelope/{{{QCVN_NS}}}edXMLHeader")
    assert header[-1].tag == f"{{{DSIG}}}Signature"


def test_signature_algorithms_written(signers, document):
    text = write_document(document, signer=signers["rsa-pss"]).decode()
    assert 'Algorithm="http://www.w3.org/2007/05/xmldsig-more#sha256-rsa-MGF1"' in text
    assert 'Algorithm="http://www.w3.org/2001/04/xmlenc#sha256"' in text
    assert INTERSECT_XPATH in text and SUBTRACT_XPATH in text
    text = write_document(document, signer=signers["ecdsa-p256"]).decode()
    assert 'Algorithm="http://www.w3.org/2001/04/xmldsig-more#ecdsa-sha256"' in text


def test_signature_survives_trace_headers_appended_by_every_node(rsa_signer, document, status):
    data = write_document(document, signer=rsa_signer)
    for i in range(4):
        data = append_trace(data, TraceHeader("000.00.00.G22", HOP.timestamp + dt.timedelta(minutes=i)))
        assert verify_packet(data).status is SignatureStatus.VALID
    assert len(read_packet(data).trace.headers) == 5
    assert validate(data).valid
    sdata = write_status(status, signer=rsa_signer)
    for _ in range(2):
        sdata = append_trace(sdata, HOP)
        assert verify_packet(sdata).status is SignatureStatus.VALID
    assert validate(sdata).valid


def test_sign_packet_splices_without_touching_attachments(rsa_signer, document):
    plain = write_document(document)
    signed = sign_packet(plain, rsa_signer)
    assert verify_packet(signed).status is SignatureStatus.VALID
    start = signed.index(b"<Signature ")
    end = signed.index(b"</Signature>") + len(b"</Signature>")
    assert signed[:start] + signed[end:] == plain
    assert validate(signed).valid
    with pytest.raises(SigningError):
        sign_packet(signed, rsa_signer)


def test_sign_then_trace_then_verify_via_bytes_api(signers, status):
    data = append_trace(sign_packet(write_status(status), signers["ecdsa-p256"]), HOP)
    assert verify_packet(data).status is SignatureStatus.VALID


def test_chain_is_returned_signer_first(rsa_key, document):
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "CA thử nghiệm")])
    now = dt.datetime.now(dt.UTC)
    ca = (
        x509.CertificateBuilder().subject_name(ca_name).issuer_name(ca_name).public_key(ca_key.public_key())
        .serial_number(1).not_valid_before(now - dt.timedelta(days=1)).not_valid_after(now + dt.timedelta(days=9))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(ca_key, hashes.SHA256())
    )
    leaf = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "Con dấu UBND")]))
        .issuer_name(ca_name).public_key(rsa_key.public_key()).serial_number(2)
        .not_valid_before(now - dt.timedelta(days=1)).not_valid_after(now + dt.timedelta(days=9))
        .sign(ca_key, hashes.SHA256())
    )  # fmt: skip
    check = verify_packet(write_document(document, signer=PacketSigner(rsa_key, leaf, (ca,))))
    assert check.status is SignatureStatus.VALID
    assert check.chain == (leaf, ca) and check.signer == leaf


# --------------------------------------------------------------------------------------------- tampering

TAMPERS = {
    "subject": (b"V/v k\xe1\xba\xbft n\xe1\xbb\x91i", b"V/v ng\xe1\xbb\xabng k"),
    "recipient": (b"<edXML:OrganId>000.00.00.G22</edXML:OrganId>", b"<edXML:OrganId>000.00.00.G09</edXML:OrganId>"),
    "number": (b"<edXML:CodeNumber>05<", b"<edXML:CodeNumber>06<"),
    "business": (b"<edXML:BussinessDocType>0<", b"<edXML:BussinessDocType>1<"),
    "manifest-name": (b"<edXML:AttachmentName>05-UBND-VX.pdf<", b"<edXML:AttachmentName>khac.pdf<"),
    "priority": (b"<edXML:Priority>1<", b"<edXML:Priority>3<"),
    "whitespace": (b"<edXML:Subject>", b"<edXML:Subject> "),
}


@pytest.mark.parametrize("what", sorted(TAMPERS))
def test_any_change_to_the_envelope_is_detected(what, rsa_signer, document):
    data = write_document(document, signer=rsa_signer)
    old, new = TAMPERS[what]
    assert old in data
    check = verify_packet(data.replace(old, new, 1))
    assert check.status is SignatureStatus.INVALID
    assert "digest_mismatch" in finding_codes(check)
    assert "không hợp lệ" in check.message_vi


def test_altered_signature_value_or_foreign_certificate(rsa_signer, document):
    data = write_document(document, signer=rsa_signer)
    value = re.search(rb"<SignatureValue>([^<]+)</SignatureValue>", data).group(1)
    raw = bytearray(base64.b64decode(value))
    raw[10] ^= 1
    check = verify_packet(data.replace(value, base64.b64encode(bytes(raw))))
    assert check.status is SignatureStatus.INVALID and "signature_mismatch" in finding_codes(check)
    other = make_cert(rsa.generate_private_key(public_exponent=65537, key_size=2048))
    cert = re.search(rb"<X509Certificate>([^<]+)</X509Certificate>", data).group(1)
    swapped = data.replace(cert, base64.b64encode(other.public_bytes(Encoding.DER)))
    check = verify_packet(swapped)
    assert check.status is SignatureStatus.INVALID and check.signer == other


def test_changing_the_filter_expressions_is_unsupported(rsa_signer, document):
    data = write_document(document, signer=rsa_signer)
    wider = data.replace(b"| //edXML:TraceHeaderList[not(edXML:Bussiness)]", b"| //edXML:Subject")
    check = verify_packet(wider)
    assert check.status is SignatureStatus.INVALID and "unsupported_transform" in finding_codes(check)


def test_what_the_signature_deliberately_does_not_cover(rsa_signer, document):
    """TraceHeaders (added per node) and attachment bytes (protected by PAdES) are outside the envelope digest."""
    data = write_document(document, signer=rsa_signer)
    moved = data.replace(b"<edXML:Timestamp>2025/01/05 08:30:00<", b"<edXML:Timestamp>2025/01/05 08:31:00<")
    assert moved != data and verify_packet(moved).status is SignatureStatus.VALID
    payload = re.search(rb"<edXML:ContentTransferEncoded[^>]*>([^<]+)<", data).group(1)
    other = data.replace(payload, base64.b64encode(b"%PDF-1.7 other"))
    assert verify_packet(other).status is SignatureStatus.VALID


# --------------------------------------------------------------------------------------------- what others send


class LegacySigner(XMLSigner):
    """signxml configured like the VPCP Java SDK: whole document, enveloped, default-namespace Signature."""

    def check_deprecated_methods(self) -> None:  # allow SHA-1, as real senders still use it
        return None


def legacy_sign(data: bytes, key, cert, *, sha1: bool) -> bytes:
    root = etree.fromstring(data)
    header = root.find(f"{{{QCVN_NS}}}edXMLEnvelope/{{{QCVN_NS}}}edXMLHeader")
    etree.SubElement(header, f"{{{DSIG}}}Signature", Id="placeholder", nsmap={None: DSIG})
    signer = LegacySigner(
        method=SignatureConstructionMethod.enveloped,
        signature_algorithm="rsa-sha1" if sha1 else "rsa-sha256",
        digest_algorithm="sha1" if sha1 else "sha256",
        c14n_algorithm="http://www.w3.org/TR/2001/REC-xml-c14n-20010315",
    )
    signer.namespaces = {None: DSIG}
    signed = signer.sign(root, key=key, cert=[cert])
    return etree.tostring(signed, xml_declaration=True, encoding="UTF-8")


def test_whole_document_signature_from_another_implementation(rsa_key, document):
    cert = make_cert(rsa_key)
    data = legacy_sign(write_document(document), rsa_key, cert, sha1=False)
    check = verify_packet(data)
    assert check.status is SignatureStatus.VALID and check.scope == "document" and check.signer == cert
    payload = re.search(rb"<edXML:ContentTransferEncoded[^>]*>([^<]{8})", data).group(1)
    assert verify_packet(data.replace(payload, b"AAAAAAAA", 1)).status is SignatureStatus.INVALID


def test_sha1_is_reported_weak_never_valid(rsa_key, document):
    cert = make_cert(rsa_key)
    data = legacy_sign(write_document(document), rsa_key, cert, sha1=True)
    check = verify_packet(data)
    assert check.status is SignatureStatus.WEAK
    assert "sha1" in finding_codes(check) and check.signer == cert
    assert "SHA-1" in check.status.label_vi
    tampered = data.replace(b"<edXML:CodeNumber>05<", b"<edXML:CodeNumber>06<")
    assert verify_packet(tampered).status is SignatureStatus.INVALID


def test_signature_outside_the_xmldsig_namespace_is_still_checked(rsa_key, document):
    cert = make_cert(rsa_key)
    data = legacy_sign(write_document(document), rsa_key, cert, sha1=True)
    quirk = data.replace(b'<Signature xmlns="' + DSIG.encode() + b'">', b"<Signature>", 1)
    assert quirk != data
    packet = read_packet(quirk)
    assert packet.signature.namespace == QCVN_NS
    check = verify_packet(quirk)
    assert check.status is SignatureStatus.WEAK
    assert "signature_not_xmldsig_namespace" in finding_codes(check)


def test_absent_and_empty_digital_signature(document):
    data = write_document(document)
    assert verify_packet(data).status is SignatureStatus.ABSENT
    empty = data.replace(b"</edXML:TraceHeaderList>", b"</edXML:TraceHeaderList><edXML:DigitalSignature/>", 1)
    check = verify_packet(empty)
    assert check.status is SignatureStatus.ABSENT and "empty_digital_signature" in finding_codes(check)
    assert verify_packet(write_status(sample_status())).status is SignatureStatus.ABSENT


@pytest.mark.parametrize(
    "name", ["vxp_edoc_new.edxml", "vxp_edoc_update.edxml", "tltv_edoc_new.edxml", "pvn_edoc_new_junk1212.edxml"]
)
def test_corpus_signatures_are_invalid_and_say_why(name):
    check = verify_packet((CORPUS / name).read_bytes())
    assert check.status is SignatureStatus.INVALID
    assert {"certificate_unreadable", "sha1", "signature_not_xmldsig_namespace"} <= finding_codes(check)
    assert check.scope == "document" and check.signer is None


def test_corpus_unsigned_packets_are_absent():
    for name in ("pvn_upload_bb5d2f68.edxml", "vxp_status_01_inbox.edxml", "pvn_gw_b_txt.edxml"):
        assert verify_packet((CORPUS / name).read_bytes()).status is SignatureStatus.ABSENT


# --------------------------------------------------------------------------------------------- refusals


def test_signer_refuses_weak_or_mismatched_material(rsa_key, ec_key):
    cert = make_cert(rsa_key)
    with pytest.raises(SigningError):
        PacketSigner(rsa_key, cert, digest="sha1")
    small = rsa.generate_private_key(public_exponent=65537, key_size=1024)
    with pytest.raises(SigningError):
        PacketSigner(small, make_cert(small))
    with pytest.raises(CertificateNotUsable):
        PacketSigner(rsa_key, make_cert(ec_key))
    with pytest.raises(SigningError):
        PacketSigner(ec_key, make_cert(ec_key), pss=True)
    expired = make_cert(rsa_key, not_before=dt.datetime(2020, 1, 1, tzinfo=dt.UTC), days=30)
    with pytest.raises(CertificateNotUsable):
        PacketSigner(rsa_key, expired, at=dt.datetime.now(dt.UTC))
    PacketSigner(rsa_key, expired)  # no signing time given: the caller checks validity
    no_signing = make_cert(
        rsa_key,
        key_usage=x509.KeyUsage(False, False, True, False, False, False, False, False, False),
    )
    with pytest.raises(CertificateNotUsable):
        PacketSigner(rsa_key, no_signing)


# --------------------------------------------------------------------------------------------- independent check

XMLSEC = shutil.which("xmlsec1")


@pytest.mark.skipif(XMLSEC is None, reason="xmlsec1 (Debian package xmlsec1) not installed")
@pytest.mark.parametrize("kind", ["rsa-pkcs1v15", "ecdsa-p256"])
def test_xmlsec1_verifies_our_signature_after_trace_headers(kind, signers, document, tmp_path: Path):
    signer = signers[kind]
    pem = tmp_path / "cert.pem"
    pem.write_bytes(signer.cert.public_bytes(Encoding.PEM))
    data = append_trace(append_trace(write_document(document, signer=signer), HOP), HOP)
    good = tmp_path / "good.edxml"
    good.write_bytes(data)
    bad = tmp_path / "bad.edxml"
    bad.write_bytes(data.replace(b"<edXML:CodeNumber>05<", b"<edXML:CodeNumber>06<"))

    def xmlsec(path: Path) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [XMLSEC, "--verify", "--pubkey-cert-pem", str(pem), "--enabled-reference-uris", "empty", str(path)],
            capture_output=True,
            text=True,
            timeout=60,
        )

    ok = xmlsec(good)
    assert ok.returncode == 0 and "OK" in ok.stdout + ok.stderr, ok.stderr
    assert xmlsec(bad).returncode != 0


def test_stray_leading_bytes_do_not_disturb_signing_or_verifying(rsa_signer, document):
    signed = write_document(document, signer=rsa_signer)
    assert verify_packet(b"1212" + signed).status is SignatureStatus.VALID
    spliced = sign_packet(b"1212" + write_document(document), rsa_signer)
    assert spliced.startswith(b"1212<?xml") and verify_packet(spliced).status is SignatureStatus.VALID


def test_legacy_whole_document_signatures_do_not_survive_trace_headers(rsa_key, document):
    """Why our profile subtracts TraceHeaders: a whole-document signature must be checked at the first node."""
    data = legacy_sign(write_document(document), rsa_key, make_cert(rsa_key), sha1=False)
    assert verify_packet(data).status is SignatureStatus.VALID
    assert verify_packet(append_trace(data, HOP)).status is SignatureStatus.INVALID
