"""The verification core: PDF bytes → :class:`~docexchange.verify.report.VerificationReport`.

Runs where the untrusted bytes are parsed (a sandbox worker process by default, see ``_sandbox``). It never
raises for a bad document: any failure to read, parse or check becomes a report. The steps, for every
signature and document time-stamp in the file (signing order):

1. **Structure**: signature dictionary, sub-filter, ``/ByteRange`` (four integers from 0, the gap exactly the
   ``/Contents`` string), the revision it covers (pyHanko's coverage check: a signature over a different
   revision, or a byte range that skips content, fails here), the CMS container (one SignerInfo; no
   encapsulated content in a detached signature).
2. **Integrity and signature value**: digest of the byte range against the ``messageDigest`` attribute,
   signature over the signed attributes with the signer's certificate (pyHanko's CMS checks).
3. **Algorithms** (TT 15/2025): SHA-2/SHA-3 digests only, RSA ≥ 2048 or ECDSA ≥ 256 — in the signature, the
   time-stamps, the certificate chain and the revocation data.
4. **Modifications after signing**: pyHanko's difference analysis of every later revision, refined: DSS and
   document time-stamps, new signatures — permitted; anything else (content, pages, annotations, fields that are
   not signatures, unreadable updates) — not permitted, unless a certification signature allows it.
5. **Time**: signature time-stamps and document time-stamps are validated from the newest to the oldest, each
   one proving when the things it covers existed (proof of existence); the signature's *best signature time*
   is the earliest proven time.
6. **Trust**: certificate path to a configured anchor; each certificate valid at the best signature time; not
   revoked then (embedded OCSP/CRL first, then online if allowed, with the freshness policy); key usage.
7. **Verdict** per signature and for the document, with the TT 15/2025 fields and the long-term status.
"""

from __future__ import annotations

import hashlib
import io
import logging
import threading
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from asn1crypto import cms, core, tsp
from pyhanko.pdf_utils import generic, misc
from pyhanko.sign.diff_analysis import DEFAULT_DIFF_POLICY, DiffResult, SuspiciousModification
from pyhanko.sign.diff_analysis import ModificationLevel as PyhModLevel
from pyhanko.sign.fields import MDPPerm, enumerate_sig_fields
from pyhanko.sign.general import (
    MultivaluedAttributeError,
    NonexistentAttributeError,
    find_cms_attribute_iter,
    find_unique_cms_attribute,
)
from pyhanko.sign.validation import errors as pyh_errors
from pyhanko.sign.validation.dss import DocumentSecurityStore
from pyhanko.sign.validation.pdf_embedded import EmbeddedPdfSignature, read_certification_data
from pyhanko.sign.validation.status import SignatureCoverageLevel

from docexchange.verify import _pdfcompat
from docexchange.verify._cms import CmsProblem, check_integrity, identify_signer
from docexchange.verify._trust import (
    CertRecord,
    PathResult,
    RevocationResult,
    TrustEngine,
    TrustParams,
    digest_allowed,
    public_key_allowed,
    signature_mechanism_allowed,
)
from docexchange.verify.report import (
    Check,
    CheckStatus,
    DocumentInfo,
    Indication,
    LongTermStatus,
    Message,
    ModificationLevel,
    Modifications,
    Outcome,
    RevocationState,
    RevocationStatus,
    SignatureChecks,
    SignatureReport,
    SubIndication,
    TimestampReport,
    VerificationReport,
    fmt_time,
)

__all__ = ["CoreConfig", "CoreRequest", "VerificationCore", "cannot_validate"]

log = logging.getLogger(__name__)

PDF_SIG_SUBFILTERS = ("/adbe.pkcs7.detached", "/ETSI.CAdES.detached")
DOC_TS_SUBFILTER = "/ETSI.RFC3161"
CLAIM_TOLERANCE = timedelta(minutes=10)
PREFETCH_BYTES = 1 << 20


@dataclass(frozen=True)
class CoreConfig:
    """What the core needs; plain values so it can be pickled into a worker process."""

    anchors: tuple[bytes, ...]
    known_certs: tuple[bytes, ...] = ()
    freshness_hours: int = 24
    allow_online: bool = True
    online_timeout: float = 5.0
    max_bytes: int = 100 * 1024 * 1024
    cache_size: int = 4096

    def trust_params(self) -> TrustParams:
        return TrustParams(
            anchors=self.anchors,
            known_certs=self.known_certs,
            freshness=timedelta(hours=self.freshness_hours),
            allow_online=self.allow_online,
            online_timeout=self.online_timeout,
        )


@dataclass(frozen=True)
class CoreRequest:
    name: str
    validation_time: datetime
    """The time the document is judged at."""
    now: datetime
    """The real current time (freshness of online answers kept in the cache)."""
    offline: bool = False


def _msg(code: str, vi: str, en: str) -> Message:
    return Message(code, vi, en)


def cannot_validate(data: bytes | None, req: CoreRequest, code: str, vi: str, en: str) -> VerificationReport:
    """The report for a document that could not be evaluated at all."""
    doc = DocumentInfo(req.name, len(data) if data is not None else 0,
                       hashlib.sha256(data).hexdigest() if data is not None else "")
    err = _msg(code, vi, en)
    return VerificationReport(
        document=doc,
        validation_time=req.validation_time,
        generated_at=req.now,
        outcome=Outcome.CANNOT_VALIDATE,
        indication=Indication.INDETERMINATE,
        sub_indication=None,
        reasons=(_msg(code, f"Không kiểm tra được: {vi}", f"Could not validate: {en}"),),
        error=err,
        offline=req.offline,
    )


# --------------------------------------------------------------------------------------------- per item
@dataclass
class _Fail:
    sub: SubIndication
    code: str
    vi: str
    en: str

    @property
    def indication(self) -> Indication:
        return self.sub.indication

    def message(self) -> Message:
        return Message(self.code, self.vi, self.en)


@dataclass
class _Token:
    """A time-stamp token (signature time-stamp or the content of a document time-stamp)."""

    kind: str
    signed_data: cms.SignedData | None
    gen_time: datetime | None = None
    tsa: CertRecord | None = None
    certs: list[CertRecord] = field(default_factory=list)
    fail: _Fail | None = None
    warnings: list[Message] = field(default_factory=list)
    # filled by the time phase
    path: PathResult | None = None
    revocation: list[RevocationStatus] = field(default_factory=list)
    indication: Indication = Indication.INDETERMINATE
    sub: SubIndication | None = None
    reasons: list[Message] = field(default_factory=list)
    online: int = 0

    @property
    def usable(self) -> bool:
        return self.indication == Indication.TOTAL_PASSED and self.gen_time is not None


@dataclass
class _Item:
    field_name: str
    kind: str  # signature | document_timestamp
    revision: int
    subfilter: str = ""
    emb: EmbeddedPdfSignature | None = None
    byte_range: tuple[int, ...] = ()
    certification: bool = False
    structural: _Fail | None = None
    integrity: Check = field(default_factory=lambda: Check(CheckStatus.NOT_CHECKED, "chưa kiểm tra", "not checked"))
    signature_value: Check = field(default_factory=lambda: Check(CheckStatus.NOT_CHECKED, "chưa kiểm tra",
                                                                 "not checked"))
    algorithms: Check = field(default_factory=lambda: Check(CheckStatus.NOT_CHECKED, "chưa kiểm tra", "not checked"))
    crypto_fail: _Fail | None = None
    algo_fail: _Fail | None = None
    signer: CertRecord | None = None
    cms_certs: list[CertRecord] = field(default_factory=list)
    digest_algorithm: str = ""
    signature_algorithm: str = ""
    claimed_time: datetime | None = None
    tokens: list[_Token] = field(default_factory=list)
    doc_token: _Token | None = None
    modifications: Modifications | None = None
    mod_fail: _Fail | None = None
    warnings: list[Message] = field(default_factory=list)
    cms_ocsps: list[bytes] = field(default_factory=list)
    cms_crls: list[bytes] = field(default_factory=list)


def _plain(value: Any) -> str:
    """A plain ``str`` (pyHanko's string objects keep a reference to the whole parsed document)."""
    return "".join(str(value))


def _sig_algo_name(signer_info: cms.SignerInfo) -> str:
    algo = signer_info["signature_algorithm"]
    try:
        return str(algo.signature_algo)
    except ValueError:
        return str(algo["algorithm"].native)


def _safe(exc: BaseException) -> str:
    text = str(exc).replace("\n", " ")
    return f"{type(exc).__name__}: {text[:200]}" if text else type(exc).__name__


class _Hasher:
    """Digests of byte ranges; hash states of shared prefixes are reused (signatures share the file's start).

    :meth:`prefetch` computes the digests the signatures will need in a background thread (hashlib releases
    the GIL), while the main thread parses the rest of the document; :meth:`digest` waits for it."""

    def __init__(self, data: bytes) -> None:
        self.view = memoryview(data)
        self._prefix: dict[str, list[tuple[int, Any]]] = {}
        self._done: dict[tuple[str, tuple[tuple[int, int], ...]], bytes] = {}
        self._thread: threading.Thread | None = None

    def prefetch(self, jobs: list[tuple[str, list[tuple[int, int]]]]) -> None:
        def work() -> None:
            for algo, ranges in sorted(jobs, key=lambda j: j[1][0][1]):
                try:
                    self._done[(algo, tuple(ranges))] = self._compute(algo, ranges)
                except (ValueError, TypeError):  # an unknown algorithm: reported when it is asked for
                    continue
            self._prefix_state("sha256", len(self.view))

        self._thread = threading.Thread(target=work, name="verify-digest", daemon=True)
        self._thread.start()

    def _wait(self) -> None:
        if self._thread is not None:
            self._thread.join()
            self._thread = None

    def digest(self, algo: str, ranges: list[tuple[int, int]]) -> bytes:
        self._wait()
        done = self._done.get((algo, tuple(ranges)))
        return done if done is not None else self._compute(algo, ranges)

    def _compute(self, algo: str, ranges: list[tuple[int, int]]) -> bytes:
        (start0, end0), rest = ranges[0], ranges[1:]
        if start0 == 0:
            h = self._prefix_state(algo, end0)
        else:
            h = hashlib.new(algo)
            h.update(self.view[start0:end0])
        for start, end in rest:
            h.update(self.view[start:end])
        return h.digest()

    def whole(self, algo: str = "sha256") -> str:
        """Digest of all the data, continuing the longest prefix already hashed (the signatures' byte ranges
        start at 0 and end just before their signature value: the rest is a short tail)."""
        self._wait()
        return str(self._prefix_state(algo, len(self.view)).hexdigest())

    def _prefix_state(self, algo: str, end: int) -> Any:
        states = self._prefix.setdefault(algo, [])
        base_len, base = 0, None
        for length, state in states:
            if length <= end and length > base_len:
                base_len, base = length, state
        h = base.copy() if base is not None else hashlib.new(algo)
        h.update(self.view[base_len:end])
        states.append((end, h.copy()))
        return h


