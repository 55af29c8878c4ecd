"""CMS checks for PDF signatures and time-stamp tokens, on pre-parsed certificates.

The same checks as pyHanko's ``extract_certs_for_validation`` + ``validate_sig_integrity`` (signer identified by
its SignerIdentifier; ``signingCertificate(V2)`` matched against it; CMS algorithm protection; content type;
``messageDigest``; signature over the signed attributes), but names are compared through the trust engine's
cache of RFC 5280-normalised names instead of re-normalising every name of every certificate on every
document — name normalisation was the largest single cost of validating a signature with stock pyHanko.
"""

from __future__ import annotations

import hashlib

from asn1crypto import cms, core, tsp
from asn1crypto import x509 as asn1_x509
from pyhanko.sign.general import (
    MultivaluedAttributeError,
    NonexistentAttributeError,
    find_unique_cms_attribute,
)
from pyhanko.sign.validation.generic_cms import validate_algorithm_protection
from pyhanko_certvalidator.sig_validate import DefaultSignatureValidator, SignatureValidationContext

from docexchange.verify._trust import CertRecord, TrustEngine
from docexchange.verify.report import SubIndication

__all__ = ["CmsProblem", "check_integrity", "identify_signer"]

_VALIDATOR = DefaultSignatureValidator()


class CmsProblem(Exception):
    def __init__(self, sub: SubIndication, vi: str, en: str) -> None:
        super().__init__(en)
        self.sub = sub
        self.vi = vi
        self.en = en


def identify_signer(sd: cms.SignedData, trust: TrustEngine) -> tuple[CertRecord, list[CertRecord]]:
    """The signer's certificate (from the SignerIdentifier) and the other certificates of ``sd``."""
    try:
        (signer_info,) = sd["signer_infos"]
    except ValueError:
        raise CmsProblem(SubIndication.FORMAT_FAILURE, "chữ ký phải có đúng một SignerInfo",
                         "the signature must hold exactly one SignerInfo") from None
    records: list[CertRecord] = []
    for choice in sd["certificates"] or ():
        if choice.name != "certificate":
            continue
        rec = trust.try_cert(choice.chosen.dump())
        if rec is not None:
            records.append(rec)
    sid = signer_info["sid"]
    matches: list[CertRecord] = []
    if sid.name == "issuer_and_serial_number":
        serial = sid.chosen["serial_number"].native
        issuer = sid.chosen["issuer"]
        issuer_der = issuer.dump()
        issuer_key: str | None = None
        for rec in records:
            if rec.serial != serial:
                continue
            if rec.asn1.issuer.dump() == issuer_der:
                matches.append(rec)
                continue
            if issuer_key is None:
                issuer_key = trust.name_key(issuer)
            if rec.issuer_key == issuer_key:
                matches.append(rec)
    elif sid.name == "subject_key_identifier":
        ski = sid.chosen.native
        matches = [rec for rec in records if rec.ski == ski]
    if not matches:
        raise CmsProblem(SubIndication.NO_SIGNING_CERTIFICATE_FOUND,
                         "không tìm thấy chứng thư số của người ký trong chữ ký",
                         "the signer's certificate is not included in the signature")
    if len({m.fp for m in matches}) > 1:
        raise CmsProblem(SubIndication.NO_SIGNING_CERTIFICATE_FOUND,
                         "có nhiều chứng thư khớp với định danh người ký",
                         "several certificates match the signer identifier")
    signer = matches[0]
    others = [r for r in records if r.fp != signer.fp]
    _check_signing_certificate_attr(signer_info, signer, trust)
    return signer, others


def _signing_cert_attr(signed_attrs: cms.CMSAttributes) -> tsp.SigningCertificate | tsp.SigningCertificateV2 | None:
    for name, cls in (("signing_certificate_v2", tsp.SigningCertificateV2),
                      ("signing_certificate", tsp.SigningCertificate)):
        try:
            value = find_unique_cms_attribute(signed_attrs, name)
        except NonexistentAttributeError:
            continue
        except MultivaluedAttributeError:
            raise CmsProblem(SubIndication.NO_SIGNING_CERTIFICATE_FOUND,
                             "thuộc tính chứng thư ký xuất hiện nhiều lần",
                             "the signing-certificate attribute appears more than once") from None
        return cls.load(value.dump())
    return None


