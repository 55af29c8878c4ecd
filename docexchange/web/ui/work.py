"""CPU-bound work of the pages, off the event loop: sample letters, PDF inspection and signing run in one
long-lived worker process (keys and certificate checks loaded once, as the signing service is meant to be used);
previews are rendered by poppler's ``pdftoppm`` in a subprocess with a time limit.

Errors cross the process boundary as ``(code, vietnamese, english)`` and are raised again on this side as the
same class of :class:`~docexchange.errors.DocExchangeError`.
"""

from __future__ import annotations

import asyncio
import contextlib
import io
import logging
import multiprocessing
import shutil
from collections.abc import Callable, Mapping
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Any, TypeVar

from docexchange import errors
from docexchange.config import Settings
from docexchange.errors import DocExchangeError, InvalidPdf, SigningError

__all__ = ["PdfFacts", "PreviewError", "Worker", "render_page"]

log = logging.getLogger(__name__)

T = TypeVar("T")

_STATE: dict[str, Any] = {}

_ERROR_CLASSES: dict[str, type[DocExchangeError]] = {}
for _name in errors.__all__:
    _cls = getattr(errors, _name)
    if isinstance(_cls, type) and issubclass(_cls, DocExchangeError):
        _ERROR_CLASSES.setdefault(_cls.code, _cls)


@dataclass(frozen=True)
class PdfFacts:
    pages: int
    page_sizes: tuple[tuple[float, float], ...]
    empty_fields: tuple[tuple[str, int], ...]
    """(field name, 0-based page) of empty signature fields."""
    signed_fields: tuple[tuple[str, int], ...]
    """(field name, 0-based page) of filled signature fields, in document order."""

    @property
    def signature_page(self) -> int:
        """0-based page holding the signatures (or the empty field to sign), else the last page."""
        if self.signed_fields:
            return self.signed_fields[-1][1]
        if self.empty_fields:
            return self.empty_fields[0][1]
        return max(0, self.pages - 1)


# -- inside the worker process ----------------------------------------------------------------------------------
def _init(settings: Settings) -> None:
    _STATE["settings"] = settings


def _service() -> Any:
    svc = _STATE.get("service")
    if svc is None:
        from docexchange.signing import SigningService

        svc = _STATE["service"] = SigningService(_STATE["settings"])
    return svc


def _guard(fn: Callable[..., T], *args: Any) -> tuple[str, Any]:
    try:
        return "ok", fn(*args)
    except DocExchangeError as exc:
        return "error", (exc.code, exc.message_vi, exc.message_en)
    except Exception as exc:
        log.exception("web worker job failed")
        return "error", ("signing", "Lỗi không mong đợi khi xử lý văn bản", f"unexpected error: {type(exc).__name__}")


def _letter(spec: Mapping[str, Any]) -> bytes:
    from docexchange.signing import LetterSpec, make_letter

    fields = dict(spec)
    if isinstance(fields.get("issued"), str):
        fields["issued"] = date.fromisoformat(fields["issued"])
    for k in ("body", "recipients"):
        fields[k] = tuple(fields.get(k, ()))
    return make_letter(LetterSpec(**fields), font=_STATE["settings"].signing.font)


def _facts(pdf: bytes) -> PdfFacts:
    from pyhanko.pdf_utils import generic, misc
    from pyhanko.pdf_utils.reader import PdfFileReader
    from pyhanko.sign.fields import enumerate_sig_fields

    try:
        reader = PdfFileReader(io.BytesIO(pdf), strict=False)
        pages: list[tuple[float, float]] = []
        page_of: dict[tuple[int, int], int] = {}
        count = min(int(reader.root["/Pages"].get("/Count", 0)), 10_000)
        for i in range(count):
            page_ref, _ = reader.find_page_for_modification(i)
            obj = page_ref.get_object()
            box = obj.get("/CropBox") or obj.get("/MediaBox") or [0, 0, 595.28, 841.89]
            pages.append((float(box[2]) - float(box[0]), float(box[3]) - float(box[1])))
            annots = obj.get("/Annots") if "/Annots" in obj else None
            if annots is not None:
                for j in range(len(annots)):
                    ref = annots.raw_get(j)
                    if isinstance(ref, generic.IndirectObject):
                        page_of[(ref.idnum, ref.generation)] = i

        def where(field_ref: Any) -> int:
            obj = field_ref.get_object()
            widget_ref = obj.raw_get("/Kids").get_object().raw_get(0) if "/Kids" in obj else field_ref
            key = (getattr(widget_ref, "idnum", -1), getattr(widget_ref, "generation", 0))
            return page_of.get(key, max(0, len(pages) - 1))

        empty: list[tuple[str, int]] = []
        signed: list[tuple[str, int]] = []
        for name, value, ref in enumerate_sig_fields(reader):
            (signed if value is not None else empty).append((name, where(ref)))
    except (misc.PdfError, KeyError, ValueError, TypeError, AttributeError, RecursionError) as exc:
        raise InvalidPdf(f"Tệp PDF bị hỏng hoặc sai cấu trúc ({exc})", f"malformed PDF ({exc})") from exc
    if not pages:
        raise InvalidPdf("Tệp PDF không có trang nào", "the PDF has no pages")
    return PdfFacts(len(pages), tuple(pages), tuple(empty), tuple(signed))


