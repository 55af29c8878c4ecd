"""The envelope signature: an enveloped XML-DSig by the sending agency's seal, at ``edXMLHeader/Signature``.

What it covers. Every node on the way appends a TraceHeader to the header, so a signature over the whole
envelope would break at the first hop. Ours uses the W3C XML-Signature XPath Filter 2.0 transform to say so
explicitly: the reference is the envelope (``intersect /edXML:edXML/edXML:edXMLEnvelope``) minus TraceHeaders
(``subtract //edXML:TraceHeaderList/edXML:TraceHeader | //edXML:TraceHeaderList[not(edXML:Bussiness)]``),
canonicalized with exclusive C14N; ``Bussiness`` (new / revoke / update / replace) stays covered. Attachments
sit outside the envelope and are not covered: the PDF's own PAdES signatures are the legal ones; this signature
protects the envelope's metadata (sender, recipients, number, subject, manifest).

Algorithms produced: SHA-256 (or -384/-512) with RSA PKCS#1 v1.5, RSASSA-PSS (RFC 9231 ``sha256-rsa-MGF1``) or
ECDSA; never SHA-1. Verification also reads what real senders write — ``Reference URI=""`` with only the
enveloped-signature transform, a ``Signature`` outside the XML-DSig namespace, SHA-1 — and reports:

* ``valid``   — the digest and the signature value check out with strong algorithms;
* ``weak``    — they check out, but with SHA-1 (or RSA < 2048): reported, never trusted;
* ``invalid`` — anything does not check out or cannot be evaluated (truncated certificate, altered content,
  unsupported transform);
* ``absent``  — no signature.

Who the signer is allowed to be (the seal of the From agency, a certificate chaining to a trusted root, not
revoked) is for the verification layer: this module returns the signer certificate and the chain it carried.
"""

from __future__ import annotations

import base64
import binascii
import enum
import hashlib
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa, utils
from cryptography.hazmat.primitives.asymmetric.types import PrivateKeyTypes
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat
from lxml import etree

from docexchange.edxml._locate import Mark, locate, scan, tag_bounds
from docexchange.edxml._xml import (
    DSIG_NS,
    FILTER2_NS,
    QCVN_NS,
    MiB,
    ReadLimits,
    local,
    namespace,
    parse_native,
    prepare,
)
from docexchange.errors import CertificateNotUsable, EdxmlError, InvalidPacket, SigningError

__all__ = [
    "INTERSECT_XPATH",
    "SUBTRACT_XPATH",
    "Finding",
    "PacketSigner",
    "SignatureCheck",
    "SignatureStatus",
    "sign_packet",
    "sign_tree",
    "verify_packet",
]

INTERSECT_XPATH = "/edXML:edXML/edXML:edXMLEnvelope"
SUBTRACT_XPATH = "//edXML:TraceHeaderList/edXML:TraceHeader | //edXML:TraceHeaderList[not(edXML:Bussiness)]"

_C14N_10 = "http://www.w3.org/TR/2001/REC-xml-c14n-20010315"
_C14N_10_COMMENTS = _C14N_10 + "#WithComments"
_C14N_11 = "http://www.w3.org/2006/12/xml-c14n11"
_C14N_11_COMMENTS = _C14N_11 + "#WithComments"
_EXC_C14N = "http://www.w3.org/2001/10/xml-exc-c14n#"
_EXC_C14N_COMMENTS = _EXC_C14N + "WithComments"
_C14N = {_C14N_10, _C14N_10_COMMENTS, _C14N_11, _C14N_11_COMMENTS, _EXC_C14N, _EXC_C14N_COMMENTS}
_C14N_ALIASES = {
    "http://www.w3.org/TR/xml-exc-c14n#": _EXC_C14N,  # seen in the VPCP SDK samples (a mistyped URI)
    "http://www.w3.org/TR/xml-exc-c14n#WithComments": _EXC_C14N_COMMENTS,
}
_ENVELOPED = "http://www.w3.org/2000/09/xmldsig#enveloped-signature"
_FILTER2 = FILTER2_NS

_DIGESTS: dict[str, tuple[type[hashes.HashAlgorithm], str]] = {
    "http://www.w3.org/2000/09/xmldsig#sha1": (hashes.SHA1, "sha1"),
    "http://www.w3.org/2001/04/xmldsig-more#sha224": (hashes.SHA224, "sha224"),
    "http://www.w3.org/2001/04/xmlenc#sha256": (hashes.SHA256, "sha256"),
    "http://www.w3.org/2001/04/xmldsig-more#sha384": (hashes.SHA384, "sha384"),
    "http://www.w3.org/2001/04/xmlenc#sha512": (hashes.SHA512, "sha512"),
    "http://www.w3.org/2007/05/xmldsig-more#sha3-256": (hashes.SHA3_256, "sha3-256"),
    "http://www.w3.org/2007/05/xmldsig-more#sha3-384": (hashes.SHA3_384, "sha3-384"),
    "http://www.w3.org/2007/05/xmldsig-more#sha3-512": (hashes.SHA3_512, "sha3-512"),
}
_DIGEST_URI = {
    "sha256": "http://www.w3.org/2001/04/xmlenc#sha256",
    "sha384": "http://www.w3.org/2001/04/xmldsig-more#sha384",
    "sha512": "http://www.w3.org/2001/04/xmlenc#sha512",
}