def _check_signing_certificate_attr(signer_info: cms.SignerInfo, signer: CertRecord, trust: TrustEngine) -> None:
    signed_attrs = signer_info["signed_attrs"]
    if signed_attrs is core.VOID or len(signed_attrs) == 0:
        return
    attr = _signing_cert_attr(signed_attrs)
    if attr is None:
        return
    certid = attr["certs"][0]
    algo = "sha1" if isinstance(certid, tsp.ESSCertID) else str(certid["hash_algorithm"]["algorithm"].native)
    try:
        digest = hashlib.new(algo.replace("-", "_"), signer.der).digest()
    except ValueError:
        raise CmsProblem(SubIndication.FORMAT_FAILURE, "thuộc tính chứng thư ký dùng hàm băm lạ",
                         f"the signing-certificate attribute uses an unknown digest ({algo})") from None
    ok = digest == certid["cert_hash"].native
    issuer_serial = certid["issuer_serial"]
    if ok and issuer_serial:
        names = issuer_serial["issuer"]
        ok = (
            len(names) == 1
            and names[0].name == "directory_name"
            and issuer_serial["serial_number"].native == signer.serial
            and _same_name(names[0].chosen, signer, trust)
        )
    if not ok:
        raise CmsProblem(SubIndication.NO_SIGNING_CERTIFICATE_FOUND,
                         "thuộc tính chứng thư ký không khớp với chứng thư của người ký",
                         "the signing-certificate attribute does not match the signer's certificate")


def _same_name(name: asn1_x509.Name, signer: CertRecord, trust: TrustEngine) -> bool:
    if name.dump() == signer.asn1.issuer.dump():
        return True
    return trust.name_key(name) == signer.issuer_key


def check_integrity(signer_info: cms.SignerInfo, signer: CertRecord, content_type: str, digest: bytes
                    ) -> tuple[bool, bool]:
    """(intact, valid): the digest matches ``messageDigest``; the signature verifies with ``signer``'s key.

    Raises :class:`CmsProblem` for structural errors (missing or repeated attributes, wrong content type,
    algorithm protection mismatch).
    """
    signature_algorithm = signer_info["signature_algorithm"]
    digest_algorithm = signer_info["digest_algorithm"]
    md_algorithm = digest_algorithm["algorithm"].native
    signature = signer_info["signature"].native
    signed_attrs_orig = signer_info["signed_attrs"]
    if signed_attrs_orig is core.VOID:
        embedded_digest = None
        prehashed = True
        signed_data = digest
    else:
        signed_attrs = signed_attrs_orig.untag()
        signed_data = signed_attrs.dump()
        prehashed = False
        try:
            validate_algorithm_protection(
                signed_attrs,
                claimed_digest_algorithm_obj=digest_algorithm,
                claimed_signature_algorithm_obj=signature_algorithm,
                claimed_mac_algorithm_obj=None,
            )
        except Exception as exc:
            raise CmsProblem(SubIndication.FORMAT_FAILURE, "thuộc tính bảo vệ thuật toán CMS không khớp",
                             f"CMS algorithm protection mismatch ({exc})") from exc
        try:
            ct = find_unique_cms_attribute(signed_attrs, "content_type").native
        except (NonexistentAttributeError, MultivaluedAttributeError):
            raise CmsProblem(SubIndication.FORMAT_FAILURE, "thiếu hoặc lặp thuộc tính kiểu nội dung",
                             "content-type attribute missing or repeated") from None
        if ct != content_type:
            raise CmsProblem(SubIndication.FORMAT_FAILURE, "kiểu nội dung CMS không đúng",
                             f"CMS content type {ct} where {content_type} was expected")
        try:
            embedded_digest = find_unique_cms_attribute(signed_attrs, "message_digest").native
        except (NonexistentAttributeError, MultivaluedAttributeError):
            raise CmsProblem(SubIndication.FORMAT_FAILURE, "thiếu hoặc lặp thuộc tính giá trị băm",
                             "message-digest attribute missing or repeated") from None
    try:
        _VALIDATOR.validate_signature(
            signature, signed_data, signer.asn1.public_key, signature_algorithm,
            context=SignatureValidationContext(contextual_md_algorithm=md_algorithm, prehashed=prehashed),
        )
        valid = True
    except Exception:
        valid = False
    intact = digest == embedded_digest if embedded_digest is not None else valid
    return intact, valid