_HASH_NAMES = {"sha1": "sha1", "sha224": "sha224", "sha256": "sha256", "sha384": "sha384", "sha512": "sha512",
               "sha3_256": "sha3_256", "sha3_384": "sha3_384", "sha3_512": "sha3_512", "md5": "md5"}


class VerificationCore:
    """Long-lived: holds the trust engine and its caches. One document at a time."""

    def __init__(self, config: CoreConfig, fetch: Any = None) -> None:
        self.config = config
        self.trust = TrustEngine(config.trust_params(), fetch=fetch, cache_size=config.cache_size)
        _pdfcompat.install_fast_hex_strings()

    def verify(self, data: bytes, req: CoreRequest) -> VerificationReport:
        try:
            return _DocumentRun(self, data, req).run()
        except (MemoryError, RecursionError) as exc:
            return cannot_validate(
                data, req, "resource_limit",
                "tệp PDF vượt quá giới hạn tài nguyên khi phân tích (có thể là tệp độc hại)",
                f"the PDF exceeded resource limits while being analysed ({type(exc).__name__})",
            )
        except Exception as exc:
            log.exception("verification failed unexpectedly")
            return cannot_validate(
                data, req, "internal",
                f"lỗi không mong đợi khi phân tích tệp ({type(exc).__name__})",
                f"unexpected error while analysing the file ({_safe(exc)})",
            )