_MORE = "http://www.w3.org/2001/04/xmldsig-more#"
_MGF1 = "http://www.w3.org/2007/05/xmldsig-more#"
_SIGNATURES: dict[str, tuple[str, type[hashes.HashAlgorithm]]] = {
    "http://www.w3.org/2000/09/xmldsig#rsa-sha1": ("rsa", hashes.SHA1),
    _MORE + "rsa-sha224": ("rsa", hashes.SHA224),
    _MORE + "rsa-sha256": ("rsa", hashes.SHA256),
    _MORE + "rsa-sha384": ("rsa", hashes.SHA384),
    _MORE + "rsa-sha512": ("rsa", hashes.SHA512),
    _MGF1 + "sha1-rsa-MGF1": ("rsa-pss", hashes.SHA1),
    _MGF1 + "sha256-rsa-MGF1": ("rsa-pss", hashes.SHA256),
    _MGF1 + "sha384-rsa-MGF1": ("rsa-pss", hashes.SHA384),
    _MGF1 + "sha512-rsa-MGF1": ("rsa-pss", hashes.SHA512),
    _MORE + "ecdsa-sha1": ("ecdsa", hashes.SHA1),
    _MORE + "ecdsa-sha224": ("ecdsa", hashes.SHA224),
    _MORE + "ecdsa-sha256": ("ecdsa", hashes.SHA256),
    _MORE + "ecdsa-sha384": ("ecdsa", hashes.SHA384),
    _MORE + "ecdsa-sha512": ("ecdsa", hashes.SHA512),
}

_ENVELOPE_SCAN_LIMIT = 4 * MiB
_SPKI = PublicFormat.SubjectPublicKeyInfo


class SignatureStatus(enum.StrEnum):
    VALID = "valid"
    INVALID = "invalid"
    WEAK = "weak"
    ABSENT = "absent"

    @property
    def label_vi(self) -> str:
        return {
            "valid": "hợp lệ",
            "invalid": "không hợp lệ",
            "weak": "thuật toán yếu (SHA-1) — không tin cậy",
            "absent": "không có chữ ký gói tin",
        }[self.value]

    @property
    def label_en(self) -> str:
        return {
            "valid": "valid",
            "invalid": "invalid",
            "weak": "weak algorithm (SHA-1) — not trusted",
            "absent": "no packet signature",
        }[self.value]


@dataclass(frozen=True)
class Finding:
    """One observation about the signature; ``code`` is stable."""

    code: str
    message_vi: str
    message_en: str
    fatal: bool = False
    """True when this finding alone makes the signature invalid."""

    def to_dict(self) -> dict[str, Any]:
        return {"code": self.code, "message_vi": self.message_vi, "message_en": self.message_en, "fatal": self.fatal}


@dataclass(frozen=True)
class SignatureCheck:
    """The result of verifying a packet's envelope signature (never an exception for a bad signature)."""

    status: SignatureStatus
    signer: x509.Certificate | None = None
    chain: tuple[x509.Certificate, ...] = ()
    """Every certificate the signature carried, signer first."""
    signature_method: str | None = None
    digest_method: str | None = None
    scope: str = ""
    """``envelope`` (envelope minus TraceHeaders: our profile) or ``document`` (whole document: legacy senders)."""
    findings: tuple[Finding, ...] = field(default=())

    @property
    def message_vi(self) -> str:
        text = f"Chữ ký gói tin: {self.status.label_vi}"
        reasons = [f.message_vi for f in self.findings if f.fatal]
        return text + (f" ({'; '.join(reasons)})" if reasons else "")

    @property
    def message_en(self) -> str:
        text = f"packet signature: {self.status.label_en}"
        reasons = [f.message_en for f in self.findings if f.fatal]
        return text + (f" ({'; '.join(reasons)})" if reasons else "")

    def to_dict(self) -> dict[str, Any]:
        return {
            "status": self.status.value,
            "label_vi": self.status.label_vi,
            "signer_subject": self.signer.subject.rfc4514_string() if self.signer is not None else None,
            "signer_serial": format(self.signer.serial_number, "x") if self.signer is not None else None,
            "certificates": len(self.chain),
            "signature_method": self.signature_method,
            "digest_method": self.digest_method,
            "scope": self.scope,
            "findings": [f.to_dict() for f in self.findings],
        }


