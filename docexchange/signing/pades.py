"""Signing official PDFs as NĐ 30/2020 requires: PAdES baseline B-B … B-LTA on pyHanko.

The jobs (who signs, what the stamp shows):

- :class:`PersonSigner` — the competent official signs first; their blue signature image sits in the signature
  block (an empty field of our letter template, a named empty field, or a box given by page and coordinates);
- :class:`SealSigner` — the organisation signs after the person: the red seal at real size over the left third of
  the person's signature image; with ``appendix=AppendixMark(...)`` it signs an attached file instead (text at the
  top right of page 1), with ``copy=CopyMark(...)`` an electronic copy ("SAO Y", "SAO LỤC", "TRÍCH SAO").

The levels: B-B (CMS signature), B-T (+ RFC 3161 signature time stamp from the configured TSA), B-LT (+ the
certificates, OCSP responses and CRLs in the document security store, written in the same revision as the
signature so the signature covers them), B-LTA (+ a document time stamp over everything). Default: B-LT.

Entry points: :func:`sign_pdf` / :func:`async_sign_pdf` for one document, and :class:`SigningService` for a
long-lived process (a worker of the exchange or the web UI) that signs many: keys stay loaded, the signer's
certificate check and the TSA's are reused for ``precheck_cache_seconds``, images are decoded once per signer,
HTTP connections are kept, and the signature size is reserved from the signer's profile instead of being
estimated with a dry-run signature.
"""

from __future__ import annotations

import asyncio
import contextlib
import enum
import io
import logging
import threading
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any, cast

import aiohttp
from pyhanko.pdf_utils import generic, misc
from pyhanko.pdf_utils.generic import pdf_name
from pyhanko.pdf_utils.incremental_writer import IncrementalPdfFileWriter
from pyhanko.pdf_utils.reader import PdfFileReader
from pyhanko.sign.fields import MDPPerm, SigFieldSpec, SigSeedSubFilter, enumerate_sig_fields
from pyhanko.sign.general import SigningError as PyHankoSigningError
from pyhanko.sign.signers.pdf_cms import PdfCMSSignedAttributes
from pyhanko.sign.signers.pdf_signer import PdfSignatureMetadata, PdfSigner, PdfTimeStamper
from pyhanko.sign.timestamps.common_utils import TimestampRequestError
from pyhanko.sign.validation import read_certification_data
from pyhanko.sign.validation.dss import DocumentSecurityStore
from pyhanko.stamp import BaseStampStyle
from pyhanko_certvalidator.fetchers.aiohttp_fetchers import AIOHttpFetcherBackend

from docexchange.clock import Clock, SystemClock, iso_vn
from docexchange.config import PadesLevel, Settings
from docexchange.errors import (
    DocExchangeError,
    DocumentLocked,
    InvalidPdf,
    SignaturePlacementError,
    SigningError,
    TimestampUnavailable,
)
from docexchange.fonts import find_font
from docexchange.signing.appearance import (
    MM,
    ImageStampStyle,
    Rect,
    StampImage,
    fit_rect,
    seal_rect,
    text_block_size,
    text_stamp_style,
    top_right_rect,
)
from docexchange.signing.keys import SigningKey, check_digest, wrap_pkcs11_sign_error
from docexchange.signing.letter import PERSON_FIELD
from docexchange.signing.precheck import CertificateChecker, CertificateStatus, TrustConfig
from docexchange.signing.tsa import CheckedTimeStamper, TsaCertificateChanged

__all__ = [
    "AppendixMark",
    "CopyKind",
    "CopyMark",
    "PadesLevel",
    "PersonSigner",
    "Placement",
    "SealSigner",
    "SigningService",
    "async_sign_pdf",
    "sign_pdf",
]

log = logging.getLogger(__name__)

SEAL_FIELD = "nd30_seal"
APPENDIX_FIELD = "nd30_appendix"
COPY_FIELD = "nd30_copy"
_ORG_PREFIXES = (SEAL_FIELD, APPENDIX_FIELD, COPY_FIELD)

_LEVEL_ORDER = {PadesLevel.B_B: 0, PadesLevel.B_T: 1, PadesLevel.B_LT: 2, PadesLevel.B_LTA: 3}


# -- what to sign with, and how it looks ------------------------------------------------------------------------
@dataclass(frozen=True)
class Placement:
    """Where the person's signature goes: a named field, or a box on a page; nothing = found automatically
    (the empty field of our letter template, or the document's only empty signature field)."""

    field: str | None = None
    page: int | None = None
    """1-based page number (with ``box``)."""
    box: Rect | None = None
    """``(x1, y1, x2, y2)`` in PDF points from the bottom-left corner; the image is fitted and centred in it."""