def _person_certificates(official_id: str) -> list[dict[str, Any]]:
    svc = _service()
    signer = svc.person(official_id)
    return [_cert_info(signer.key.cert)]


def _cert_info(cert: Any) -> dict[str, Any]:
    from cryptography.hazmat.primitives import hashes

    return {
        "subject": cert.subject.rfc4514_string(),
        "issuer": cert.issuer.rfc4514_string(),
        "serial": format(cert.serial_number, "x"),
        "not_before": cert.not_valid_before_utc.isoformat(),
        "not_after": cert.not_valid_after_utc.isoformat(),
        "sha256": cert.fingerprint(hashes.SHA256()).hex(),
    }


def _sign_person(pdf: bytes, official_id: str, cert_sha256: str, page: int | None,
                 box: tuple[float, float, float, float] | None) -> tuple[bytes, str]:
    from docexchange.signing import Placement

    svc = _service()
    signer = svc.person(official_id)
    got = _cert_info(signer.key.cert)["sha256"]
    if cert_sha256 and got != cert_sha256:
        raise SigningError(
            "Chứng thư đã chọn không còn là chứng thư hiện hành của người ký: tải lại trang và chọn lại",
            "the chosen certificate is no longer the signer's current one: reload the page and choose again",
        )
    placement = Placement(page=page, box=box) if box is not None else None
    return svc.sign(pdf, signer, placement=placement), got


def _sign_seal(pdf: bytes, agency: str) -> tuple[bytes, str]:
    svc = _service()
    signer = svc.seal(agency)
    return svc.sign(pdf, signer), _cert_info(signer.key.cert)["sha256"]


# -- this side --------------------------------------------------------------------------------------------------
class Worker:
    """The pages' worker process (started on first use, one process, jobs run one at a time)."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self._pool: ProcessPoolExecutor | None = None

    def _executor(self) -> ProcessPoolExecutor:
        if self._pool is None:
            self._pool = ProcessPoolExecutor(
                max_workers=1, mp_context=multiprocessing.get_context("spawn"), initializer=_init,
                initargs=(self.settings,),
            )
        return self._pool

    async def _run(self, fn: Callable[..., Any], *args: Any) -> Any:
        loop = asyncio.get_running_loop()
        try:
            status, value = await loop.run_in_executor(self._executor(), _guard, fn, *args)
        except Exception as exc:  # a broken pool (the worker died): start a new one next time
            self.close()
            raise SigningError("Tiến trình xử lý văn bản bị dừng đột ngột", f"the worker process failed: {exc}") \
                from exc
        if status == "ok":
            return value
        code, vi, en = value
        raise _ERROR_CLASSES.get(code, SigningError)(vi, en)

    async def letter(self, spec: Mapping[str, Any]) -> bytes:
        data: bytes = await self._run(_letter, dict(spec))
        return data

    async def facts(self, pdf: bytes) -> PdfFacts:
        facts: PdfFacts = await self._run(_facts, pdf)
        return facts

    async def person_certificates(self, official_id: str) -> list[dict[str, Any]]:
        certs: list[dict[str, Any]] = await self._run(_person_certificates, official_id)
        return certs

    async def sign_person(self, pdf: bytes, official_id: str, cert_sha256: str, page: int | None = None,
                          box: tuple[float, float, float, float] | None = None) -> tuple[bytes, str]:
        out: tuple[bytes, str] = await self._run(_sign_person, pdf, official_id, cert_sha256, page, box)
        return out

    async def sign_seal(self, pdf: bytes, agency: str) -> tuple[bytes, str]:
        out: tuple[bytes, str] = await self._run(_sign_seal, pdf, agency)
        return out

    def close(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=False, cancel_futures=True)
            self._pool = None


class PreviewError(SigningError):
    code = "preview"


async def render_page(pdf_path: Path, page: int, out: Path, *, dpi: int = 110, limit: float = 30.0) -> Path:
    """Render one page (1-based) of a PDF file to PNG with ``pdftoppm`` (poppler-utils) and return its path."""
    exe = shutil.which("pdftoppm")
    if exe is None:
        raise PreviewError("Thiếu công cụ pdftoppm (gói poppler-utils)", "pdftoppm (poppler-utils) is not installed")
    await asyncio.to_thread(out.parent.mkdir, parents=True, exist_ok=True)
    stem = out.with_suffix("")
    proc = await asyncio.create_subprocess_exec(
        exe, "-png", "-r", str(dpi), "-f", str(page), "-l", str(page), "-singlefile", str(pdf_path), str(stem),
        stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.PIPE,
    )
    try:
        _, err = await asyncio.wait_for(proc.communicate(), limit)
    except TimeoutError:
        with contextlib.suppress(ProcessLookupError):
            proc.kill()
        await proc.wait()
        raise PreviewError("Quá thời gian tạo ảnh xem trước", "rendering the preview took too long") from None
    if proc.returncode != 0 or not await asyncio.to_thread(out.exists):
        raise PreviewError("Không tạo được ảnh xem trước trang văn bản",
                           f"pdftoppm failed ({proc.returncode}): {err.decode(errors='replace')[:200]}")
    return out