# --------------------------------------------------------------------------------------------- signing


@dataclass(frozen=True)
class PacketSigner:
    """The seal key of the sending agency, its certificate and the issuer chain (``cryptography`` objects).

    ``pss`` signs RSA keys with RSASSA-PSS (TT 15/2025 asks new software for it); PKCS#1 v1.5 otherwise.
    ``at``, when given, is the signing moment: the certificate must be valid then.
    """

    key: PrivateKeyTypes
    cert: x509.Certificate
    chain: tuple[x509.Certificate, ...] = ()
    pss: bool = False
    digest: str = "sha256"
    at: datetime | None = None

    def __post_init__(self) -> None:
        if self.digest not in _DIGEST_URI:
            raise SigningError(
                f"Thuật toán băm {self.digest!r} không được dùng (chỉ SHA-256, SHA-384, SHA-512)",
                f"digest {self.digest!r} is not allowed (SHA-256, SHA-384 or SHA-512 only)",
            )
        key = self.key
        if isinstance(key, rsa.RSAPrivateKey):
            if key.key_size < 2048:
                raise SigningError(
                    f"Khóa RSA {key.key_size} bit quá ngắn (tối thiểu 2048)",
                    f"RSA key of {key.key_size} bits is too short (2048 at least)",
                )
        elif isinstance(key, ec.EllipticCurvePrivateKey):
            if key.curve.key_size < 256:
                raise SigningError(
                    "Khóa ECDSA quá ngắn (tối thiểu 256 bit)", "ECDSA key too short (256 bits at least)"
                )
            if self.pss:
                raise SigningError("PSS chỉ dùng với khóa RSA", "PSS applies to RSA keys only")
        else:
            raise SigningError(
                f"Kiểu khóa {type(key).__name__} không được hỗ trợ (RSA hoặc ECDSA)",
                f"key type {type(key).__name__} is not supported (RSA or ECDSA)",
            )
        if self.cert.public_key().public_bytes(Encoding.DER, _SPKI) != key.public_key().public_bytes(
            Encoding.DER, _SPKI
        ):
            raise CertificateNotUsable(
                "Chứng thư số không khớp với khóa bí mật", "the certificate does not match the private key"
            )
        try:
            usage = self.cert.extensions.get_extension_for_class(x509.KeyUsage).value
        except x509.ExtensionNotFound:
            usage = None
        if usage is not None and not (usage.digital_signature or usage.content_commitment):
            raise CertificateNotUsable(
                "Chứng thư số không cho phép ký số (KeyUsage)", "the certificate does not allow signing (KeyUsage)"
            )
        if self.at is not None:
            if self.at.tzinfo is None:
                raise SigningError("Thời điểm ký phải có múi giờ", "the signing time must be timezone-aware")
            if not (self.cert.not_valid_before_utc <= self.at <= self.cert.not_valid_after_utc):
                raise CertificateNotUsable(
                    "Chứng thư số không còn (hoặc chưa) hiệu lực tại thời điểm ký",
                    "the certificate is not valid at the signing time",
                )

    @classmethod
    def from_key_material(cls, material: Any, **kw: Any) -> PacketSigner:
        """From anything with ``key``, ``cert`` and ``chain`` (e.g. :class:`docexchange.pki.keystore.KeyMaterial`)."""
        return cls(key=material.key, cert=material.cert, chain=tuple(material.chain), **kw)

    @property
    def signature_uri(self) -> str:
        if isinstance(self.key, ec.EllipticCurvePrivateKey):
            return _MORE + f"ecdsa-{self.digest}"
        if self.pss:
            return _MGF1 + f"{self.digest}-rsa-MGF1"
        return _MORE + f"rsa-{self.digest}"

    def _hash(self) -> hashes.HashAlgorithm:
        if self.digest == "sha384":
            return hashes.SHA384()
        if self.digest == "sha512":
            return hashes.SHA512()
        return hashes.SHA256()

    def sign_bytes(self, data: bytes) -> bytes:
        h = self._hash()
        key = self.key
        if isinstance(key, ec.EllipticCurvePrivateKey):
            der = key.sign(data, ec.ECDSA(h))
            r, s = utils.decode_dss_signature(der)
            size = (key.curve.key_size + 7) // 8
            return r.to_bytes(size, "big") + s.to_bytes(size, "big")
        assert isinstance(key, rsa.RSAPrivateKey)
        if self.pss:
            return key.sign(data, padding.PSS(mgf=padding.MGF1(h), salt_length=h.digest_size), h)
        return key.sign(data, padding.PKCS1v15(), h)


def _ds(name: str) -> str:
    return "{" + DSIG_NS + "}" + name


def _child(parent: Any, name: str, **attrib: str) -> Any:
    return etree.SubElement(parent, _ds(name), attrib)