class CopyKind(str, enum.Enum):
    """Forms of electronic copy (NĐ 30, Điều 25)."""

    SAO_Y = "SAO Y"
    SAO_LUC = "SAO LỤC"
    TRICH_SAO = "TRÍCH SAO"

    @classmethod
    def parse(cls, text: str) -> CopyKind:
        norm = " ".join(text.strip().upper().split())
        for kind in cls:
            if norm == kind.value or norm == _ascii_fold(kind.value):
                return kind
        raise SigningError(
            f"Hình thức sao '{text}' không hợp lệ (SAO Y, SAO LỤC, TRÍCH SAO)",
            f"invalid copy form '{text}' (SAO Y, SAO LỤC, TRÍCH SAO)",
        )


def _ascii_fold(text: str) -> str:
    from docexchange.directory import fold

    return fold(text).upper()


@dataclass(frozen=True)
class AppendixMark:
    """The organisation's signature on an appendix/attachment file: its number and notation (``05/QĐ-UBND``)."""

    notation: str


@dataclass(frozen=True)
class CopyMark:
    """The organisation's signature on an electronic copy."""

    kind: CopyKind
    organisation: str = ""
    """The copying organisation; empty: the seal holder's agency name."""
    notation: str = ""
    """Number and notation of the copy (``12/SY-UBND``), optional."""


class PersonSigner:
    """A competent official: their signing key and their blue handwritten-signature image."""

    def __init__(self, key: SigningKey, signature_image: bytes | Path | StampImage, *, full_name: str = "",
                 official_id: str = "", location: str = "") -> None:
        self.key = key
        self.image = _stamp_image(signature_image, "chữ ký")
        self.full_name = full_name or key.subject_name
        self.official_id = official_id
        self.location = location

    @classmethod
    def for_official(cls, settings: Settings, official_id: str, *, passphrase: str | None = None) -> PersonSigner:
        """The official's PKCS#12 key and signature image from the dev PKI layout in ``keys/``."""
        from docexchange.directory import load_directory
        from docexchange.pki.devpki import DevPki

        pki = DevPki.from_settings(settings)
        directory = load_directory(settings.directory_file)
        agency, official = directory.find_official(official_id)
        key = SigningKey.from_pkcs12(
            pki.person_p12(official_id), passphrase if passphrase is not None else pki.passphrase,
            rsa_pss=settings.signing.rsa_pss,
        )
        return cls(key, pki.signature_image(official_id), full_name=official.full_name, official_id=official_id,
                   location=agency.place)

    def close(self) -> None:
        self.key.close()


class SealSigner:
    """An organisation's seal: its signing key (held by the clerk) and the red seal image."""

    def __init__(self, key: SigningKey, seal_image: bytes | Path | StampImage, *, agency_name: str = "",
                 agency_code: str = "", location: str = "", seal_diameter_mm: float | None = None) -> None:
        self.key = key
        self.image = _stamp_image(seal_image, "con dấu")
        self.agency_name = agency_name or key.subject_name
        self.agency_code = agency_code
        self.location = location
        natural = self.image.natural_size[0]
        self.diameter = seal_diameter_mm * MM if seal_diameter_mm else natural
        """Seal width on the page in points: real size (from the image's resolution) unless given."""

    @classmethod
    def for_agency(cls, settings: Settings, code: str, *, passphrase: str | None = None) -> SealSigner:
        """The agency's seal key and image from the dev PKI layout in ``keys/``."""
        from docexchange.directory import load_directory
        from docexchange.pki.devpki import DevPki

        pki = DevPki.from_settings(settings)
        directory = load_directory(settings.directory_file)
        agency = directory.agency(code)
        key = SigningKey.from_pkcs12(
            pki.keys_dir / "agencies" / agency.code / "seal.p12",
            passphrase if passphrase is not None else pki.passphrase,
            rsa_pss=settings.signing.rsa_pss,
        )
        return cls(key, pki.seal_image(agency.code), agency_name=agency.name, agency_code=agency.code,
                   location=agency.place)

    def close(self) -> None:
        self.key.close()


Signer = PersonSigner | SealSigner


def _stamp_image(source: bytes | Path | StampImage, what: str) -> StampImage:
    if isinstance(source, StampImage):
        return source
    if isinstance(source, Path):
        return StampImage.from_file(source, what=what)
    return StampImage.from_png(source, what=what)


# -- one signature: the pieces decided before pyHanko runs -------------------------------------------------------
@dataclass
class _Plan:
    field_name: str
    existing: bool
    new_spec: SigFieldSpec | None
    style: BaseStampStyle
    reason: str
    name: str
    location: str
    widget_update: tuple[generic.DictionaryObject, generic.Reference, Rect] | None = None


@dataclass
class _TimestampInfo:
    status: CertificateStatus
    token_size: int


# -- PDF inspection ----------------------------------------------------------------------------------------------
@dataclass
class _Doc:
    """An input PDF opened for signing: the incremental writer and its pages (walked once, checked)."""

    writer: IncrementalPdfFileWriter
    pages: list[generic.Reference]