# --------------------------------------------------------------------------------------------- the run
class _DocumentRun:
    def __init__(self, core_: VerificationCore, data: bytes, req: CoreRequest) -> None:
        self.core = core_
        self.trust = core_.trust
        self.data = data
        self.req = req
        self.V = req.validation_time.astimezone(UTC)
        self.hasher = _Hasher(data)
        self.items: list[_Item] = []
        self.dss_ocsps: list[bytes] = []
        self.dss_crls: list[bytes] = []
        self.dss_certs: list[CertRecord] = []
        self.online = 0
        self.doc_warnings: list[Message] = []
        self.pages = 0
        self.revisions = 0

    # -- entry -------------------------------------------------------------------------------------
    def run(self) -> VerificationReport:
        data, req = self.data, self.req
        if len(data) > self.core.config.max_bytes:
            return cannot_validate(
                data, req, "too_large",
                f"tệp lớn hơn giới hạn {self.core.config.max_bytes // (1024 * 1024)} MB",
                f"the file is larger than the {self.core.config.max_bytes // (1024 * 1024)} MB limit",
            )
        head = data[:1024]
        if b"%PDF-" not in head:
            return cannot_validate(data, req, "not_pdf", "tệp không phải PDF (thiếu phần đầu %PDF-)",
                                   "not a PDF file (no %PDF- header)")
        try:
            stream = data if hasattr(data, "seek") else io.BytesIO(data)  # an mmap'ed file is read in place
            reader = _pdfcompat.TolerantReader(stream, strict=False)
        except (misc.PdfError, ValueError, KeyError, TypeError, IndexError, AttributeError, AssertionError,
                UnicodeError, OverflowError) as exc:
            return cannot_validate(data, req, "pdf_unreadable", "tệp PDF hỏng, không đọc được cấu trúc",
                                   f"damaged PDF, its structure cannot be read ({_safe(exc)})")
        if reader.encrypted:
            return cannot_validate(data, req, "encrypted", "tệp PDF được mã hóa, không kiểm tra được",
                                   "the PDF is encrypted; it cannot be validated")
        self.reader = reader
        if getattr(reader.xrefs, "hybrid_xrefs_present", False):
            self.doc_warnings.append(_msg(
                "hybrid_xref", "tệp dùng bảng tham chiếu lai (hybrid xref): trình đọc cũ có thể hiển thị khác",
                "the file uses hybrid cross-reference sections: older readers may display it differently"))
        try:
            self.revisions = reader.xrefs.total_revisions
            self.pages = _pdfcompat.check_page_tree(reader)
        except _pdfcompat.PageTreeError as exc:
            return cannot_validate(data, req, "pdf_malformed", f"tệp PDF hỏng: {exc.vi}",
                                   f"malformed PDF: {exc.en}")
        except (misc.PdfError, ValueError, KeyError, TypeError, IndexError, AttributeError) as exc:
            return cannot_validate(data, req, "pdf_malformed", "tệp PDF hỏng, không đọc được cây trang",
                                   f"malformed PDF, page tree unreadable ({_safe(exc)})")
        try:
            self._collect_items()
        except (misc.PdfError, ValueError, KeyError, TypeError, IndexError, AttributeError) as exc:
            return cannot_validate(data, req, "pdf_malformed", "không đọc được các trường chữ ký của tệp PDF",
                                   f"the PDF's signature fields cannot be read ({_safe(exc)})")
        if not self.items:
            return cannot_validate(data, req, "no_signature", "tệp không có chữ ký số",
                                   "the document carries no digital signature")
        self._prefetch_digests()
        self._read_dss()
        for item in self.items:
            self._basic(item)
        self._time_and_trust()
        return self._report()

    # -- 1. structure ------------------------------------------------------------------------------
    def _collect_items(self) -> None:
        reader = self.reader
        seen_objects: set[tuple[int, int]] = set()
        for fq_name, sig_ref, field_ref in enumerate_sig_fields(reader, filled_status=True):
            item = _Item(field_name=_plain(fq_name), kind="signature", revision=self.revisions)
            try:
                if isinstance(sig_ref, generic.IndirectObject):
                    key = (sig_ref.reference.idnum, sig_ref.reference.generation)
                    if key in seen_objects:
                        item.structural = _Fail(
                            SubIndication.FORMAT_FAILURE, "sig_reused",
                            "một đối tượng chữ ký được dùng cho nhiều trường",
                            "one signature object is used by several fields",
                        )
                        self.items.append(item)
                        continue
                    seen_objects.add(key)
                    item.revision = reader.xrefs.get_last_change(sig_ref.reference)
                sig_obj = sig_ref.get_object()
                if not isinstance(sig_obj, generic.DictionaryObject):
                    raise ValueError("signature value is not a dictionary")
                sig_type = sig_obj.get("/Type")
                subfilter = str(sig_obj.get("/SubFilter", ""))
                item.subfilter = _plain(subfilter).lstrip("/")
                if sig_type == "/DocTimeStamp" or (sig_type is None and subfilter == DOC_TS_SUBFILTER):
                    item.kind = "document_timestamp"
            except (misc.PdfError, ValueError, KeyError, TypeError, AttributeError) as exc:
                item.structural = _Fail(SubIndication.FORMAT_FAILURE, "sig_dict",
                                        "từ điển chữ ký không đọc được", f"unreadable signature dictionary "
                                        f"({_safe(exc)})")
                self.items.append(item)
                continue
            expected = (DOC_TS_SUBFILTER,) if item.kind == "document_timestamp" else PDF_SIG_SUBFILTERS
            if subfilter not in expected:
                if subfilter == "/adbe.pkcs7.sha1":
                    item.structural = _Fail(
                        SubIndication.CRYPTO_CONSTRAINTS_FAILURE, "sha1",
                        "chữ ký kiểu adbe.pkcs7.sha1 dùng SHA-1, không được chấp nhận (TT 15/2025)",
                        "adbe.pkcs7.sha1 signatures use SHA-1, not accepted (TT 15/2025)",
                    )
                else:
                    item.structural = _Fail(
                        SubIndication.FORMAT_FAILURE, "subfilter",
                        f"định dạng chữ ký {subfilter or '(trống)'} không được hỗ trợ",
                        f"signature format {subfilter or '(empty)'} is not supported",
                    )
                self.items.append(item)
                continue
            try:
                emb = EmbeddedPdfSignature(reader, field_ref, str(fq_name))
                item.emb = emb
                item.revision = emb.signed_revision
                br = [int(x) for x in emb.byte_range]
                item.byte_range = tuple(br)
            except (misc.PdfError, ValueError, KeyError, TypeError, AttributeError, IndexError,
                    pyh_errors.SignatureValidationError) as exc:
                item.structural = _Fail(SubIndication.FORMAT_FAILURE, "cms",
                                        "dữ liệu chữ ký (CMS) hỏng hoặc không đọc được",
                                        f"the signature data (CMS) is damaged or unreadable ({_safe(exc)})")
            except Exception as exc:
                item.structural = _Fail(SubIndication.FORMAT_FAILURE, "cms",
                                        "dữ liệu chữ ký (CMS) hỏng hoặc không đọc được",
                                        f"the signature data (CMS) is damaged or unreadable ({_safe(exc)})")
            self.items.append(item)
        self.items.sort(key=lambda i: i.revision)
        try:
            cert_info = read_certification_data(reader)
        except Exception:
            cert_info = None
        if cert_info is not None:
            try:
                author_contents = cert_info.author_sig.raw_get("/Contents").original_bytes
            except Exception:  # an unreadable certification entry: found by its DocMDP reference below
                author_contents = None
            for item in self.items:
                if item.emb is not None and author_contents is not None and item.emb.pkcs7_content == author_contents:
                    item.certification = True
            if not any(i.certification for i in self.items):
                for item in self.items:
                    try:
                        certifying = item.emb is not None and item.emb.docmdp_level is not None
                    except Exception:  # unreadable permissions: not a usable certification signature
                        certifying = False
                    if certifying and item.kind == "signature":
                        item.certification = True
                        break
        self.certification_perm: MDPPerm | None = cert_info.permission if cert_info is not None else None

    def _prefetch_digests(self) -> None:
        """Hash in the background while the difference analysis runs — when there is one to run (revisions after
        the first signature) and enough bytes to make a second thread worth it."""
        size = len(self.data)
        if size < PREFETCH_BYTES or self.items[0].revision >= self.revisions - 1:
            return
        jobs: list[tuple[str, list[tuple[int, int]]]] = []
        for item in self.items:
            br = item.byte_range
            if item.emb is None or len(br) != 4 or min(br) < 0 or br[2] + br[3] > size or br[1] > br[2]:
                continue
            algo = _HASH_NAMES.get(str(getattr(item.emb, "external_md_algorithm", "")).lower())
            if algo is not None:
                jobs.append((algo, [(br[0], br[0] + br[1]), (br[2], br[2] + br[3])]))
        self.hasher.prefetch(jobs)

    def _read_dss(self) -> None:
        try:
            dss = DocumentSecurityStore.read_dss(self.reader)
        except (misc.PdfError, ValueError, KeyError, TypeError, AttributeError, IndexError):
            return
        except Exception:
            self.doc_warnings.append(_msg("dss_unreadable", "kho dữ liệu kiểm tra (DSS) không đọc được",
                                          "the document security store (DSS) cannot be read"))
            return
        for stream_list, dest in ((dss.ocsps, self.dss_ocsps), (dss.crls, self.dss_crls)):
            for ref in stream_list:
                try:
                    dest.append(ref.get_object().data)
                except Exception as exc:  # an unreadable entry provides no validation data
                    log.debug("unreadable DSS entry: %s", _safe(exc))
        try:
            certs = list(dss.load_certs())
        except Exception:
            certs = []
        for c in certs:
            rec = self.trust.try_cert(c.dump())
            if rec is not None:
                self.dss_certs.append(rec)

    # -- 2-4. basic checks -------------------------------------------------------------------------
    def _basic(self, item: _Item) -> None:
        emb = item.emb
        if item.structural is not None or emb is None:
            item.modifications = Modifications("unknown", ModificationLevel.UNKNOWN, None)
            return
        # byte range and coverage
        fail = self._check_byte_range(item)
        if fail is not None:
            item.structural = fail
            item.modifications = Modifications("partial", ModificationLevel.OTHER, False,
                                               detail_vi=fail.vi, detail_en=fail.en)
            return
        sd = emb.signed_data
        signer_info = emb.signer_info
        item.digest_algorithm = str(signer_info["digest_algorithm"]["algorithm"].native)
        item.signature_algorithm = _sig_algo_name(signer_info)
        eci = sd["encap_content_info"]
        # signer certificate
        try:
            item.signer, item.cms_certs = identify_signer(sd, self.trust)
        except CmsProblem as exc:
            item.crypto_fail = _Fail(exc.sub, "signer_cert", exc.vi, exc.en)
        except Exception as exc:
            item.crypto_fail = _Fail(SubIndication.FORMAT_FAILURE, "cms_certs",
                                     "không đọc được chứng thư trong chữ ký",
                                     f"the certificates in the signature cannot be read ({_safe(exc)})")
        self._collect_cms_revinfo(item, sd, signer_info)
        self._modifications(item)  # first: it does not need the digest being computed meanwhile
        if item.kind == "signature":
            self._basic_signature(item, emb, sd, signer_info, eci)
        else:
            self._basic_doc_timestamp(item, emb, sd)

    def _check_byte_range(self, item: _Item) -> _Fail | None:
        emb = item.emb
        assert emb is not None
        br = item.byte_range
        size = len(self.data)
        bad = _Fail(SubIndication.FORMAT_FAILURE, "byte_range",
                    "vùng dữ liệu được ký (ByteRange) không hợp lệ",
                    "the signed byte range (/ByteRange) is not valid")
        if len(br) != 4 or any(x < 0 for x in br) or br[0] != 0 or br[1] > br[2] or br[2] + br[3] > size:
            return bad
        gap = self.data[br[1]:br[2]]
        if not (gap.startswith(b"<") and gap.endswith(b">")) or gap[1:-1].translate(None, b"0123456789abcdefABCDEF"):
            return _Fail(SubIndication.FORMAT_FAILURE, "byte_range_gap",
                         "vùng không được ký không phải đúng giá trị chữ ký (/Contents): có nội dung bị bỏ ngoài",
                         "the unsigned gap is not exactly the signature value (/Contents): content is skipped")
        try:
            coverage = emb.evaluate_signature_coverage()
        except Exception as exc:
            return _Fail(SubIndication.FORMAT_FAILURE, "coverage", "không xác định được phạm vi được ký",
                         f"the signed coverage cannot be determined ({_safe(exc)})")
        emb.coverage = coverage  # type: ignore[assignment]
        if coverage == SignatureCoverageLevel.UNCLEAR:
            return _Fail(SubIndication.FORMAT_FAILURE, "coverage_unclear",
                         "vùng được ký không liền mạch hoặc bỏ sót nội dung của tệp",
                         "the signed region is not contiguous or leaves part of the file out")
        if coverage == SignatureCoverageLevel.CONTIGUOUS_BLOCK_FROM_START:
            return _Fail(SubIndication.FORMAT_FAILURE, "coverage_revision",
                         "chữ ký không bao trùm đúng phiên bản tài liệu chứa nó (ký trên một phiên bản khác)",
                         "the signature does not cover the revision that holds it (it signs a different revision)")
        return None

    def _collect_cms_revinfo(self, item: _Item, sd: cms.SignedData, signer_info: cms.SignerInfo) -> None:
        try:
            crls = sd["crls"]
            for choice in crls if crls is not core.VOID else ():
                if choice.name == "crl":
                    item.cms_crls.append(choice.chosen.dump())
                elif choice.name == "other":
                    other = choice.chosen
                    if other["other_rev_info_format"].native in ("ocsp_response", "1.3.6.1.5.5.7.16.2"):
                        item.cms_ocsps.append(other["other_rev_info"].dump())
        except Exception as exc:  # unreadable revocation data in the CMS: simply not used
            log.debug("unreadable CMS revocation choices: %s", _safe(exc))
        try:
            for attr in find_cms_attribute_iter(signer_info["signed_attrs"], "adobe_revocation_info_archival"):
                for c in attr["crl"] or ():
                    item.cms_crls.append(c.dump())
                for o in attr["ocsp"] or ():
                    item.cms_ocsps.append(o.dump())
        except NonexistentAttributeError:
            return
        except Exception as exc:  # unreadable adbe-revocationInfoArchival: simply not used
            log.debug("unreadable revocation archival attribute: %s", _safe(exc))

    def _algorithms(self, item: _Item, signer_info: cms.SignerInfo, extra: Iterable[tuple[str, str]] = ()
                    ) -> None:
        problems: list[tuple[str, str]] = []
        d = digest_allowed(item.digest_algorithm)
        if not d.ok:
            problems.append((d.vi, d.en))
        m = signature_mechanism_allowed(signer_info["signature_algorithm"])
        if not m.ok:
            problems.append((m.vi, m.en))
        if item.signer is not None:
            k = public_key_allowed(item.signer.asn1.public_key)
            if not k.ok:
                problems.append((k.vi, k.en))
        problems.extend(extra)
        if problems:
            vi = "; ".join(p[0] for p in problems)
            en = "; ".join(p[1] for p in problems)
            item.algorithms = Check(CheckStatus.FAILED, vi, en)
            item.algo_fail = _Fail(SubIndication.CRYPTO_CONSTRAINTS_FAILURE, "algorithm", vi, en)
        else:
            key = item.signer.info.key if item.signer is not None else ""
            text = f"{item.digest_algorithm.upper()}, {item.signature_algorithm}{', ' + key if key else ''}"
            item.algorithms = Check(CheckStatus.PASSED, text, text)

    def _digest(self, item: _Item, algo: str) -> bytes:
        br = item.byte_range
        name = _HASH_NAMES.get(algo.lower())
        if name is None:
            raise ValueError(f"unsupported digest algorithm {algo}")
        return self.hasher.digest(name, [(br[0], br[0] + br[1]), (br[2], br[2] + br[3])])

    def _integrity(self, item: _Item, signer_info: cms.SignerInfo, cert: CertRecord, content_type: str,
                   digest: bytes) -> None:
        try:
            intact, valid = check_integrity(signer_info, cert, content_type, digest)
        except CmsProblem as exc:
            item.integrity = Check(CheckStatus.FAILED, f"cấu trúc chữ ký không hợp lệ: {exc.vi}", exc.en)
            item.crypto_fail = _Fail(exc.sub, "cms_structure", f"cấu trúc dữ liệu chữ ký (CMS) không hợp lệ: {exc.vi}",
                                     f"the signature structure (CMS) is not valid: {exc.en}")
            return
        except Exception as exc:
            item.integrity = Check(CheckStatus.FAILED, "không kiểm tra được giá trị chữ ký", _safe(exc))
            item.signature_value = Check(CheckStatus.FAILED, "không kiểm tra được giá trị chữ ký", _safe(exc))
            item.crypto_fail = _Fail(SubIndication.SIG_CRYPTO_FAILURE, "sig_unverifiable",
                                     "không kiểm tra được giá trị chữ ký (thuật toán không hỗ trợ hoặc dữ liệu hỏng)",
                                     f"the signature value cannot be verified (unsupported algorithm or damaged "
                                     f"data: {_safe(exc)})")
            return
        if intact:
            item.integrity = Check(CheckStatus.PASSED, "toàn vẹn: nội dung không bị thay đổi",
                                   "intact: content unchanged since signing")
        else:
            item.integrity = Check(CheckStatus.FAILED, "nội dung đã bị thay đổi sau khi ký (sai giá trị băm)",
                                   "content changed after signing (digest mismatch)")
            item.crypto_fail = _Fail(SubIndication.HASH_FAILURE, "hash",
                                     "nội dung đã bị thay đổi sau khi ký (giá trị băm không khớp)",
                                     "the content was changed after signing (digest does not match)")
        if valid:
            item.signature_value = Check(CheckStatus.PASSED, "giá trị chữ ký đúng", "signature value verifies")
        else:
            item.signature_value = Check(CheckStatus.FAILED, "giá trị chữ ký không đúng",
                                         "signature value does not verify")
            if item.crypto_fail is None:
                item.crypto_fail = _Fail(SubIndication.SIG_CRYPTO_FAILURE, "signature_value",
                                         "giá trị chữ ký không đúng với chứng thư số",
                                         "the signature value does not verify with the certificate")

    def _basic_signature(self, item: _Item, emb: EmbeddedPdfSignature, sd: cms.SignedData,
                         signer_info: cms.SignerInfo, eci: cms.EncapsulatedContentInfo) -> None:
        if eci["content"] is not core.VOID and eci["content"].native is not None:
            item.structural = _Fail(SubIndication.FORMAT_FAILURE, "econtent",
                                    "chữ ký tách rời nhưng lại chứa nội dung đóng gói (CMS sai định dạng)",
                                    "a detached signature that encapsulates content (malformed CMS)")
            return
        if eci["content_type"].native != "data":
            item.structural = _Fail(SubIndication.FORMAT_FAILURE, "content_type",
                                    "kiểu nội dung CMS không đúng", "wrong CMS content type")
            return
        # claimed signing time: signingTime attribute, else /M
        try:
            st = find_unique_cms_attribute(signer_info["signed_attrs"], "signing_time")
            item.claimed_time = st.native
        except (NonexistentAttributeError, MultivaluedAttributeError, KeyError, TypeError, ValueError):
            try:
                raw = emb.sig_object.get("/M")
                if raw is not None:
                    item.claimed_time = generic.parse_pdf_date(str(raw), strict=False)
            except Exception:
                item.claimed_time = None
        if item.claimed_time is not None and item.claimed_time.tzinfo is None:
            item.claimed_time = item.claimed_time.replace(tzinfo=UTC)
        self._algorithms(item, signer_info)
        if item.crypto_fail is not None or item.signer is None:
            return
        try:
            digest = self._digest(item, item.digest_algorithm)
        except ValueError as exc:
            item.crypto_fail = _Fail(SubIndication.FORMAT_FAILURE, "digest_algorithm",
                                     "hàm băm của chữ ký không được hỗ trợ", f"unsupported digest ({_safe(exc)})")
            return
        self._integrity(item, signer_info, item.signer, "data", digest)
        # signature time-stamps
        try:
            ua = signer_info["unsigned_attrs"]
            tokens = (list(find_cms_attribute_iter(ua, "signature_time_stamp_token"))
                      if ua is not core.VOID and len(ua) else [])
        except (NonexistentAttributeError, KeyError, TypeError, ValueError):
            tokens = []
        except Exception:
            tokens = []
            item.warnings.append(_msg("timestamp_unreadable", "dấu thời gian của chữ ký không đọc được",
                                      "the signature time-stamp cannot be read"))
        signature_bytes = signer_info["signature"].native
        for tok in tokens:
            item.tokens.append(self._basic_token("signature_timestamp", tok, signature_bytes=signature_bytes))

    def _basic_doc_timestamp(self, item: _Item, emb: EmbeddedPdfSignature, sd: cms.SignedData) -> None:
        content_info = cms.ContentInfo({"content_type": "signed_data", "content": sd})
        token = self._basic_token("document_timestamp", content_info, item=item)
        item.doc_token = token
        item.signer = token.tsa
        if token.fail is not None:
            if token.fail.sub in (SubIndication.HASH_FAILURE,):
                item.integrity = Check(CheckStatus.FAILED, token.fail.vi, token.fail.en)
            item.crypto_fail = token.fail if token.fail.indication == Indication.TOTAL_FAILED else None
            if token.fail.indication != Indication.TOTAL_FAILED:
                item.algo_fail = token.fail
        else:
            item.integrity = Check(CheckStatus.PASSED, "toàn vẹn: nội dung không bị thay đổi",
                                   "intact: content unchanged since time-stamping")
            item.signature_value = Check(CheckStatus.PASSED, "giá trị chữ ký của dấu thời gian đúng",
                                         "time-stamp signature verifies")
        item.claimed_time = token.gen_time
        try:
            signer_info = sd["signer_infos"][0]
            item.digest_algorithm = str(signer_info["digest_algorithm"]["algorithm"].native)
            item.signature_algorithm = _sig_algo_name(signer_info)
        except Exception as exc:  # names only, for the report
            log.debug("unreadable time-stamp algorithms: %s", _safe(exc))
        if token.fail is None:
            item.algorithms = Check(CheckStatus.PASSED, item.digest_algorithm.upper(), item.digest_algorithm.upper())
        elif token.fail.sub == SubIndication.CRYPTO_CONSTRAINTS_FAILURE:
            item.algorithms = Check(CheckStatus.FAILED, token.fail.vi, token.fail.en)

    def _basic_token(self, kind: str, content_info: Any, *, signature_bytes: bytes | None = None,
                     item: _Item | None = None) -> _Token:
        """Crypto checks of an RFC 3161 token: imprint, TSA signature, TSA certificate and algorithms."""
        try:
            sd = content_info["content"]
            if not isinstance(sd, cms.SignedData):
                raise ValueError("time-stamp token is not SignedData")
            eci = sd["encap_content_info"]
            tst = eci["content"].parsed if isinstance(eci["content"], core.ParsableOctetString) else None
            if not isinstance(tst, tsp.TSTInfo):
                raise ValueError("time-stamp token does not hold a TSTInfo")
            gen_time = tst["gen_time"].native
            if gen_time.tzinfo is None:
                gen_time = gen_time.replace(tzinfo=UTC)
            mi_algo = str(tst["message_imprint"]["hash_algorithm"]["algorithm"].native)
            imprint = tst["message_imprint"]["hashed_message"].native
        except Exception as exc:
            return _Token(kind, None, fail=_Fail(SubIndication.FORMAT_FAILURE, "ts_format",
                                                 "dấu thời gian sai định dạng",
                                                 f"malformed time-stamp token ({_safe(exc)})"))
        token = _Token(kind, sd, gen_time=gen_time)
        try:
            token.tsa, token.certs = identify_signer(sd, self.trust)
        except CmsProblem as exc:
            token.fail = _Fail(exc.sub, "ts_signer", f"dấu thời gian: {exc.vi}", f"time-stamp: {exc.en}")
            return token
        except Exception as exc:
            token.fail = _Fail(SubIndication.NO_SIGNING_CERTIFICATE_FOUND, "ts_no_cert",
                               "không tìm thấy chứng thư của đơn vị cấp dấu thời gian",
                               f"the time-stamping unit's certificate is not in the token ({_safe(exc)})")
            return token
        # imprint
        name = _HASH_NAMES.get(mi_algo.lower())
        if name is None:
            token.fail = _Fail(SubIndication.FORMAT_FAILURE, "ts_imprint_algo", "hàm băm của dấu thời gian lạ",
                               f"unknown time-stamp imprint digest {mi_algo}")
            return token
        if kind == "signature_timestamp":
            assert signature_bytes is not None
            expected = hashlib.new(name, signature_bytes).digest()
        else:
            assert item is not None
            expected = self._digest(item, name)
        if expected != imprint:
            token.fail = _Fail(SubIndication.HASH_FAILURE, "ts_hash",
                               "dấu thời gian không khớp với dữ liệu được đóng dấu (sai giá trị băm)",
                               "the time-stamp does not match the data it stamps (imprint mismatch)")
            return token
        signer_info = sd["signer_infos"][0]
        md_algo = str(signer_info["digest_algorithm"]["algorithm"].native)
        md_name = _HASH_NAMES.get(md_algo.lower())
        try:
            if md_name is None:
                raise ValueError(f"unsupported digest {md_algo}")
            content_digest = hashlib.new(md_name, bytes(eci["content"])).digest()
            intact, valid = check_integrity(signer_info, token.tsa, "tst_info", content_digest)
        except CmsProblem as exc:
            token.fail = _Fail(exc.sub, "ts_cms", f"dấu thời gian: {exc.vi}", f"time-stamp: {exc.en}")
            return token
        except Exception as exc:
            token.fail = _Fail(SubIndication.SIG_CRYPTO_FAILURE, "ts_crypto",
                               "không kiểm tra được chữ ký của dấu thời gian",
                               f"the time-stamp's signature cannot be verified ({_safe(exc)})")
            return token
        if not intact or not valid:
            token.fail = _Fail(SubIndication.SIG_CRYPTO_FAILURE if intact else SubIndication.HASH_FAILURE,
                               "ts_signature", "chữ ký của dấu thời gian không đúng",
                               "the time-stamp's signature does not verify")
            return token
        problems = []
        for verdict in (digest_allowed(mi_algo), digest_allowed(md_algo),
                        signature_mechanism_allowed(signer_info["signature_algorithm"]),
                        public_key_allowed(token.tsa.asn1.public_key)):
            if not verdict.ok:
                problems.append(verdict)
        if problems:
            token.fail = _Fail(SubIndication.CRYPTO_CONSTRAINTS_FAILURE, "ts_algorithm",
                               "; ".join(p.vi for p in problems), "; ".join(p.en for p in problems))
            return token
        if "time_stamping" not in token.tsa.eku:
            token.fail = _Fail(SubIndication.CHAIN_CONSTRAINTS_FAILURE, "ts_eku",
                               "chứng thư của đơn vị cấp dấu thời gian không dành cho cấp dấu thời gian",
                               "the time-stamping certificate lacks id-kp-timeStamping")
        return token

    # -- modifications -----------------------------------------------------------------------------
    def _docmdp_for(self, item: _Item) -> MDPPerm | None:
        emb = item.emb
        own = None
        try:
            own = emb.docmdp_level if emb is not None else None
        except Exception:
            own = None
        if own is not None:
            return own
        if self.certification_perm is not None:
            cert_items = [i for i in self.items if i.certification]
            if cert_items and cert_items[0].revision <= item.revision:
                return self.certification_perm
        return None

    def _modifications(self, item: _Item) -> None:
        emb = item.emb
        assert emb is not None
        docmdp = self._docmdp_for(item)
        p = int(docmdp.value) if docmdp is not None else None
        after = max(0, self.revisions - 1 - item.revision)
        if emb.coverage == SignatureCoverageLevel.ENTIRE_FILE:
            item.modifications = Modifications("entire_file", ModificationLevel.NONE, True, docmdp=p,
                                               detail_vi="chữ ký bao trùm toàn bộ tệp",
                                               detail_en="the signature covers the whole file")
            return
        try:
            fieldmdp = emb.fieldmdp
        except Exception:
            fieldmdp = None
        try:
            result: DiffResult | SuspiciousModification = DEFAULT_DIFF_POLICY.review_file(
                self.reader, item.revision, field_mdp_spec=fieldmdp, doc_mdp=docmdp
            )
        except (MemoryError, RecursionError):
            raise
        except Exception as exc:
            result = SuspiciousModification(f"later revision unreadable: {_safe(exc)}")
        if isinstance(result, SuspiciousModification):
            text = str(result).split("\n")[0][:300]
            item.modifications = Modifications(
                "entire_revision", ModificationLevel.OTHER, False, docmdp=p, revisions_after=after,
                detail_vi="tài liệu đã bị sửa đổi sau khi ký (thay đổi không được phép: nội dung, trang, đối tượng)",
                detail_en=f"the document was modified after signing (changes not permitted: {text})",
            )
            item.mod_fail = _Fail(SubIndication.FORMAT_FAILURE, "modified",
                                  "tài liệu đã bị sửa đổi sau khi ký (thay đổi không được phép)",
                                  f"the document was modified after signing ({text})")
            return
        forward = self._forward_references(item.revision)
        if forward:
            refs = ", ".join(f"{r.idnum} {r.generation} R" for r in forward[:5])
            item.modifications = Modifications(
                "entire_revision", ModificationLevel.OTHER, False, docmdp=p, revisions_after=after,
                detail_vi="sau khi ký, tài liệu được bổ sung đối tượng mà phần đã ký trỏ tới nhưng lúc ký chưa có "
                          f"({refs}): nội dung hiển thị đã bị thay đổi",
                detail_en=f"after signing, objects the signed document referred to but which did not exist yet were "
                          f"defined ({refs}): what is displayed was changed",
            )
            item.mod_fail = _Fail(SubIndication.FORMAT_FAILURE, "modified",
                                  f"tài liệu đã bị sửa đổi sau khi ký: {item.modifications.detail_vi}",
                                  f"the document was modified after signing: {item.modifications.detail_en}")
            return
        level = result.modification_level
        changed = tuple(sorted(_plain(f) for f in result.changed_form_fields))
        sig_fields = self._signature_field_names()
        # pyHanko lists every field whose objects *may* be updated; keep those that really changed
        non_sig = tuple(f for f in changed if f not in sig_fields and self._field_changed(f, item.revision))
        if level <= PyhModLevel.LTA_UPDATES:
            ours = ModificationLevel.SIGNATURE_MAINTENANCE if after else ModificationLevel.NONE
        elif level == PyhModLevel.FORM_FILLING:
            ours = ModificationLevel.FORM_FILLING if non_sig else ModificationLevel.SIGNING
        elif level == PyhModLevel.ANNOTATIONS:
            ours = ModificationLevel.ANNOTATIONS
        else:
            ours = ModificationLevel.OTHER
        allowed = {
            ModificationLevel.NONE: True,
            ModificationLevel.SIGNATURE_MAINTENANCE: True,
            ModificationLevel.SIGNING: p is None or p >= 2,
            ModificationLevel.FORM_FILLING: p is not None and p >= 2,
            ModificationLevel.ANNOTATIONS: p is not None and p >= 3,
            ModificationLevel.OTHER: False,
        }[ours]
        texts = {
            ModificationLevel.NONE: ("không có thay đổi sau khi ký", "no change after signing"),
            ModificationLevel.SIGNATURE_MAINTENANCE: (
                "sau khi ký chỉ bổ sung dữ liệu kiểm tra (DSS) hoặc dấu thời gian tài liệu",
                "after signing only validation data (DSS) or document time-stamps were added"),
            ModificationLevel.SIGNING: ("sau khi ký chỉ bổ sung chữ ký khác",
                                        "after signing only further signatures were added"),
            ModificationLevel.FORM_FILLING: (
                f"sau khi ký có điền trường biểu mẫu: {', '.join(non_sig)}",
                f"form fields were filled after signing: {', '.join(non_sig)}"),
            ModificationLevel.ANNOTATIONS: ("sau khi ký có thêm chú thích (annotation)",
                                            "annotations were added after signing"),
            ModificationLevel.OTHER: ("tài liệu đã bị sửa đổi sau khi ký", "the document was modified after signing"),
        }
        vi, en = texts[ours]
        item.modifications = Modifications("entire_revision", ours, allowed, changed, p, after, vi, en)
        if not allowed:
            why_vi = vi
            why_en = en
            if ours == ModificationLevel.SIGNING:
                why_vi = "chữ ký chứng thực không cho phép thay đổi nhưng sau đó vẫn có chữ ký khác được thêm"
                why_en = "a certification signature forbids changes, yet further signatures were added"
            item.mod_fail = _Fail(SubIndication.FORMAT_FAILURE, "modified",
                                  f"thay đổi sau khi ký không được phép: {why_vi}",
                                  f"change after signing not permitted: {why_en}")
        elif ours == ModificationLevel.FORM_FILLING:
            item.warnings.append(_msg("form_filled", vi, en))

    def _forward_references(self, revision: int) -> list[generic.Reference]:
        """Objects defined after ``revision`` that the document (not merely a trailer key nobody displays)
        referred to in ``revision``, when they did not exist yet.

        pyHanko's difference analysis counts such objects as harmless orphans (its own comment: "this function
        assumes that there is no shady behaviour with older revisions referring to as-of-yet-undefined references
        in future revisions"): a page whose ``/Contents`` points at an undefined object renders blank there, and
        defining the object after signing draws anything on the signed page.
        """
        reader = self.reader
        later: set[generic.Reference] = set()
        for rev in range(revision + 1, self.revisions):
            later |= set(reader.get_historical_resolver(rev).explicit_refs_in_revision())
        if not later:
            return []
        hist = reader.get_historical_resolver(revision)
        candidates = []
        for ref in later:
            try:
                defined = reader.xrefs.get_historical_ref(ref, revision) is not None
            except (KeyError, IndexError):
                defined = False
            if not defined:
                candidates.append(ref)
        if not candidates:
            return []
        hist._load_reverse_xref_cache()  # shared with (and usually already built by) the difference analysis
        return sorted((r for r in candidates if hist._get_usages_of_ref(r)), key=lambda r: (r.idnum, r.generation))

    def _field_values(self, revision: int) -> dict[str, tuple[Any, ...]]:
        """Fully qualified field name → (value, appearance data) as of ``revision``."""
        cache = self.__dict__.setdefault("_field_cache", {})
        if revision in cache:
            return cache[revision]
        out: dict[str, tuple[Any, ...]] = {}
        hist = self.reader.get_historical_resolver(revision)

        def appearance(field: Any) -> Any:
            try:
                ap = field.get("/AP")
                normal = ap.get("/N") if ap is not None else None
                if normal is None:
                    return None
                if isinstance(normal, generic.StreamObject):
                    return normal.encoded_data
                return tuple(sorted((str(k), v.encoded_data if isinstance(v, generic.StreamObject) else None)
                                    for k, v in normal.items()))
            except Exception:  # an unreadable appearance is compared as such
                return "unreadable"

        def walk(fields_arr: Any, prefix: str, depth: int) -> None:
            if depth > 32:
                return
            for ref in fields_arr:
                field = ref.get_object()
                name = _plain(field.get("/T", ""))
                fq = f"{prefix}.{name}" if prefix and name else (name or prefix)
                value = field.get("/V")
                value_key = _plain(value) if isinstance(value, str) else repr(value)
                out[fq] = (value_key, appearance(field))
                kids = field.get("/Kids")
                if kids is not None:
                    walk(kids, fq, depth + 1)

        try:
            walk(hist.root["/AcroForm"]["/Fields"], "", 0)
        except Exception as exc:  # no form in that revision, or an unreadable one: no fields to compare
            log.debug("form fields of revision %d unreadable: %s", revision, _safe(exc))
        cache[revision] = out
        return out

    def _field_changed(self, name: str, revision: int) -> bool:
        """Did the value or the appearance of field ``name`` change between ``revision`` and the last one?"""
        before = self._field_values(revision).get(name)
        after = self._field_values(self.revisions - 1).get(name)
        return before != after

    def _signature_field_names(self) -> set[str]:
        if not hasattr(self, "_sig_names"):
            try:
                self._sig_names = {_plain(name) for name, _v, _r in enumerate_sig_fields(self.reader)}
            except Exception:
                self._sig_names = set()
        return self._sig_names

    # -- 5-6. time and trust -----------------------------------------------------------------------
    def _all_certs(self) -> list[CertRecord]:
        out = list(self.dss_certs)
        for item in self.items:
            out.extend(item.cms_certs)
            if item.signer is not None:
                out.append(item.signer)
            for tok in [*item.tokens, *([item.doc_token] if item.doc_token else [])]:
                out.extend(tok.certs)
                if tok.tsa is not None:
                    out.append(tok.tsa)
        return out

    def _time_and_trust(self) -> None:
        self.pool = self.trust.pool(self._all_certs())
        self.all_ocsps = list(self.dss_ocsps)
        self.all_crls = list(self.dss_crls)
        for item in self.items:
            self.all_ocsps.extend(item.cms_ocsps)
            self.all_crls.extend(item.cms_crls)
        # document time-stamps, newest first: each proves the existence of everything before it
        poe_bound = self.V
        for item in sorted((i for i in self.items if i.kind == "document_timestamp"),
                           key=lambda i: i.revision, reverse=True):
            tok = item.doc_token
            if tok is None or item.structural is not None or item.crypto_fail is not None:
                continue
            self._token_time(tok, poe_bound)
            # a time-stamp followed by changes that are not permitted proves nothing about what came before
            if tok.usable and tok.gen_time is not None and item.mod_fail is None:
                poe_bound = min(poe_bound, tok.gen_time)
        for item in self.items:
            if item.kind != "signature" or item.structural is not None:
                continue
            p = self._poe_from_doc_timestamps(item)
            for tok in item.tokens:
                if tok.fail is None:
                    self._token_time(tok, p)

    def _poe_from_doc_timestamps(self, item: _Item) -> datetime:
        p = self.V
        for other in self.items:
            tok = other.doc_token
            if (other.kind == "document_timestamp" and other.revision > item.revision and tok is not None
                    and tok.usable and tok.gen_time is not None and other.mod_fail is None):
                p = min(p, tok.gen_time)
        return p

    def _revocation_for_path(self, certs: tuple[CertRecord, ...], at: datetime
                             ) -> tuple[list[RevocationStatus], int]:
        out: list[RevocationStatus] = []
        fetched = 0
        for i, cert in enumerate(certs):
            issuer = certs[i + 1] if i + 1 < len(certs) else None
            res: RevocationResult = self.trust.revocation(
                cert, issuer, at, ocsps=self.all_ocsps, crls=self.all_crls, pool=self.pool,
                now=self.req.now, online=not self.req.offline,
            )
            out.append(res.status)
            fetched += 1 if res.online else 0
        return out, fetched

    def _token_time(self, tok: _Token, poe: datetime) -> None:
        """Validate a token's TSA at its generation time, with proof of existence ``poe`` (≥ gen time)."""
        assert tok.tsa is not None and tok.gen_time is not None
        g = tok.gen_time
        path = self.trust.build_path(tok.tsa, self._pool_with(tok.certs))
        tok.path = path
        if not path.trusted:
            assert path.sub_indication is not None
            tok.indication, tok.sub = Indication.INDETERMINATE, path.sub_indication
            tok.reasons.append(_msg("ts_untrusted", f"dấu thời gian: {path.vi}", f"time-stamp: {path.en}"))
            return
        chain = path.certs[:-1] if len(path.certs) > 1 else ()
        for c in chain:
            if not c.valid_at(g):
                tok.indication, tok.sub = Indication.TOTAL_FAILED, SubIndication.EXPIRED if g > c.not_after \
                    else SubIndication.NOT_YET_VALID
                tok.reasons.append(_msg(
                    "ts_cert_validity",
                    f"chứng thư {c.common_name} không còn hiệu lực lúc cấp dấu thời gian ({fmt_time(g)})",
                    f"certificate {c.common_name} was not valid when the time-stamp was issued ({fmt_time(g, 'en')})",
                ))
                return
            if poe > c.not_after:
                tok.indication, tok.sub = Indication.INDETERMINATE, SubIndication.OUT_OF_BOUNDS_NO_POE
                tok.reasons.append(_msg(
                    "ts_expired",
                    f"chứng thư {c.common_name} của dấu thời gian đã hết hạn ({fmt_time(c.not_after)}) "
                    "và không có dấu thời gian mới hơn bảo chứng",
                    f"the time-stamp's certificate {c.common_name} expired ({fmt_time(c.not_after, 'en')}) "
                    "and no newer time-stamp covers it",
                ))
                return
        statuses, fetched = self._revocation_for_path(path.certs, g)
        tok.revocation = statuses
        tok.online += fetched
        self.online += fetched
        for st in statuses:
            if st.state == RevocationState.REVOKED:
                tok.indication, tok.sub = Indication.TOTAL_FAILED, SubIndication.REVOKED
                tok.reasons.append(_msg("ts_revoked",
                                        f"chứng thư {st.certificate} của dấu thời gian đã bị thu hồi",
                                        f"the time-stamp's certificate {st.certificate} was revoked"))
                return
        unknown = [s for s in statuses if s.state == RevocationState.UNKNOWN]
        if unknown:
            tok.indication, tok.sub = Indication.INDETERMINATE, SubIndication.TRY_LATER
            tok.reasons.append(_msg(
                "ts_revocation_unchecked",
                f"chưa kiểm tra được tình trạng thu hồi chứng thư của dấu thời gian ({unknown[0].certificate}: "
                f"{unknown[0].detail_vi})",
                f"the time-stamp certificate's revocation status could not be checked ({unknown[0].certificate}: "
                f"{unknown[0].detail_en})",
            ))
            return
        tok.indication, tok.sub = Indication.TOTAL_PASSED, None

    def _pool_with(self, extra: list[CertRecord]) -> Any:
        if not extra or all(c.fp in self.pool.by_fp for c in extra):
            return self.pool
        for c in extra:
            self.pool.add(c)
        return self.pool

    # -- 7. verdicts -------------------------------------------------------------------------------
    def _report(self) -> VerificationReport:
        sig_reports = [self._signature_report(i + 1, item) for i, item in enumerate(self.items)]
        worst = max(sig_reports, key=lambda r: r.indication.severity)
        indication = worst.indication
        sub = worst.sub_indication
        outcome = {Indication.TOTAL_PASSED: Outcome.VALID, Indication.TOTAL_FAILED: Outcome.INVALID,
                   Indication.INDETERMINATE: Outcome.INDETERMINATE}[indication]
        reasons: list[Message] = []
        warnings: list[Message] = list(self.doc_warnings)
        for r in sig_reports:
            for m in r.reasons:
                reasons.append(Message(m.code, f"{r.title('vi')}: {m.vi}", f"{r.title('en')}: {m.en}"))
            for w in r.warnings:
                warnings.append(Message(w.code, f"{r.title('vi')}: {w.vi}", f"{r.title('en')}: {w.en}"))
        last = self.items[-1]
        covers = None
        if last.emb is not None and last.emb.coverage is not None:
            covers = last.emb.coverage == SignatureCoverageLevel.ENTIRE_FILE
        doc = DocumentInfo(
            name=self.req.name,
            size=len(self.data),
            sha256=self.hasher.whole("sha256"),
            revisions=self.revisions,
            pages=self.pages,
        )
        return VerificationReport(
            document=doc,
            validation_time=self.V,
            generated_at=self.req.now,
            outcome=outcome,
            indication=indication,
            sub_indication=sub,
            signatures=tuple(sig_reports),
            last_signature_covers_file=covers,
            reasons=tuple(reasons),
            warnings=tuple(_dedupe(warnings)),
            offline=self.req.offline,
            online_lookups=self.online,
        )

    def _token_report(self, tok: _Token) -> TimestampReport:
        chain: tuple[CertRecord, ...] = tok.path.certs[1:] if tok.path is not None else ()
        reasons = list(tok.reasons)
        if tok.fail is not None:
            reasons.insert(0, tok.fail.message())
            indication: Indication = tok.fail.indication
            sub: SubIndication | None = tok.fail.sub
        else:
            indication, sub = tok.indication, tok.sub
        return TimestampReport(
            kind=tok.kind,
            indication=indication,
            sub_indication=sub,
            time=tok.gen_time,
            tsa=tok.tsa.info if tok.tsa is not None else None,
            chain=tuple(c.info for c in chain),
            trust_anchor=tok.path.anchor.common_name if tok.path is not None and tok.path.anchor else "",
            revocation=tuple(tok.revocation),
            reasons=tuple(reasons),
            warnings=tuple(tok.warnings),
        )

    def _signature_report(self, index: int, item: _Item) -> SignatureReport:
        if item.kind == "document_timestamp":
            return self._doc_ts_report(index, item)
        return self._sig_report(index, item)

    def _base_failures(self, item: _Item) -> list[_Fail]:
        return [f for f in (item.structural, item.crypto_fail, item.mod_fail) if f is not None]

    def _doc_ts_report(self, index: int, item: _Item) -> SignatureReport:
        tok = item.doc_token
        ts_report = self._token_report(tok) if tok is not None else None
        failures = self._base_failures(item)
        reasons = [f.message() for f in failures]
        if ts_report is not None and not failures:
            reasons.extend(ts_report.reasons)
        sub: SubIndication | None
        if failures:
            first = sorted(failures, key=lambda f: -f.indication.severity)[0]
            indication, sub = first.indication, first.sub
        elif ts_report is not None:
            indication, sub = ts_report.indication, ts_report.sub_indication
        else:
            indication, sub = Indication.TOTAL_FAILED, SubIndication.FORMAT_FAILURE
        chain = ts_report.chain if ts_report is not None else ()
        checks = SignatureChecks(
            integrity=item.integrity,
            signature_value=item.signature_value,
            certificate_chain=_chain_check(tok.path if tok else None),
            validity_at_signing=_validity_check(tok, indication),
            revocation=_revocation_check(tok.revocation if tok else ()),
            key_usage=Check(CheckStatus.NOT_APPLICABLE, "", ""),
            algorithms=item.algorithms,
            timestamp=Check(CheckStatus.PASSED if indication == Indication.TOTAL_PASSED else CheckStatus.FAILED,
                            "dấu thời gian tài liệu", "document time-stamp"),
            modifications=_mod_check(item.modifications),
        )
        return SignatureReport(
            index=index,
            field=item.field_name,
            kind="document_timestamp",
            indication=indication,
            sub_indication=sub,
            subfilter=item.subfilter,
            revision=item.revision,
            byte_range=item.byte_range,
            signer=tok.tsa.info if tok is not None and tok.tsa is not None else None,
            chain=chain,
            trust_anchor=ts_report.trust_anchor if ts_report else "",
            claimed_signing_time=tok.gen_time if tok else None,
            timestamp_time=tok.gen_time if tok else None,
            best_signature_time=tok.gen_time if tok and tok.usable else None,
            digest_algorithm=item.digest_algorithm,
            signature_algorithm=item.signature_algorithm,
            checks=checks,
            revocation=tuple(tok.revocation) if tok else (),
            timestamps=(ts_report,) if ts_report else (),
            modifications=item.modifications,
            long_term=None,
            reasons=tuple(reasons),
            warnings=tuple(item.warnings),
        )

    def _sig_report(self, index: int, item: _Item) -> SignatureReport:
        failures: list[_Fail] = self._base_failures(item)
        warnings: list[Message] = list(item.warnings)
        ts_reports = [self._token_report(t) for t in item.tokens]
        usable = [t for t in item.tokens if t.usable]
        for t, rep in zip(item.tokens, ts_reports, strict=True):
            if not t.usable:
                why = rep.reasons[0] if rep.reasons else None
                warnings.append(_msg(
                    "timestamp_not_usable",
                    "dấu thời gian của chữ ký không dùng được" + (f": {why.vi}" if why else ""),
                    "the signature time-stamp cannot be relied on" + (f": {why.en}" if why else ""),
                ))
        p = self._poe_from_doc_timestamps(item)
        ts_time = min((t.gen_time for t in usable if t.gen_time), default=None)
        best = min(p, ts_time) if ts_time is not None else p
        proven = best < self.V or ts_time is not None
        if ts_time is not None and ts_time > p:
            failures.append(_Fail(SubIndication.TIMESTAMP_ORDER_FAILURE, "ts_order",
                                  "dấu thời gian chữ ký muộn hơn dấu thời gian tài liệu bao trùm nó",
                                  "the signature time-stamp is later than a document time-stamp covering it"))
        if item.claimed_time is not None and ts_time is not None and item.claimed_time > ts_time + CLAIM_TOLERANCE:
            warnings.append(_msg("claimed_after_timestamp",
                                 "thời gian ký khai báo muộn hơn dấu thời gian",
                                 "the claimed signing time is later than the time-stamp"))
        if item.algo_fail is not None:
            failures.append(item.algo_fail)
        path: PathResult | None = None
        revocation: list[RevocationStatus] = []
        validity = Check(CheckStatus.NOT_CHECKED, "chưa kiểm tra", "not checked")
        key_usage = Check(CheckStatus.NOT_CHECKED, "chưa kiểm tra", "not checked")
        signer = item.signer
        # trust is still evaluated for a document modified after signing (who signed matters to an auditor);
        # only a broken signature value leaves nothing to evaluate
        broken = item.crypto_fail is not None and item.crypto_fail.indication == Indication.TOTAL_FAILED
        if signer is not None and item.structural is None and not broken:
            path = self.trust.build_path(signer, self.pool)
            ku = signer.key_usage
            if ku and not ({"digital_signature", "non_repudiation"} & set(ku)):
                key_usage = Check(CheckStatus.FAILED, "chứng thư không cho phép dùng để ký",
                                  "the certificate's key usage does not allow signing")
                failures.append(_Fail(SubIndication.SIG_CONSTRAINTS_FAILURE, "key_usage",
                                      "mục đích sử dụng khóa của chứng thư không cho phép ký số",
                                      "the certificate's key usage does not allow digital signatures"))
            else:
                key_usage = Check(CheckStatus.PASSED, ", ".join(ku) or "không giới hạn",
                                  ", ".join(ku) or "unrestricted")
            if not path.trusted:
                assert path.sub_indication is not None
                failures.append(_Fail(path.sub_indication, "chain", path.vi, path.en))
            validity, vfails = self._validity(item, path, best, proven, ts_time, warnings)
            failures.extend(vfails)
            if path.trusted and not any(f.sub in (SubIndication.EXPIRED, SubIndication.NOT_YET_VALID)
                                        for f in vfails):
                revocation, fetched = self._revocation_for_path(path.certs, best)
                self.online += fetched
                failures.extend(self._revocation_failures(revocation, proven, warnings))
        # verdict: failures first, then indeterminates, in the order found
        failed = [f for f in failures if f.indication == Indication.TOTAL_FAILED]
        indet = [f for f in failures if f.indication == Indication.INDETERMINATE]
        if failed:
            indication, sub = Indication.TOTAL_FAILED, failed[0].sub
        elif indet:
            indication, sub = Indication.INDETERMINATE, indet[0].sub
        else:
            indication, sub = Indication.TOTAL_PASSED, None
        reasons = [f.message() for f in (failed or indet)]
        if any(s.state == RevocationState.UNKNOWN for s in revocation):
            warnings.insert(0, _msg(
                "revocation_unchecked",
                "CẢNH BÁO: chưa kiểm tra được tình trạng thu hồi của chứng thư số (không có dữ liệu CRL/OCSP "
                "phù hợp)",
                "WARNING: the certificate's revocation status could not be checked (no suitable CRL/OCSP data)",
            ))
        chain_infos = tuple(c.info for c in path.certs[1:]) if path is not None else ()
        if not chain_infos and signer is not None:
            chain_infos = ()
        checks = SignatureChecks(
            integrity=item.integrity,
            signature_value=item.signature_value,
            certificate_chain=_chain_check(path),
            validity_at_signing=validity,
            revocation=_revocation_check(revocation),
            key_usage=key_usage,
            algorithms=item.algorithms,
            timestamp=_ts_check(ts_reports, usable),
            modifications=_mod_check(item.modifications),
        )
        return SignatureReport(
            index=index,
            field=item.field_name,
            kind="signature",
            indication=indication,
            sub_indication=sub,
            subfilter=item.subfilter,
            certification=item.certification,
            revision=item.revision,
            byte_range=item.byte_range,
            signer=signer.info if signer is not None else None,
            chain=chain_infos,
            trust_anchor=path.anchor.common_name if path is not None and path.anchor is not None else "",
            claimed_signing_time=item.claimed_time,
            timestamp_time=ts_time,
            best_signature_time=best,
            digest_algorithm=item.digest_algorithm,
            signature_algorithm=item.signature_algorithm,
            checks=checks,
            revocation=tuple(revocation),
            timestamps=tuple(ts_reports),
            modifications=item.modifications,
            long_term=self._long_term(item, path, revocation, usable, indication),
            reasons=tuple(reasons),
            warnings=tuple(_dedupe(warnings)),
        )

    def _validity(self, item: _Item, path: PathResult, best: datetime, proven: bool, ts_time: datetime | None,
                  warnings: list[Message]) -> tuple[Check, list[_Fail]]:
        signer = item.signer
        assert signer is not None
        fails: list[_Fail] = []
        claimed = item.claimed_time
        certs = path.certs[:-1] if path.trusted else path.certs
        nb = max(c.not_before for c in certs)
        na = min(c.not_after for c in certs)
        period_vi = f"hiệu lực {fmt_time(signer.not_before)} – {fmt_time(signer.not_after)}"
        period_en = f"valid {fmt_time(signer.not_before, 'en')} – {fmt_time(signer.not_after, 'en')}"
        if ts_time is not None and ts_time < nb:
            fails.append(_Fail(SubIndication.NOT_YET_VALID, "not_yet_valid",
                               f"dấu thời gian cho thấy chữ ký được tạo trước khi chứng thư có hiệu lực ({period_vi})",
                               f"the time-stamp shows the signature was made before the certificate became valid "
                               f"({period_en})"))
            return Check(CheckStatus.FAILED, "chứng thư chưa có hiệu lực khi ký",
                         "certificate not yet valid at signing"), fails
        if best < nb:
            fails.append(_Fail(SubIndication.OUT_OF_BOUNDS_NO_POE, "not_yet_valid_now",
                               f"chứng thư chưa có hiệu lực tại thời điểm kiểm tra ({period_vi})",
                               f"the certificate is not yet valid at the validation time ({period_en})"))
            return Check(CheckStatus.FAILED, "chứng thư chưa có hiệu lực", "certificate not yet valid"), fails
        if claimed is not None and not (signer.not_before - CLAIM_TOLERANCE <= claimed
                                        <= signer.not_after + CLAIM_TOLERANCE):
            warnings.append(_msg("claimed_outside_validity",
                                 f"thời gian ký do người ký khai báo ({fmt_time(claimed)}) nằm ngoài thời hạn hiệu lực "
                                 "của chứng thư (thời gian này không được bảo chứng)",
                                 f"the signing time claimed by the signer ({fmt_time(claimed, 'en')}) is outside the "
                                 "certificate's validity (this time is not attested)"))
        if best > na:
            expired = [c for c in certs if best > c.not_after]
            who = expired[0].common_name if expired else signer.common_name
            if ts_time is not None and ts_time > na:
                fails.append(_Fail(SubIndication.EXPIRED, "expired",
                                   f"chứng thư {who} đã hết hạn trước thời điểm ký theo dấu thời gian ({period_vi})",
                                   f"certificate {who} had expired before the time-stamped signing time "
                                   f"({period_en})"))
            else:
                fails.append(_Fail(SubIndication.OUT_OF_BOUNDS_NO_POE, "out_of_bounds",
                                   f"chứng thư {who} đã hết hạn và không có dấu thời gian chứng minh chữ ký được tạo "
                                   f"khi chứng thư còn hiệu lực ({period_vi})",
                                   f"certificate {who} has expired and no time-stamp proves the signature was made "
                                   f"while it was valid ({period_en})"))
            return Check(CheckStatus.FAILED, f"chứng thư không còn hiệu lực tại thời điểm được chứng minh "
                                             f"({fmt_time(best)})",
                         f"certificate not valid at the proven time ({fmt_time(best, 'en')})"), fails
        when = fmt_time(best)
        return Check(CheckStatus.PASSED,
                     f"chứng thư còn hiệu lực lúc ký ({when}); {period_vi}",
                     f"certificate valid at signing time ({fmt_time(best, 'en')}); {period_en}"), fails

    def _revocation_failures(self, statuses: list[RevocationStatus], proven: bool, warnings: list[Message]
                             ) -> list[_Fail]:
        fails: list[_Fail] = []
        for i, st in enumerate(statuses):
            is_signer = i == 0
            if st.state == RevocationState.REVOKED:
                when = fmt_time(st.revoked_at)
                when_en = fmt_time(st.revoked_at, "en")
                if proven:
                    fails.append(_Fail(SubIndication.REVOKED, "revoked",
                                       f"chứng thư {st.certificate} đã bị thu hồi lúc {when}, trước thời điểm ký",
                                       f"certificate {st.certificate} was revoked at {when_en}, before signing"))
                else:
                    sub = SubIndication.REVOKED_NO_POE if is_signer else SubIndication.REVOKED_CA_NO_POE
                    fails.append(_Fail(sub, "revoked_no_poe",
                                       f"chứng thư {st.certificate} đã bị thu hồi lúc {when} và không có dấu thời "
                                       "gian chứng minh chữ ký được tạo trước đó",
                                       f"certificate {st.certificate} was revoked at {when_en} and no time-stamp "
                                       "proves the signature was made before"))
            elif st.state == RevocationState.REVOKED_LATER:
                warnings.append(_msg("revoked_later",
                                     f"chứng thư {st.certificate} bị thu hồi sau thời điểm ký "
                                     f"({fmt_time(st.revoked_at)}); chữ ký vẫn có giá trị",
                                     f"certificate {st.certificate} was revoked after signing "
                                     f"({fmt_time(st.revoked_at, 'en')}); the signature stands"))
        unknown = [s for s in statuses if s.state == RevocationState.UNKNOWN]
        if unknown and not any(f.indication == Indication.TOTAL_FAILED for f in fails):
            u = unknown[0]
            fails.append(_Fail(SubIndication.TRY_LATER, "revocation_unchecked",
                               f"chưa kiểm tra được tình trạng thu hồi của chứng thư {u.certificate}: {u.detail_vi}",
                               f"the revocation status of {u.certificate} could not be checked: {u.detail_en}"))
        return fails

    def _long_term(self, item: _Item, path: PathResult | None, revocation: list[RevocationStatus],
                   usable: list[_Token], indication: Indication) -> LongTermStatus:
        if item.structural is not None or item.crypto_fail is not None or path is None:
            return LongTermStatus("", False, None)
        level = "B-B"
        if usable or self._poe_from_doc_timestamps(item) < self.V:
            level = "B-T"
        embedded = bool(revocation) and all(
            s.state in (RevocationState.NOT_REQUIRED,) or s.source.startswith("embedded") for s in revocation
        ) and all(s.state != RevocationState.UNKNOWN for s in revocation)
        ts_embedded = all(
            s.state == RevocationState.NOT_REQUIRED or s.source.startswith("embedded")
            for t in usable for s in t.revocation
        )
        if level == "B-T" and embedded and ts_embedded:
            level = "B-LT"
        later_doc_ts = [
            o for o in self.items
            if o.kind == "document_timestamp" and o.revision > item.revision and o.doc_token is not None
            and o.doc_token.usable
        ]
        if level == "B-LT" and later_doc_ts:
            level = "B-LTA"
        # how long can it still be validated: the newest proof's certificate bounds it
        until: datetime | None = None
        if later_doc_ts:
            newest = max(later_doc_ts, key=lambda o: o.revision).doc_token
            assert newest is not None and newest.path is not None
            until = min(c.not_after for c in newest.path.certs[:-1]) if len(newest.path.certs) > 1 else None
        elif usable and usable[0].path is not None and len(usable[0].path.certs) > 1:
            until = min(c.not_after for c in usable[0].path.certs[:-1])
        elif path.trusted and len(path.certs) > 1:
            until = min(c.not_after for c in path.certs[:-1])
        self_contained = embedded and (not usable or ts_embedded)
        return LongTermStatus(level, self_contained, until)


