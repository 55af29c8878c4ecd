"""PDF → verification report: the entry point callers use.

.. code-block:: python

    from docexchange.verify import Verifier

    with Verifier.from_settings(settings, directory) as verifier:
        report = verifier.verify_pdf(pdf_bytes, sender="000.00.00.H49", policy="nd30")
        if not report.valid:
            print(report.label_vi, report.reasons_vi)

A :class:`Verifier` is long-lived and synchronous. By default (``[verification] isolation = "process"``) the
untrusted bytes are parsed in a worker process of its own (``_sandbox``) that keeps the certificate-path and
revocation caches warm, and is killed and replaced when a document exceeds the time or memory limit. It never
raises for a bad document — that is a report; it raises :class:`~docexchange.errors.VerificationError` only
when verification cannot run at all (no usable configuration, the worker cannot start).

Create one per process (after ``fork()``); calls from several threads are serialised. Do not call it on an
event loop: run it in a worker thread or process.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from docexchange.clock import Clock, SystemClock
from docexchange.config import Settings
from docexchange.directory import Directory
from docexchange.errors import ConfigError, VerificationError
from docexchange.verify._core import CoreConfig, CoreRequest, cannot_validate
from docexchange.verify.nd30 import POLICIES, SealPins, apply_policy
from docexchange.verify.report import VerificationReport

__all__ = ["Verifier", "VerifierLimits", "load_anchors", "load_known_certs"]


@dataclass(frozen=True)
class VerifierLimits:
    timeout_seconds: float = 60.0
    memory_limit_mb: int = 2048
    max_document_mb: int = 100


def _read_certs(path: Path) -> list[bytes]:
    """DER certificates from a DER or PEM file (a PEM file may hold several)."""
    from cryptography import x509
    from cryptography.hazmat.primitives import serialization

    try:
        data = path.read_bytes()
    except OSError as exc:
        raise ConfigError(f"Không đọc được tệp chứng thư {path}",
                          f"cannot read certificate file {path}: {exc}") from exc
    try:
        if b"-----BEGIN" in data:
            certs = x509.load_pem_x509_certificates(data)
        else:
            certs = [x509.load_der_x509_certificate(data)]
    except ValueError as exc:
        raise ConfigError(f"Tệp {path} không phải chứng thư X.509",
                          f"{path} is not an X.509 certificate ({exc})") from exc
    return [c.public_bytes(serialization.Encoding.DER) for c in certs]


def load_anchors(settings: Settings) -> tuple[bytes, ...]:
    """The trust anchors: ``keys/ca/root.crt`` when present, plus ``[verification] anchors``."""
    out: list[bytes] = []
    root = settings.keys_dir / "ca" / "root.crt"
    if root.is_file():
        out.extend(_read_certs(root))
    for name in settings.verification.anchors:
        out.extend(_read_certs(settings.path(name)))
    return tuple(dict.fromkeys(out))


def load_known_certs(settings: Settings) -> tuple[bytes, ...]:
    """Issuing-CA certificates under ``keys/ca/`` (help build paths; never trusted by themselves)."""
    folder = settings.keys_dir / "ca"
    out: list[bytes] = []
    if folder.is_dir():
        for path in sorted(folder.glob("*.crt")):
            if path.name != "root.crt":
                try:
                    out.extend(_read_certs(path))
                except ConfigError:
                    continue
    return tuple(out)


class Verifier:
    """Verifies signed PDFs; long-lived; see the module documentation."""

    def __init__(
        self,
        config: CoreConfig,
        *,
        pins: SealPins | None = None,
        directory: Directory | None = None,
        clock: Clock | None = None,
        isolation: str = "process",
        limits: VerifierLimits | None = None,
    ) -> None:
        if isolation not in ("process", "inline"):
            raise ConfigError(
                f"Chế độ cô lập '{isolation}' không hợp lệ (process, inline)",
                f"invalid isolation mode '{isolation}' (process, inline)",
            )
        self.config = config
        self.pins = pins or SealPins.empty()
        self.directory = directory
        self.clock: Clock = clock or SystemClock()
        self.isolation = isolation
        self.limits = limits or VerifierLimits(max_document_mb=max(1, config.max_bytes // (1024 * 1024)))
        self._lock = threading.Lock()
        self._worker: Any = None
        self._core: Any = None

    @classmethod
    def from_settings(
        cls,
        settings: Settings,
        directory: Directory | None = None,
        *,
        clock: Clock | None = None,
        isolation: str | None = None,
        extra_anchors: Iterable[bytes] = (),
    ) -> Verifier:
        v = settings.verification
        config = CoreConfig(
            anchors=tuple(dict.fromkeys([*load_anchors(settings), *extra_anchors])),
            known_certs=load_known_certs(settings),
            freshness_hours=v.revocation_freshness_hours,
            allow_online=v.allow_online,
            online_timeout=float(v.online_timeout_seconds),
            max_bytes=v.max_document_mb * 1024 * 1024,
        )
        pins = SealPins.from_settings(settings, directory)
        limits = VerifierLimits(float(v.timeout_seconds), v.memory_limit_mb, v.max_document_mb)
        return cls(config, pins=pins, directory=directory, clock=clock, isolation=isolation or v.isolation,
                   limits=limits)

    # -- lifecycle ---------------------------------------------------------------------------------
    def __enter__(self) -> Verifier:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        with self._lock:
            if self._worker is not None:
                import os

                if self._worker.owner_pid == os.getpid():
                    self._worker.close()
                self._worker = None

    def __del__(self) -> None:
        with contextlib.suppress(Exception):  # interpreter shutdown: nothing left to report to
            self.close()

    def _worker_handle(self) -> Any:
        import os

        from docexchange.verify._sandbox import SandboxDied, SandboxTimeout, Worker

        if self._worker is not None and (self._worker.owner_pid != os.getpid() or not self._worker.alive):
            self._worker = None  # forked, or died: never touch a parent's worker
        if self._worker is None:
            try:
                self._worker = Worker(self.config, memory_limit_mb=self.limits.memory_limit_mb)
            except (SandboxDied, SandboxTimeout, OSError) as exc:
                raise VerificationError(
                    "Không khởi động được tiến trình kiểm tra chữ ký",
                    f"the verification worker process could not be started ({exc})",
                ) from exc
        return self._worker

    # -- verification ------------------------------------------------------------------------------
    def verify_pdf(
        self,
        data: bytes,
        *,
        name: str = "",
        sender: str | None = None,
        policy: str | None = None,
        at: datetime | None = None,
        offline: bool = False,
    ) -> VerificationReport:
        """Verify one PDF. ``policy``: ``None``, ``"nd30"`` (person + seal of ``sender``) or ``"nd30-appendix"``
        (organisation signature only). ``at``: judge the document at this time instead of now. ``offline``:
        use only what the document carries (no OCSP/CRL look-ups)."""
        if policy is not None and policy not in POLICIES:
            raise VerificationError(
                f"Chính sách '{policy}' không có (các chính sách: {', '.join(POLICIES)})",
                f"no policy '{policy}' (policies: {', '.join(POLICIES)})",
            )
        if at is not None and at.tzinfo is None:
            raise VerificationError("Thời điểm kiểm tra phải có múi giờ", "the validation time must be timezone-aware")
        now = self.clock.now()
        request = CoreRequest(
            name=name, validation_time=(at or now).astimezone(UTC), now=now.astimezone(UTC), offline=offline
        )
        data = bytes(data)
        if len(data) > self.limits.max_document_mb * 1024 * 1024:
            report = cannot_validate(
                data, request, "too_large", f"tệp lớn hơn giới hạn {self.limits.max_document_mb} MB",
                f"the file is larger than the {self.limits.max_document_mb} MB limit",
            )
        elif self.isolation == "inline":
            report = self._inline(data, request)
        else:
            report = self._isolated(data, request)
        if policy is not None:
            report = apply_policy(report, policy, sender=sender, pins=self.pins, directory=self.directory)
        return report

    def verify_file(self, path: Path | str, **kwargs: Any) -> VerificationReport:
        """Read ``path`` (size-limited) and verify it; the report is named after the file."""
        p = Path(path)
        limit = self.limits.max_document_mb * 1024 * 1024
        try:
            with p.open("rb") as fh:
                data = fh.read(limit + 1)
        except OSError as exc:
            raise VerificationError(f"Không đọc được tệp {p}", f"cannot read {p}: {exc}") from exc
        kwargs.setdefault("name", p.name)
        return self.verify_pdf(data, **kwargs)

    def _inline(self, data: bytes, request: CoreRequest) -> VerificationReport:
        with self._lock:
            if self._core is None:
                from docexchange.verify._core import VerificationCore

                self._core = VerificationCore(self.config)
            report: VerificationReport = self._core.verify(data, request)
            return report

    def _isolated(self, data: bytes, request: CoreRequest) -> VerificationReport:
        from docexchange.verify._sandbox import SandboxDied, SandboxTimeout

        with self._lock:
            worker = self._worker_handle()
            try:
                answer = worker.verify(data, request, self.limits.timeout_seconds)
            except SandboxTimeout:
                self._worker = None
                return cannot_validate(
                    data, request, "timeout",
                    f"quá thời gian kiểm tra ({self.limits.timeout_seconds:g} giây): tệp có thể bị hỏng hoặc độc hại",
                    f"verification took longer than {self.limits.timeout_seconds:g} s: the file may be damaged "
                    "or hostile",
                )
            except SandboxDied:
                self._worker = None
                return cannot_validate(
                    data, request, "resource_limit",
                    "tiến trình kiểm tra bị dừng (vượt giới hạn bộ nhớ): tệp có thể bị hỏng hoặc độc hại",
                    "the verification worker stopped (memory limit exceeded): the file may be damaged or hostile",
                )
        if answer[0] == "ok":
            report: VerificationReport = answer[1]
            return report
        code = answer[1]
        if code == "resource_limit":
            self._worker = None
            return cannot_validate(
                data, request, "resource_limit",
                "tệp PDF vượt quá giới hạn bộ nhớ khi phân tích (có thể là tệp độc hại)",
                "the PDF exceeded the memory limit while being analysed (it may be hostile)",
            )
        return cannot_validate(data, request, "internal", "lỗi không mong đợi khi phân tích tệp",
                               f"unexpected error while analysing the file ({answer[2]})")

    # -- introspection (benchmarks, diagnostics) ---------------------------------------------------
    def cache_stats(self) -> dict[str, tuple[int, int, int]]:
        """Entries, hits and misses of each cache (certificates, paths, OCSP, CRL …)."""
        with self._lock:
            if self.isolation == "inline":
                return dict(self._core.trust.cache_stats()) if self._core is not None else {}
            answer = self._worker_handle().call(("stats",), self.limits.timeout_seconds)
            return dict(answer[1])

    def clear_caches(self) -> None:
        with self._lock:
            if self.isolation == "inline":
                if self._core is not None:
                    self._core.trust.clear_caches()
            elif self._worker is not None:
                self._worker.call(("clear",), self.limits.timeout_seconds)