def _open_pdf(data: bytes, max_bytes: int) -> _Doc:
    if len(data) > max_bytes:
        raise InvalidPdf(
            f"Tệp PDF quá lớn ({len(data) // (1024 * 1024)} MB, tối đa {max_bytes // (1024 * 1024)} MB)",
            f"the PDF is too large ({len(data)} bytes, at most {max_bytes})",
        )
    if b"%PDF-" not in data[:1024]:
        raise InvalidPdf("Tệp không phải PDF (thiếu phần đầu %PDF-)", "not a PDF file (no %PDF- header)")
    try:
        writer = IncrementalPdfFileWriter(io.BytesIO(data), strict=True)
        reader = writer.prev
        if reader.encrypted:
            raise InvalidPdf(
                "PDF được mã hóa: văn bản điện tử gửi đi không được mã hóa, hãy gỡ mật khẩu trước khi ký",
                "the PDF is encrypted: remove the encryption before signing",
            )
        certification = read_certification_data(reader)
        if certification is not None and certification.permission == MDPPerm.NO_CHANGES:
            raise DocumentLocked(
                "PDF đã được chứng thực (certify) với quyền 'không cho phép thay đổi': không thể ký thêm",
                "the PDF is certified with 'no changes allowed': no further signature can be added",
            )
        if reader.xrefs.hybrid_xrefs_present:
            raise InvalidPdf(
                "PDF dùng bảng tham chiếu lai (hybrid xref) không an toàn để ký",
                "the PDF uses hybrid cross-reference sections, which are unsafe to sign",
            )
        pages = _page_refs(reader)
        if not pages:
            raise InvalidPdf("PDF không có trang nào", "the PDF has no pages")
    except DocExchangeError:
        raise
    except (misc.PdfError, PyHankoSigningError, ValueError, KeyError, TypeError, IndexError, AttributeError,
            RecursionError) as exc:
        raise InvalidPdf(f"Tệp PDF bị hỏng hoặc sai cấu trúc ({exc})", f"malformed PDF ({exc})") from exc
    return _Doc(writer, pages)


def _page_refs(reader: PdfFileReader) -> list[generic.Reference]:
    """References of the page objects in order (cycle-safe walk of the page tree)."""
    out: list[generic.Reference] = []
    seen: set[tuple[int, int]] = set()
    root_ref = reader.root.raw_get("/Pages")
    stack: list[Any] = [root_ref]
    while stack:
        node_ref = stack.pop()
        if not isinstance(node_ref, generic.IndirectObject):
            raise InvalidPdf("Cây trang của PDF sai cấu trúc", "malformed page tree")
        key = (node_ref.idnum, node_ref.generation)
        if key in seen:
            raise InvalidPdf("Cây trang của PDF có vòng lặp", "the PDF page tree has a cycle")
        seen.add(key)
        node = node_ref.get_object()
        if node.get("/Type") == "/Page" or "/Kids" not in node:
            out.append(node_ref.reference)
            continue
        kids = node["/Kids"]
        stack.extend(reversed([kids.raw_get(i) for i in range(len(kids))]))
        if len(out) + len(stack) > 100_000:
            raise InvalidPdf("PDF có quá nhiều trang", "too many pages")
    return out


def _inherited(page: generic.DictionaryObject, key: str) -> Any:
    node: Any = page
    for _ in range(64):
        if key in node:
            return node[key]
        if "/Parent" not in node:
            return None
        node = node["/Parent"]
    return None


def _page_box(page: generic.DictionaryObject) -> Rect:
    box = _inherited(page, "/CropBox") or _inherited(page, "/MediaBox")
    if box is None or len(box) != 4:
        return (0.0, 0.0, 595.28, 841.89)
    x1, y1, x2, y2 = (float(v) for v in box)
    return min(x1, x2), min(y1, y2), max(x1, x2), max(y1, y2)


def _dict(ref: generic.Reference) -> generic.DictionaryObject:
    obj = ref.get_object()
    if not isinstance(obj, generic.DictionaryObject):
        raise InvalidPdf("Trang PDF sai cấu trúc", "malformed page object")
    return obj


def _box(rect: Rect) -> tuple[int, int, int, int]:
    """pyHanko annotates boxes as ints but writes floats: keep the precision, satisfy the type checker."""
    return cast(tuple[int, int, int, int], tuple(round(v, 3) for v in rect))


def _rect_of(annot: generic.DictionaryObject) -> Rect:
    x1, y1, x2, y2 = (float(v) for v in annot["/Rect"])
    return min(x1, x2), min(y1, y2), max(x1, x2), max(y1, y2)


def _widget(field_obj: generic.DictionaryObject) -> tuple[generic.DictionaryObject, generic.Reference | None]:
    """The single widget of a signature field (the field itself when merged with its widget)."""
    if "/Kids" in field_obj:
        kids = field_obj["/Kids"]
        if len(kids) != 1:
            raise SignaturePlacementError(
                "Ô chữ ký có nhiều vùng hiển thị", "the signature field has several widgets"
            )
        ref = kids.raw_get(0)
        return ref.get_object(), ref.reference if isinstance(ref, generic.IndirectObject) else None
    return field_obj, None