def _envelope_of(root: Any) -> tuple[Any, Any]:
    env = next((c for c in root if isinstance(c.tag, str) and local(c) == "edXMLEnvelope"), None)
    if env is None:
        raise InvalidPacket("Gói tin không có edXMLEnvelope", "the packet has no edXMLEnvelope")
    header = next((c for c in env if isinstance(c.tag, str) and local(c) == "edXMLHeader"), None)
    if header is None:
        raise InvalidPacket("Gói tin không có edXMLHeader", "the packet has no edXMLHeader")
    return env, header


def _remove_keep_tail(el: Any) -> None:
    """Remove ``el`` but keep the text that followed it (it belongs to the parent, not to ``el``)."""
    parent = el.getparent()
    tail = el.tail
    if tail:
        prev = el.getprevious()
        if prev is not None:
            prev.tail = (prev.tail or "") + tail
        else:
            parent.text = (parent.text or "") + tail
    parent.remove(el)


def _index_path(ancestor: Any, el: Any) -> list[int]:
    path: list[int] = []
    while el is not ancestor:
        parent = el.getparent()
        if parent is None:
            raise EdxmlError("Lỗi nội bộ: phần tử không thuộc phong bì", "internal error: element outside envelope")
        path.append(parent.index(el))
        el = parent
    return path[::-1]


def _follow(ancestor: Any, path: list[int]) -> Any:
    el = ancestor
    for i in path:
        el = el[i]
    return el


def _internal_parser() -> Any:
    # A parser per call: lxml parsers must not be shared between threads. Input is our own serialization of a
    # tree that already passed the limits, hence huge_tree.
    return etree.XMLParser(resolve_entities=False, no_network=True, load_dtd=False, collect_ids=False, huge_tree=True)


def _standalone(el: Any) -> Any:
    """A copy of ``el`` as the root of its own document, declaring every namespace in scope at ``el``.

    Canonicalizing this root gives the C14N of ``el``'s subtree as a document subset (inclusive C14N renders all
    in-scope namespaces on the apex). lxml's own subtree C14N can emit spurious ``xmlns=""``; this cannot.
    """
    return etree.fromstring(etree.tostring(el, with_tail=False), _internal_parser())


def _c14n(el: Any, algorithm: str, prefixes: list[str] | None = None, *, standalone: bool = False) -> bytes:
    exclusive = algorithm.startswith(_EXC_C14N)
    with_comments = algorithm.endswith("WithComments")
    target = el if standalone else _standalone(el)
    return bytes(
        etree.tostring(
            target,
            method="c14n",
            exclusive=exclusive,
            with_comments=with_comments,
            inclusive_ns_prefixes=prefixes if exclusive else None,
        )
    )


def _envelope_octets(root: Any, sig: Any, c14n_alg: str, prefixes: list[str] | None) -> bytes:
    """The filter-2 node set of our profile, canonicalized: the envelope minus the signature and TraceHeaders."""
    env, _ = _envelope_of(root)
    sig_path = _index_path(env, sig)
    work = _standalone(env)
    _remove_keep_tail(_follow(work, sig_path))
    doomed = []
    for el in work.iter():
        if not isinstance(el.tag, str) or el.tag != "{" + QCVN_NS + "}TraceHeaderList":
            continue
        has_bussiness = any(isinstance(c.tag, str) and c.tag == "{" + QCVN_NS + "}Bussiness" for c in el)
        if not has_bussiness:
            doomed.append(el)
        else:
            doomed.extend(c for c in el if isinstance(c.tag, str) and c.tag == "{" + QCVN_NS + "}TraceHeader")
    for el in doomed:
        if el.getparent() is not None:
            _remove_keep_tail(el)
    return _c14n(work, _without_comments(c14n_alg), prefixes, standalone=True)


def _without_comments(algorithm: str) -> str:
    """A same-document reference (``URI=""``) never includes comments, whatever the c14n says."""
    if algorithm == _EXC_C14N_COMMENTS:
        return _EXC_C14N
    return algorithm.removesuffix("#WithComments")