# --------------------------------------------------------------------------------------------- checks
def _dedupe(messages: list[Message]) -> list[Message]:
    seen: set[tuple[str, str]] = set()
    out = []
    for m in messages:
        if (m.code, m.en) in seen:
            continue
        seen.add((m.code, m.en))
        out.append(m)
    return out


def _chain_check(path: PathResult | None) -> Check:
    if path is None:
        return Check(CheckStatus.NOT_CHECKED, "chưa kiểm tra", "not checked")
    if path.trusted:
        anchor = path.anchor
        name = anchor.common_name if anchor is not None else ""
        return Check(CheckStatus.PASSED, f"chuỗi chứng thư hợp lệ tới {name}", f"valid chain to {name}")
    return Check(CheckStatus.FAILED, path.vi, path.en)


def _validity_check(tok: _Token | None, indication: Indication) -> Check:
    if tok is None or tok.tsa is None:
        return Check(CheckStatus.NOT_CHECKED, "chưa kiểm tra", "not checked")
    if tok.fail is not None or tok.path is None:
        return Check(CheckStatus.NOT_CHECKED, "chưa kiểm tra", "not checked")
    if tok.sub in (SubIndication.EXPIRED, SubIndication.NOT_YET_VALID, SubIndication.OUT_OF_BOUNDS_NO_POE):
        return Check(CheckStatus.FAILED, tok.reasons[-1].vi if tok.reasons else "", tok.reasons[-1].en
                     if tok.reasons else "")
    return Check(CheckStatus.PASSED, "chứng thư của đơn vị cấp dấu thời gian còn hiệu lực",
                 "time-stamping certificate valid")