def _page_index_of(widget: generic.DictionaryObject, widget_ref: generic.Reference | None,
                   pages: list[generic.Reference]) -> int:
    p = widget.raw_get("/P") if "/P" in widget else None
    if isinstance(p, generic.IndirectObject) and p.reference in pages:
        return pages.index(p.reference)
    if widget_ref is not None:
        for i, pref in enumerate(pages):
            annots = _dict(pref).get("/Annots")
            if annots is None:
                continue
            for j in range(len(annots)):
                a = annots.raw_get(j)
                if isinstance(a, generic.IndirectObject) and a.reference == widget_ref:
                    return i
    return 0


def _field_names(writer: IncrementalPdfFileWriter) -> set[str]:
    return {name for name, _value, _ref in enumerate_sig_fields(writer)}


def _unique_name(writer: IncrementalPdfFileWriter, base: str) -> str:
    names = _field_names(writer)
    if base not in names:
        return base
    n = 2
    while f"{base}_{n}" in names:
        n += 1
    return f"{base}_{n}"


# -- the service -------------------------------------------------------------------------------------------------
class SigningService:
    """Signs PDFs for a process that lives long (keys loaded once, checks and connections reused).

    Not thread-safe: use one per worker thread or process. Use either the synchronous API (:meth:`sign`, which
    runs on the service's own event loop) or the asynchronous one (:meth:`async_sign`, on one caller's loop),
    and :meth:`close` / :meth:`aclose` at the end.
    """

    def __init__(self, settings: Settings, *, clock: Clock | None = None, trust: TrustConfig | None = None) -> None:
        self.settings = settings
        self.clock: Clock = clock or SystemClock()
        self.trust = trust or TrustConfig.from_settings(settings)
        self.checker = CertificateChecker(self.trust, cache_seconds=settings.signing.precheck_cache_seconds)
        self.digest = check_digest(settings.signing.digest)
        self.font = find_font("serif", configured=settings.signing.font)
        self.tsa_url = settings.signing.tsa_url or f"{settings.pki.base_url}/tsa"
        self._signers: dict[tuple[str, str], PersonSigner | SealSigner] = {}
        self._http: aiohttp.ClientSession | None = None
        self._http_loop: asyncio.AbstractEventLoop | None = None
        self._timestamper: CheckedTimeStamper | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._lock = threading.Lock()
        self.max_bytes = settings.signing.max_pdf_mb * 1024 * 1024

    # -- identities kept loaded --------------------------------------------------------------------------------
    def person(self, official_id: str, *, passphrase: str | None = None) -> PersonSigner:
        """The official's signer from ``keys/`` (loaded on first use, then kept)."""
        key = ("person", official_id)
        if key not in self._signers:
            self._signers[key] = PersonSigner.for_official(self.settings, official_id, passphrase=passphrase)
        signer = self._signers[key]
        assert isinstance(signer, PersonSigner)
        return signer

    def seal(self, agency_code: str, *, passphrase: str | None = None) -> SealSigner:
        """The agency's seal signer from ``keys/`` (loaded on first use, then kept)."""
        key = ("seal", agency_code)
        if key not in self._signers:
            self._signers[key] = SealSigner.for_agency(self.settings, agency_code, passphrase=passphrase)
        signer = self._signers[key]
        assert isinstance(signer, SealSigner)
        return signer

    # -- lifecycle ---------------------------------------------------------------------------------------------
    async def _session(self) -> aiohttp.ClientSession:
        loop = asyncio.get_running_loop()
        if self._http is None or self._http.closed or self._http_loop is not loop:
            if self._http is not None and self._http_loop is not loop:
                log.warning("signing service used from a second event loop: opening new HTTP connections")
            self._http = aiohttp.ClientSession(
                timeout=aiohttp.ClientTimeout(total=15), headers={"User-Agent": "docexchange-signing"}
            )
            self._http_loop = loop
            self._timestamper = None
        return self._http

    async def aclose(self) -> None:
        if self._http is not None and self._http_loop is asyncio.get_running_loop():
            await self._http.close()
        self._http = None
        for signer in self._signers.values():
            signer.close()
        self._signers.clear()

    def close(self) -> None:
        if self._loop is not None:
            with contextlib.suppress(Exception):
                self._loop.run_until_complete(self.aclose())
            with contextlib.suppress(Exception):
                self._loop.run_until_complete(self._loop.shutdown_asyncgens())
            self._loop.close()
            self._loop = None
        else:
            for signer in self._signers.values():
                signer.close()
            self._signers.clear()

    def __enter__(self) -> SigningService:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    async def __aenter__(self) -> SigningService:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    # -- signing -------------------------------------------------------------------------------------------------
    def sign(self, data: bytes, signer: Signer, *, level: PadesLevel | str | None = None,
             placement: Placement | None = None, appendix: AppendixMark | None = None,
             copy: CopyMark | None = None) -> bytes:
        """Synchronous :meth:`async_sign` (on the service's own event loop; not from inside a running loop)."""
        with self._lock:
            # A private loop kept for the service's life (asyncio.Runner would re-install its SIGINT handler and
            # format the previous task, result included, on every call).
            if self._loop is None:
                self._loop = asyncio.new_event_loop()
            return self._loop.run_until_complete(
                self.async_sign(data, signer, level=level, placement=placement, appendix=appendix, copy=copy)
            )

    async def async_sign(self, data: bytes, signer: Signer, *, level: PadesLevel | str | None = None,
                         placement: Placement | None = None, appendix: AppendixMark | None = None,
                         copy: CopyMark | None = None) -> bytes:
        """Sign ``data`` (PDF bytes) and return the signed PDF bytes; the input is never modified."""
        try:
            return await self._async_sign(data, signer, level, placement, appendix, copy)
        except TsaCertificateChanged:
            # the TSA rolled its key over since we validated it: validate the new one, once
            self._timestamper = None
            return await self._async_sign(data, signer, level, placement, appendix, copy)

    async def _async_sign(self, data: bytes, signer: Signer, level: PadesLevel | str | None,
                          placement: Placement | None, appendix: AppendixMark | None,
                          copy: CopyMark | None) -> bytes:
        lvl = PadesLevel(level) if level is not None else self.settings.signing.level
        _check_job(signer, placement, appendix, copy)
        if not isinstance(data, (bytes, bytearray, memoryview)):
            raise TypeError("data must be the PDF bytes")
        data = bytes(data)
        now = self.clock.now()
        doc: _Doc | None = _open_pdf(data, self.max_bytes)  # bad input: refuse before any I/O
        session = await self._session()
        backend = AIOHttpFetcherBackend(session, per_request_timeout=10)
        status = await self.checker.check(signer.key.cert, signer.key.chain, moment=now, fetcher_backend=backend)
        ts_info: _TimestampInfo | None = None
        timestamper: CheckedTimeStamper | None = None
        if _LEVEL_ORDER[lvl] >= _LEVEL_ORDER[PadesLevel.B_T]:
            timestamper = self._get_timestamper(session)
            ts_info = await self._tsa_status(timestamper, now, backend)
        reserve = _reserve_for(signer.key, ts_info)
        for _attempt in range(4):
            try:
                return await self._sign_once(doc or _open_pdf(data, self.max_bytes), signer, lvl, now, status,
                                             timestamper, ts_info, reserve, placement or Placement(), appendix, copy)
            except _ReserveTooSmall as exc:
                log.info("signature container larger than reserved (%d): retrying with %d", reserve, exc.needed)
                reserve = max(reserve * 2, exc.needed + 4096)
                doc = None  # that writer holds the failed attempt: start again from the input
        raise SigningError("Không dành đủ chỗ cho chữ ký", "could not reserve enough room for the signature")

    async def _tsa_status(self, timestamper: CheckedTimeStamper, now: datetime,
                          backend: AIOHttpFetcherBackend) -> _TimestampInfo:
        try:
            dummy = await timestamper.async_dummy_response(self.digest)
        except (TimeoutError, TimestampRequestError, aiohttp.ClientError, OSError) as exc:
            raise TimestampUnavailable(
                f"Dịch vụ cấp dấu thời gian {self.tsa_url} không trả lời: {exc}",
                f"the time-stamping service {self.tsa_url} is unavailable: {exc}",
            ) from exc
        tsa_cert, chain = timestamper.tsa_certificates(dummy)
        status = await self.checker.check(tsa_cert, chain, moment=now, fetcher_backend=backend,
                                          purpose="time_stamping")
        timestamper.expect_signer(tsa_cert)
        return _TimestampInfo(status, len(dummy.dump()))

    def _get_timestamper(self, session: aiohttp.ClientSession) -> CheckedTimeStamper:
        if self._timestamper is None:
            self._timestamper = CheckedTimeStamper(self.tsa_url, session=session, timeout=10)
        return self._timestamper

    async def _sign_once(
        self, doc: _Doc, signer: Signer, level: PadesLevel, now: datetime,
        status: CertificateStatus, timestamper: CheckedTimeStamper | None, ts_info: _TimestampInfo | None, reserve: int,
        placement: Placement, appendix: AppendixMark | None, copy: CopyMark | None,
    ) -> bytes:
        writer = doc.writer
        plan = self._plan(writer, doc.pages, signer, now, placement, appendix, copy)
        try:
            if plan.widget_update is not None:
                annot, ref, rect = plan.widget_update
                annot[pdf_name("/Rect")] = generic.ArrayObject(generic.FloatObject(round(v, 3)) for v in rect)
                writer.mark_update(ref)
            if _LEVEL_ORDER[level] >= _LEVEL_ORDER[PadesLevel.B_LT]:
                assert ts_info is not None
                DocumentSecurityStore.supply_dss_in_writer(
                    writer, None,
                    paths=[status.path, ts_info.status.path],
                    ocsps=[*status.ocsps, *ts_info.status.ocsps],
                    crls=[*status.crls, *ts_info.status.crls],
                )
            meta = PdfSignatureMetadata(
                field_name=plan.field_name,
                md_algorithm=self.digest,
                subfilter=SigSeedSubFilter.PADES,
                reason=plan.reason,
                location=plan.location or None,
                name=plan.name or None,
            )
            pdf_signer = PdfSigner(meta, signer.key.signer, timestamper=timestamper, stamp_style=plan.style,
                                   new_field_spec=plan.new_spec)
            session = pdf_signer.init_signing_session(writer, existing_fields_only=plan.existing)
            session.system_time = now
            tbs = session.prepare_tbs_document(validation_info=None, bytes_reserved=reserve)
            # in place: the writer reads a private BytesIO copy of the input, so appending to it copies nothing
            prepared, output = tbs.digest_tbs_document(in_place=True)
            try:
                await tbs.perform_signature(
                    document_digest=prepared.document_digest,
                    pdf_cms_signed_attrs=PdfCMSSignedAttributes(signing_time=now),
                )
            except PyHankoSigningError as exc:
                if "larger than expected" in str(exc):
                    raise _ReserveTooSmall(_needed(exc)) from exc
                raise
            if level == PadesLevel.B_LTA:
                assert timestamper is not None and ts_info is not None
                ts_writer = IncrementalPdfFileWriter(output, strict=True)
                doc_ts = PdfTimeStamper(timestamper, field_name=_unique_name(ts_writer, "nd30_doc_timestamp"))
                await doc_ts.async_timestamp_pdf(
                    ts_writer, self.digest, bytes_reserved=_round_even(2 * (ts_info.token_size + 2048)),
                    in_place=True,
                )
            assert isinstance(output, io.BytesIO)
            return output.getvalue()
        except (_ReserveTooSmall, DocExchangeError):
            raise
        except (TimeoutError, TimestampRequestError, aiohttp.ClientError) as exc:
            raise TimestampUnavailable(
                f"Không lấy được dấu thời gian từ {self.tsa_url}: {exc}",
                f"could not obtain a time stamp from {self.tsa_url}: {exc}",
            ) from exc
        except PyHankoSigningError as exc:
            raise SigningError(f"Không ký được văn bản: {exc}", f"signing failed: {exc}") from exc
        except misc.PdfError as exc:
            raise InvalidPdf(f"Tệp PDF sai cấu trúc ({exc})", f"malformed PDF ({exc})") from exc
        except Exception as exc:
            if signer.key.on_token and type(exc).__module__.startswith("pkcs11"):
                raise wrap_pkcs11_sign_error(exc, signer.key.source) from exc
            raise

    # -- where the signature goes and how it looks --------------------------------------------------------------
    def _plan(self, writer: IncrementalPdfFileWriter, pages: list[generic.Reference], signer: Signer,
              now: datetime, placement: Placement,
              appendix: AppendixMark | None, copy: CopyMark | None) -> _Plan:
        if isinstance(signer, PersonSigner):
            return self._plan_person(writer, signer, placement, pages)
        if appendix is not None or copy is not None:
            return self._plan_text(writer, signer, now, pages, appendix, copy)
        return self._plan_seal(writer, signer, pages)

    def _plan_person(self, writer: IncrementalPdfFileWriter, signer: PersonSigner, placement: Placement,
                     pages: list[generic.Reference]) -> _Plan:
        common = {"style": ImageStampStyle(image=signer.image), "reason": "Ký số của người có thẩm quyền",
                  "name": signer.full_name, "location": signer.location}
        if placement.box is not None:
            page_no = placement.page or 1
            if not 1 <= page_no <= len(pages):
                raise SignaturePlacementError(
                    f"Trang {page_no} không tồn tại (văn bản có {len(pages)} trang)",
                    f"page {page_no} does not exist (the document has {len(pages)} pages)",
                )
            page_box = _page_box(_dict(pages[page_no - 1]))
            _check_inside(placement.box, page_box, page_no)
            rect = fit_rect(placement.box, signer.image.aspect)
            name = placement.field or _unique_name(writer, PERSON_FIELD)
            if name in _field_names(writer):
                raise SignaturePlacementError(
                    f"Ô chữ ký '{name}' đã có trong văn bản: bỏ --box để ký vào ô đó",
                    f"a signature field '{name}' already exists: omit the box to sign into it",
                )
            spec = SigFieldSpec(name, on_page=page_no - 1, box=_box(rect))
            return _Plan(name, False, spec, **common)  # type: ignore[arg-type]
        empty = {name: ref for name, _v, ref in enumerate_sig_fields(writer, filled_status=False)}
        if placement.field is not None:
            if placement.field not in empty:
                filled = placement.field in _field_names(writer)
                raise SignaturePlacementError(
                    f"Ô chữ ký '{placement.field}' " + ("đã được ký" if filled else "không có trong văn bản")
                    + (f" (các ô trống: {', '.join(sorted(empty))})" if empty else ""),
                    f"signature field '{placement.field}' " + ("is already signed" if filled else "does not exist")
                    + (f" (empty fields: {', '.join(sorted(empty))})" if empty else ""),
                )
            name = placement.field
        elif PERSON_FIELD in empty:
            name = PERSON_FIELD
        elif len(empty) == 1:
            name = next(iter(empty))
        else:
            raise SignaturePlacementError(
                "Không xác định được vị trí ký: văn bản không có ô chữ ký trống của mẫu; chỉ rõ --field hoặc "
                "--page và --box" + (f" (các ô trống: {', '.join(sorted(empty))})" if empty else ""),
                "cannot tell where to sign: no empty template signature field; give --field or --page and --box"
                + (f" (empty fields: {', '.join(sorted(empty))})" if empty else ""),
            )
        field_obj = empty[name].get_object()
        widget, widget_ref = _widget(field_obj)
        if "/Rect" not in widget:
            raise SignaturePlacementError(f"Ô chữ ký '{name}' không có vị trí", f"signature field '{name}' has no Rect")
        rect = _rect_of(widget)
        if rect[2] - rect[0] < 1 or rect[3] - rect[1] < 1:
            raise SignaturePlacementError(
                f"Ô chữ ký '{name}' là ô ẩn, không hiện được hình chữ ký",
                f"signature field '{name}' is invisible: the signature image cannot be shown",
            )
        fitted = fit_rect(rect, signer.image.aspect)
        update = (widget, widget_ref or empty[name].reference, fitted)
        return _Plan(name, True, None, widget_update=update, **common)  # type: ignore[arg-type]

    def _plan_seal(self, writer: IncrementalPdfFileWriter, signer: SealSigner,
                   pages: list[generic.Reference]) -> _Plan:
        found = _last_person_signature(writer, pages)
        if found is None:
            raise SignaturePlacementError(
                "Chưa có chữ ký của người có thẩm quyền: văn thư chỉ ký số của cơ quan sau khi người có thẩm quyền "
                "đã ký (hoặc dùng --appendix / --copy cho văn bản kèm theo, bản sao)",
                "no signature of the competent person yet: the organisation signs after the person "
                "(or use --appendix / --copy for attachments and copies)",
            )
        page_ix, person_rect = found
        rect = seal_rect(person_rect, signer.diameter, _page_box(_dict(pages[page_ix])))
        name = _unique_name(writer, SEAL_FIELD)
        spec = SigFieldSpec(name, on_page=page_ix, box=_box(rect))
        return _Plan(name, False, spec, ImageStampStyle(image=signer.image), "Ký số của cơ quan, tổ chức",
                     signer.agency_name, signer.location)

    def _plan_text(self, writer: IncrementalPdfFileWriter, signer: SealSigner, now: datetime,
                   pages: list[generic.Reference], appendix: AppendixMark | None, copy: CopyMark | None) -> _Plan:
        when = iso_vn(now)
        if appendix is not None:
            notation = appendix.notation.strip()
            if not notation:
                raise SigningError("Thiếu số, ký hiệu văn bản", "the number/notation is empty")
            lines = [notation if notation.lower().startswith("số") else f"Số: {notation}", when]
            base, reason = APPENDIX_FIELD, f"Ký số văn bản kèm theo văn bản số {notation}"
        else:
            assert copy is not None
            org = copy.organisation.strip() or signer.agency_name
            lines = [copy.kind.value, org]
            if copy.notation.strip():
                lines.append(f"Số: {copy.notation.strip()}")
            lines.append(when)
            base, reason = COPY_FIELD, f"{copy.kind.value} — bản sao điện tử"
        size = text_block_size(lines, self.font)
        page_box = _page_box(_dict(pages[0]))
        if size[0] > (page_box[2] - page_box[0]) * 0.9:
            raise SigningError("Nội dung dấu quá dài so với trang", "the stamp text is too long for the page")
        rect = top_right_rect(page_box, size)
        name = _unique_name(writer, base)
        return _Plan(name, False, SigFieldSpec(name, on_page=0, box=_box(rect)), text_stamp_style(lines, self.font),
                     reason, signer.agency_name, signer.location)