def sign_tree(root: Any, signer: PacketSigner, *, pretty: bool = True) -> Any:
    """Add our envelope signature to ``edXMLHeader`` of the lxml tree ``root``; returns the Signature element."""
    _, header = _envelope_of(root)
    if any(isinstance(c.tag, str) and local(c) == "Signature" for c in header):
        raise SigningError("Gói tin đã có chữ ký", "the packet is already signed")
    last = header[-1] if len(header) else None
    sig = etree.SubElement(header, _ds("Signature"), nsmap={None: DSIG_NS})
    if pretty and last is not None:
        closing = last.tail or "\n"
        sig.tail = closing
        last.tail = closing + "  "
    signed_info = _child(sig, "SignedInfo")
    _child(signed_info, "CanonicalizationMethod", Algorithm=_C14N_10)
    _child(signed_info, "SignatureMethod", Algorithm=signer.signature_uri)
    ref = _child(signed_info, "Reference", URI="")
    transforms = _child(ref, "Transforms")
    _child(transforms, "Transform", Algorithm=_ENVELOPED)
    filt = _child(transforms, "Transform", Algorithm=_FILTER2)
    for kind, expr in (("intersect", INTERSECT_XPATH), ("subtract", SUBTRACT_XPATH)):
        xp = etree.SubElement(
            filt, "{" + FILTER2_NS + "}XPath", {"Filter": kind}, nsmap={"dsig-xpath": FILTER2_NS, "edXML": QCVN_NS}
        )
        xp.text = expr
    _child(transforms, "Transform", Algorithm=_EXC_C14N)
    _child(ref, "DigestMethod", Algorithm=_DIGEST_URI[signer.digest])
    digest_value = _child(ref, "DigestValue")
    value = _child(sig, "SignatureValue")
    key_info = _child(sig, "KeyInfo")
    x509_data = _child(key_info, "X509Data")
    for cert in (signer.cert, *signer.chain):
        _child(x509_data, "X509Certificate").text = base64.b64encode(cert.public_bytes(Encoding.DER)).decode()
    octets = _envelope_octets(root, sig, _EXC_C14N, None)
    digest = hashlib.new(signer.digest, octets).digest()
    digest_value.text = base64.b64encode(digest).decode()
    value.text = base64.b64encode(signer.sign_bytes(_c14n(signed_info, _C14N_10))).decode()
    return sig


# --------------------------------------------------------------------------------------------- locating


@dataclass(frozen=True)
class _Skeleton:
    root: Any
    header_end: int
    """Byte offset of the ``<`` of ``</edXMLHeader>`` in the original data."""
    has_signature: bool


def _is_envelope_end(m: Mark) -> bool:
    return m.event == "end" and m.path == ("edXML", "edXMLEnvelope")


def _skeleton(data: bytes, limits: ReadLimits) -> _Skeleton | None:
    """Prolog + root start tag + the envelope, parsed natively (exact prefixes); None if the envelope is huge."""
    start, _ = prepare(data, limits)
    result = scan(data, start, until=_is_envelope_end, limit=_ENVELOPE_SCAN_LIMIT)
    if not result.complete:
        return None
    marks = result.marks
    root_mark = marks[0]
    env_start = next((m for m in marks if m.event == "start" and m.path == ("edXML", "edXMLEnvelope")), None)
    env_end = marks[-1]
    header_end = next(
        (m for m in marks if m.event == "end" and m.path == ("edXML", "edXMLEnvelope", "edXMLHeader")), None
    )
    if root_mark.path != ("edXML",) or env_start is None or header_end is None:
        return None
    has_signature = any(
        m.event == "start" and m.path[:3] == ("edXML", "edXMLEnvelope", "edXMLHeader") and len(m.path) == 4
        and m.path[3] == "Signature"
        for m in marks
    )
    root_end = locate(data, start, root_mark)
    env_begin, _ = tag_bounds(data, locate(data, start, env_start))
    env_stop = locate(data, start, env_end)
    header_close, _ = tag_bounds(data, locate(data, start, header_end))
    qname = re.match(rb"<([^\s/>]+)", bytes(data[tag_bounds(data, root_end)[0] : root_end]))
    if qname is None or data[root_end - 2 : root_end] == b"/>":
        return None
    skeleton = b"".join(
        (bytes(data[start:root_end]), bytes(data[env_begin:env_stop]), b"</" + qname.group(1) + b">")
    )
    parser = etree.XMLParser(resolve_entities=False, no_network=True, load_dtd=False, collect_ids=False)
    try:
        root = etree.fromstring(skeleton, parser)
    except etree.XMLSyntaxError as exc:
        raise EdxmlError(
            f"Không tách được phong bì gói tin: {exc}", f"could not isolate the packet envelope: {exc}"
        ) from None
    return _Skeleton(root, header_close, has_signature)


def sign_packet(data: bytes, signer: PacketSigner, *, limits: ReadLimits | None = None) -> bytes:
    """``data`` with our envelope signature inserted at the end of ``edXMLHeader`` (attachments untouched)."""
    limits = limits or ReadLimits()
    skel = _skeleton(data, limits)
    if skel is None:
        raise InvalidPacket(
            "Không tìm thấy phong bì edXMLEnvelope đầy đủ trong 4 MB đầu của gói tin",
            "no complete edXMLEnvelope within the first 4 MB of the packet",
        )
    if skel.has_signature:
        raise SigningError("Gói tin đã có chữ ký", "the packet is already signed")
    sig = sign_tree(skel.root, signer, pretty=False)
    sig_bytes = etree.tostring(sig, with_tail=False)
    view = memoryview(data)
    out = b"".join((view[: skel.header_end], sig_bytes, view[skel.header_end :]))
    check = verify_packet(out, limits=limits)
    if check.status is not SignatureStatus.VALID:  # pragma: no cover - defensive self-check
        raise SigningError(
            "Chữ ký vừa tạo không tự kiểm tra được", f"self-check of the new signature failed: {check.message_en}"
        )
    return out