def _revocation_check(statuses: Iterable[RevocationStatus]) -> Check:
    statuses = list(statuses)
    if not statuses:
        return Check(CheckStatus.NOT_CHECKED, "chưa kiểm tra", "not checked")
    if any(s.state == RevocationState.REVOKED for s in statuses):
        s = next(s for s in statuses if s.state == RevocationState.REVOKED)
        return Check(CheckStatus.FAILED, f"{s.certificate}: đã bị thu hồi lúc {fmt_time(s.revoked_at)}",
                     f"{s.certificate}: revoked at {fmt_time(s.revoked_at, 'en')}")
    if any(s.state == RevocationState.UNKNOWN for s in statuses):
        s = next(s for s in statuses if s.state == RevocationState.UNKNOWN)
        return Check(CheckStatus.WARNING, f"chưa kiểm tra được ({s.certificate}: {s.detail_vi})",
                     f"could not be checked ({s.certificate}: {s.detail_en})")
    sources = sorted({s.source for s in statuses if s.source})
    src_vi = {"embedded_ocsp": "OCSP kèm tài liệu", "embedded_crl": "CRL kèm tài liệu",
              "online_ocsp": "OCSP trực tuyến", "online_crl": "CRL trực tuyến"}
    vi = ", ".join(src_vi.get(s, s) for s in sources)
    return Check(CheckStatus.PASSED, f"không bị thu hồi tại thời điểm ký ({vi})",
                 f"not revoked at signing time ({', '.join(sources)})")


def _ts_check(reports: list[TimestampReport], usable: list[_Token]) -> Check:
    if not reports:
        return Check(CheckStatus.NOT_APPLICABLE, "không có dấu thời gian", "no time-stamp")
    if usable:
        t = min(u.gen_time for u in usable if u.gen_time)
        return Check(CheckStatus.PASSED, f"dấu thời gian hợp lệ: {fmt_time(t)}",
                     f"valid time-stamp: {fmt_time(t, 'en')}")
    r = reports[0]
    why = r.reasons[0] if r.reasons else None
    return Check(CheckStatus.WARNING, "dấu thời gian không dùng được" + (f": {why.vi}" if why else ""),
                 "time-stamp not usable" + (f": {why.en}" if why else ""))


def _mod_check(mod: Modifications | None) -> Check:
    if mod is None or mod.permitted is None:
        return Check(CheckStatus.NOT_CHECKED, "chưa kiểm tra", "not checked")
    return Check(CheckStatus.PASSED if mod.permitted else CheckStatus.FAILED, mod.detail_vi, mod.detail_en)