def _check_inside(box: Rect, page: Rect, page_no: int) -> None:
    x1, y1, x2, y2 = box
    if not (x2 > x1 and y2 > y1):
        raise SignaturePlacementError(
            "Ô chữ ký phải có x1 < x2 và y1 < y2", "the signature box needs x1 < x2 and y1 < y2"
        )
    px1, py1, px2, py2 = page
    tol = 0.5
    if x1 < px1 - tol or y1 < py1 - tol or x2 > px2 + tol or y2 > py2 + tol:
        raise SignaturePlacementError(
            f"Ô chữ ký ({x1:g}, {y1:g}, {x2:g}, {y2:g}) nằm ngoài trang {page_no} "
            f"({px1:g}, {py1:g}, {px2:g}, {py2:g})",
            f"the signature box ({x1:g}, {y1:g}, {x2:g}, {y2:g}) is off page {page_no} "
            f"({px1:g}, {py1:g}, {px2:g}, {py2:g})",
        )


def _last_person_signature(writer: IncrementalPdfFileWriter, pages: list[generic.Reference]) -> tuple[int, Rect] | None:
    """Page index and image box of the most recent visible signature that is not an organisation stamp."""
    candidates: list[tuple[int, int, Rect]] = []
    for name, value, field_ref in enumerate_sig_fields(writer, filled_status=True):
        if name and name.startswith(_ORG_PREFIXES):
            continue
        sig = value.get_object() if isinstance(value, generic.IndirectObject) else value
        if sig is None or sig.get("/Type") == "/DocTimeStamp":
            continue
        widget, widget_ref = _widget(field_ref.get_object())
        if "/Rect" not in widget:
            continue
        rect = _rect_of(widget)
        if rect[2] - rect[0] < 1 or rect[3] - rect[1] < 1:
            continue
        order = _byte_range_end(sig)
        candidates.append((order, _page_index_of(widget, widget_ref, pages), rect))
    if not candidates:
        return None
    _order, page_ix, rect = max(candidates, key=lambda c: c[0])
    return page_ix, rect