# --------------------------------------------------------------------------------------------- verification


def _fatal(code: str, vi: str, en: str) -> Finding:
    return Finding(code, vi, en, fatal=True)


def _note(code: str, vi: str, en: str) -> Finding:
    return Finding(code, vi, en, fatal=False)


def _find_signature(header: Any) -> tuple[Any | None, list[Finding]]:
    notes: list[Finding] = []
    candidates = [c for c in header if isinstance(c.tag, str) and local(c) == "Signature"]
    if len(candidates) > 1:
        notes.append(
            _note(
                "multiple_signatures",
                f"Có {len(candidates)} chữ ký; chỉ kiểm tra chữ ký đầu tiên",
                f"{len(candidates)} signatures present; only the first is checked",
            )
        )
    return (candidates[0] if candidates else None), notes


def _sub(el: Any, name: str) -> Any | None:
    return next((c for c in el if isinstance(c.tag, str) and local(c) == name), None)


def _subs(el: Any, name: str) -> list[Any]:
    return [c for c in el if isinstance(c.tag, str) and local(c) == name]


def _renamespaced(sig: Any) -> Any:
    """A copy of a Signature written outside the XML-DSig namespace, moved into it (what its signer signed)."""
    ns = namespace(sig)

    def clone(src: Any, parent: Any | None) -> Any:
        tag = _ds(local(src)) if namespace(src) == ns else src.tag
        if parent is None:
            dst = etree.Element(tag, dict(src.attrib), nsmap={None: DSIG_NS})
        else:
            dst = etree.SubElement(parent, tag, dict(src.attrib))
        dst.text = src.text
        dst.tail = src.tail
        for child in src:
            if isinstance(child.tag, str):
                clone(child, dst)
        return dst

    return clone(sig, None)


def _filter_ok(transform: Any) -> bool:
    xps = [c for c in transform if isinstance(c.tag, str)]
    if len(xps) != 2:
        return False
    wanted = (("intersect", INTERSECT_XPATH), ("subtract", SUBTRACT_XPATH))
    for xp, (kind, expr) in zip(xps, wanted, strict=True):
        if xp.tag != "{" + FILTER2_NS + "}XPath" or xp.get("Filter") != kind:
            return False
        if " ".join((xp.text or "").split()) != expr or xp.nsmap.get("edXML") != QCVN_NS:
            return False
    return True


def _load_certs(sig: Any, findings: list[Finding]) -> list[x509.Certificate]:
    certs: list[x509.Certificate] = []
    key_info = _sub(sig, "KeyInfo")
    if key_info is None:
        return certs
    for el in key_info.iter():
        if not isinstance(el.tag, str) or local(el) != "X509Certificate":
            continue
        text = re.sub(r"\s", "", el.text or "")
        try:
            certs.append(x509.load_der_x509_certificate(base64.b64decode(text, validate=True)))
        except (binascii.Error, ValueError):
            findings.append(
                _fatal(
                    "certificate_unreadable",
                    f"Chứng thư số trong chữ ký không đọc được ({len(text)} ký tự, có thể bị cắt cụt)",
                    f"a certificate in the signature cannot be read ({len(text)} characters, perhaps truncated)",
                )
            )
    return certs


def _check_value(cert: x509.Certificate, kind: str, h: hashes.HashAlgorithm, value: bytes, data: bytes) -> bool:
    key = cert.public_key()
    try:
        if kind == "ecdsa":
            if not isinstance(key, ec.EllipticCurvePublicKey) or len(value) % 2:
                return False
            half = len(value) // 2
            der = utils.encode_dss_signature(int.from_bytes(value[:half], "big"), int.from_bytes(value[half:], "big"))
            key.verify(der, data, ec.ECDSA(h))
        elif kind == "rsa-pss":
            if not isinstance(key, rsa.RSAPublicKey):
                return False
            key.verify(value, data, padding.PSS(mgf=padding.MGF1(h), salt_length=padding.PSS.AUTO), h)
        else:
            if not isinstance(key, rsa.RSAPublicKey):
                return False
            key.verify(value, data, padding.PKCS1v15(), h)
    except (InvalidSignature, ValueError):
        return False
    return True


def _alias(uri: str, findings: list[Finding]) -> str:
    if uri in _C14N_ALIASES:
        if not any(f.code == "nonstandard_c14n_uri" for f in findings):
            findings.append(
                _note(
                    "nonstandard_c14n_uri",
                    f"URI chuẩn hóa {uri!r} viết sai, hiểu là {_C14N_ALIASES[uri]!r}",
                    f"misspelt canonicalization URI {uri!r}, read as {_C14N_ALIASES[uri]!r}",
                )
            )
        return _C14N_ALIASES[uri]
    return uri


def _evaluate(root: Any, full_root: Callable[[], Any]) -> SignatureCheck:
    _, header = _envelope_of(root)
    sig, findings = _find_signature(header)
    if sig is None:
        for ds in _subs(header, "DigitalSignature"):
            findings.append(
                _note("empty_digital_signature", "Phần tử DigitalSignature rỗng", "empty DigitalSignature element")
                if len(ds) == 0 and not (ds.text or "").strip()
                else _note("digital_signature", "Bỏ qua DigitalSignature", "DigitalSignature element ignored")
            )
        return SignatureCheck(SignatureStatus.ABSENT, findings=tuple(findings))
    if namespace(sig) != DSIG_NS:
        findings.append(
            _note(
                "signature_not_xmldsig_namespace",
                "Phần tử Signature không thuộc không gian tên XML-DSig",
                f"the Signature element is in namespace {namespace(sig) or '(none)'}, not XML-DSig",
            )
        )
    signed_info = _sub(sig, "SignedInfo")
    value_el = _sub(sig, "SignatureValue")
    if signed_info is None or value_el is None:
        findings.append(
            _fatal(
                "structure", "Chữ ký thiếu SignedInfo hoặc SignatureValue", "SignedInfo or SignatureValue is missing"
            )
        )
        return SignatureCheck(SignatureStatus.INVALID, findings=tuple(findings))
    c14n_el = _sub(signed_info, "CanonicalizationMethod")
    method_el = _sub(signed_info, "SignatureMethod")
    c14n_alg = _alias(c14n_el.get("Algorithm", "") if c14n_el is not None else "", findings)
    sig_alg = method_el.get("Algorithm", "") if method_el is not None else ""
    refs = _subs(signed_info, "Reference")
    digest_alg = None
    weak = False
    certs = _load_certs(sig, findings)

    def done(status: SignatureStatus, signer: x509.Certificate | None = None, scope: str = "") -> SignatureCheck:
        chain = tuple([signer] + [c for c in certs if c is not signer]) if signer is not None else tuple(certs)
        return SignatureCheck(status, signer, chain, sig_alg or None, digest_alg, scope, tuple(findings))

    if c14n_alg not in _C14N:
        findings.append(
            _fatal("unsupported_c14n", f"Chuẩn hóa {c14n_alg!r} không được hỗ trợ", f"unsupported c14n {c14n_alg!r}")
        )
        return done(SignatureStatus.INVALID)
    if sig_alg not in _SIGNATURES:
        findings.append(
            _fatal(
                "unsupported_algorithm",
                f"Thuật toán ký {sig_alg!r} không được hỗ trợ",
                f"unsupported signature algorithm {sig_alg!r}",
            )
        )
        return done(SignatureStatus.INVALID)
    kind, sig_hash = _SIGNATURES[sig_alg]
    if sig_hash is hashes.SHA1:
        weak = True
        findings.append(_note("sha1", "Chữ ký dùng SHA-1 (yếu)", "the signature uses SHA-1 (weak)"))
    if len(refs) != 1:
        findings.append(
            _fatal(
                "unsupported_reference",
                f"Chữ ký có {len(refs)} tham chiếu; chỉ hỗ trợ đúng một",
                f"the signature has {len(refs)} references; exactly one is supported",
            )
        )
        return done(SignatureStatus.INVALID)
    ref = refs[0]
    if ref.get("URI") != "":
        findings.append(
            _fatal(
                "unsupported_reference",
                f"Tham chiếu URI={ref.get('URI')!r} không được hỗ trợ (chỉ URI=\"\")",
                f"reference URI={ref.get('URI')!r} is not supported (only URI=\"\")",
            )
        )
        return done(SignatureStatus.INVALID)
    transforms_el = _sub(ref, "Transforms")
    transforms = _subs(transforms_el, "Transform") if transforms_el is not None else []
    algs = [_alias(t.get("Algorithm", ""), findings) for t in transforms]
    scope = ""
    ref_c14n = _C14N_10
    ref_prefixes: list[str] | None = None
    if algs and algs[-1] in _C14N:
        ref_c14n = algs[-1]
        incl = next((c for c in transforms[-1] if isinstance(c.tag, str) and local(c) == "InclusiveNamespaces"), None)
        if incl is not None:
            ref_prefixes = (incl.get("PrefixList") or "").split() or None
        algs, transforms = algs[:-1], transforms[:-1]
    if algs == [_ENVELOPED, _FILTER2] and _filter_ok(transforms[1]):
        scope = "envelope"
    elif algs == [_ENVELOPED]:
        scope = "document"
    else:
        findings.append(
            _fatal(
                "unsupported_transform",
                f"Chuỗi biến đổi {algs} không được hỗ trợ",
                f"unsupported transform chain {algs}",
            )
        )
        return done(SignatureStatus.INVALID)
    digest_el = _sub(ref, "DigestMethod")
    digest_alg = digest_el.get("Algorithm", "") if digest_el is not None else ""
    if digest_alg not in _DIGESTS:
        findings.append(
            _fatal(
                "unsupported_digest",
                f"Thuật toán băm {digest_alg!r} không được hỗ trợ",
                f"unsupported digest {digest_alg!r}",
            )
        )
        return done(SignatureStatus.INVALID, scope=scope)
    hash_cls, hash_name = _DIGESTS[digest_alg]
    if hash_cls is hashes.SHA1:
        if not weak:
            findings.append(_note("sha1", "Giá trị băm dùng SHA-1 (yếu)", "the digest uses SHA-1 (weak)"))
        weak = True
    digest_value_el = _sub(ref, "DigestValue")
    try:
        digest_text = digest_value_el.text if digest_value_el is not None else ""
        expected_digest = base64.b64decode(re.sub(r"\s", "", digest_text or ""), validate=True)
        signature_value = base64.b64decode(re.sub(r"\s", "", value_el.text or ""), validate=True)
    except (binascii.Error, AttributeError):
        findings.append(
            _fatal(
                "structure",
                "DigestValue hoặc SignatureValue không phải base64",
                "DigestValue or SignatureValue is not base64",
            )
        )
        return done(SignatureStatus.INVALID, scope=scope)

    # The bytes the signer signed: SignedInfo canonicalized in its context (moved into XML-DSig if needed).
    if namespace(sig) != DSIG_NS:
        moved = _renamespaced(sig)
        moved.tail = sig.tail
        sig.getparent().replace(sig, moved)
        sig = moved
        signed_info = _sub(sig, "SignedInfo")
    c14n_incl = None
    if c14n_el is not None:
        incl = next((c for c in c14n_el if isinstance(c.tag, str) and local(c) == "InclusiveNamespaces"), None)
        if incl is not None:
            c14n_incl = (incl.get("PrefixList") or "").split() or None
    signed_octets = _c14n(signed_info, c14n_alg, c14n_incl)

    # The digest over what the reference covers.
    if scope == "envelope":
        octets = _envelope_octets(root, sig, ref_c14n, ref_prefixes)
    else:
        doc = full_root()
        if doc is root:
            target = sig
        else:
            _, full_header = _envelope_of(doc)
            target, _ = _find_signature(full_header)
            assert target is not None
        _remove_keep_tail(target)
        octets = _c14n(doc.getroottree(), _without_comments(ref_c14n), ref_prefixes, standalone=True)
    actual = hashlib.new(hash_name, octets).digest()
    if actual != expected_digest:
        findings.append(
            _fatal(
                "digest_mismatch",
                "Nội dung đã ký bị thay đổi (giá trị băm không khớp)",
                "the signed content was altered (digest mismatch)",
            )
        )
    if not certs:
        if not any(f.code == "certificate_unreadable" for f in findings):
            findings.append(
                _fatal("no_certificate", "Chữ ký không kèm chứng thư số", "the signature carries no certificate")
            )
        return done(SignatureStatus.INVALID, scope=scope)
    signer = next((c for c in certs if _check_value(c, kind, sig_hash(), signature_value, signed_octets)), None)
    if signer is None:
        findings.append(
            _fatal(
                "signature_mismatch",
                "Giá trị chữ ký không khớp với chứng thư số kèm theo",
                "the signature value does not verify with the attached certificate",
            )
        )
        return done(SignatureStatus.INVALID, certs[0], scope)
    pub = signer.public_key()
    if isinstance(pub, rsa.RSAPublicKey) and pub.key_size < 2048:
        weak = True
        findings.append(
            _note("short_key", f"Khóa RSA {pub.key_size} bit (yếu)", f"RSA key of {pub.key_size} bits (weak)")
        )
    if any(f.fatal for f in findings):
        return done(SignatureStatus.INVALID, signer, scope)
    return done(SignatureStatus.WEAK if weak else SignatureStatus.VALID, signer, scope)


def verify_packet(data: bytes, *, limits: ReadLimits | None = None) -> SignatureCheck:
    """Check the envelope signature of packet bytes. Returns a report; raises only if the XML is unreadable."""
    limits = limits or ReadLimits()
    skel = _skeleton(data, limits)
    full_cache: list[Any] = []

    def full_root() -> Any:
        if not full_cache:
            tree, _ = parse_native(data, limits)
            full_cache.append(tree.getroot())
        return full_cache[0]

    if skel is None:
        root = full_root()
        if local(root) != "edXML":
            raise InvalidPacket("Không phải gói tin edXML", "not an edXML packet")
        return _evaluate(root, full_root)
    return _evaluate(skel.root, full_root)