def _byte_range_end(sig: generic.DictionaryObject) -> int:
    try:
        br = sig["/ByteRange"]
        return int(br[2]) + int(br[3])
    except (KeyError, IndexError, TypeError, ValueError):
        return 0


def _check_job(signer: Signer, placement: Placement | None, appendix: AppendixMark | None,
               copy: CopyMark | None) -> None:
    if isinstance(signer, PersonSigner):
        if appendix is not None or copy is not None:
            raise SigningError(
                "Văn bản kèm theo và bản sao điện tử do cơ quan, tổ chức ký số (dùng con dấu), không phải cá nhân",
                "attachments and electronic copies are signed by the organisation (seal), not a person",
            )
        return
    if not isinstance(signer, SealSigner):
        raise TypeError("signer must be a PersonSigner or a SealSigner")
    if appendix is not None and copy is not None:
        raise SigningError("Chỉ chọn một: văn bản kèm theo hoặc bản sao", "choose either appendix or copy, not both")
    if placement is not None and (placement.box is not None or placement.field is not None):
        raise SigningError(
            "Vị trí chữ ký số của cơ quan do thể thức NĐ 30 quy định (không chọn ô/vị trí)",
            "the organisation's signature position is fixed by NĐ 30 (no field/box for seals)",
        )


class _ReserveTooSmall(Exception):
    def __init__(self, needed: int) -> None:
        super().__init__(needed)
        self.needed = needed


def _needed(exc: Exception) -> int:
    import re

    numbers = [int(n) for n in re.findall(r"\d+", str(exc))]
    return max(numbers) if numbers else 0


def _round_even(n: int) -> int:
    return n + (n % 2)


def _reserve_for(key: SigningKey, ts_info: _TimestampInfo | None) -> int:
    """Hex characters to reserve for the CMS container: the certificates, the signature, the structure and (at
    B-T and above) the time stamp token, from this signer's profile (no dry-run signature)."""
    certs = sum(len(c.dump()) for c in key.signer.cert_registry)
    public = key.cert.public_key()
    sig = (public.key_size + 7) // 8 if hasattr(public, "key_size") else 256
    der = certs + sig * 2 + 2048
    if ts_info is not None:
        der += ts_info.token_size + 1024
    return _round_even(2 * der)


# -- one-shot functions -------------------------------------------------------------------------------------------
def sign_pdf(data: bytes, signer: Signer, *, settings: Settings, level: PadesLevel | str | None = None,
             placement: Placement | None = None, appendix: AppendixMark | None = None,
             copy: CopyMark | None = None, clock: Clock | None = None) -> bytes:
    """Sign one PDF and return the signed bytes (do not call from inside a running event loop: use
    :func:`async_sign_pdf` there). For many documents keep a :class:`SigningService` instead."""
    service = SigningService(settings, clock=clock)
    try:
        return service.sign(data, signer, level=level, placement=placement, appendix=appendix, copy=copy)
    finally:
        service._signers.clear()  # the caller owns ``signer``: do not close its key
        service.close()


async def async_sign_pdf(data: bytes, signer: Signer, *, settings: Settings, level: PadesLevel | str | None = None,
                         placement: Placement | None = None, appendix: AppendixMark | None = None,
                         copy: CopyMark | None = None, clock: Clock | None = None) -> bytes:
    """Asynchronous :func:`sign_pdf` (the CPU-bound parts run on the calling loop: keep big batches off the
    event loop of a web server, in a worker process)."""
    service = SigningService(settings, clock=clock)
    try:
        return await service.async_sign(data, signer, level=level, placement=placement, appendix=appendix,
                                        copy=copy)
    finally:
        service._signers.clear()
        await service.aclose()

