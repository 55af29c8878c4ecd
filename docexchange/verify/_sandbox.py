"""A long-lived worker process that parses untrusted PDFs, bounded in time and memory.

The parent (:class:`docexchange.verify.pdf.Verifier`) starts ``python -m docexchange.verify._sandbox`` once,
sends it the core configuration, then one document at a time; the worker keeps its caches (certificate paths,
revocation answers) between documents. The parent waits at most ``timeout`` seconds per document: a worker
that does not answer in time (a parser loop, a decompression bomb) is killed and replaced, and the document
is reported as not verifiable. The worker runs under ``RLIMIT_AS``; running out of memory ends the request
(and the worker) the same way. Starting the worker is the expensive part (~0.5 s of imports), so it is done
once per :class:`Verifier`; after ``fork()`` a child process starts its own worker.

Wire format, both ways: an 8-byte big-endian length, then a pickle. Only our own two processes speak it.
"""

from __future__ import annotations

import contextlib
import errno
import logging
import mmap
import os
import pickle
import select
import struct
import subprocess
import sys
import tempfile
import time
import warnings
from typing import IO, Any

__all__ = ["SandboxDied", "SandboxTimeout", "Worker"]

_HEADER = struct.Struct(">Q")
MAX_MESSAGE = 1 << 31
SHM_DIR = "/dev/shm"  # noqa: S108 - a private (0600) file for one document, removed after the call
SHM_THRESHOLD = 1 << 20
SHM_KEEP = 64 << 20
"""Shared area kept between documents up to this size (larger documents get it grown, then released)."""


class SandboxTimeout(Exception):
    pass


class SandboxDied(Exception):
    pass


def _write(stream: IO[bytes], obj: Any) -> None:
    payload = pickle.dumps(obj, protocol=pickle.HIGHEST_PROTOCOL)
    stream.write(_HEADER.pack(len(payload)))
    stream.write(payload)
    stream.flush()


def _read_exact_blocking(stream: IO[bytes], n: int) -> bytes:
    chunks = []
    while n:
        chunk = stream.read(n)
        if not chunk:
            raise EOFError
        chunks.append(chunk)
        n -= len(chunk)
    return b"".join(chunks)


def _read_blocking(stream: IO[bytes]) -> Any:
    (size,) = _HEADER.unpack(_read_exact_blocking(stream, _HEADER.size))
    if size > MAX_MESSAGE:
        raise EOFError
    return pickle.loads(_read_exact_blocking(stream, size))  # noqa: S301 - our own parent process


class Worker:
    """Parent-side handle of one worker process."""

    def __init__(self, config: Any, *, memory_limit_mb: int, startup_timeout: float = 120.0) -> None:
        self.owner_pid = os.getpid()
        self._shm_fd: int | None = None
        self._shm_map: mmap.mmap | None = None
        self._shm_cap = 0
        env = dict(os.environ)
        env["PYTHONDONTWRITEBYTECODE"] = env.get("PYTHONDONTWRITEBYTECODE", "1")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "docexchange.verify._sandbox", str(int(memory_limit_mb))],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            close_fds=True,
            env=env,
        )
        assert self.proc.stdin is not None and self.proc.stdout is not None
        self._in = self.proc.stdin
        self._out_fd = self.proc.stdout.fileno()
        try:
            _write(self._in, ("config", config))
            ready = self._read(startup_timeout)
        except (SandboxTimeout, SandboxDied, OSError):
            self.kill()
            raise
        if not (isinstance(ready, tuple) and ready and ready[0] == "ready"):
            self.kill()
            raise SandboxDied(f"unexpected first message from the verification worker: {ready!r}")

    @property
    def alive(self) -> bool:
        return self.proc.poll() is None

    def verify(self, data: bytes, request: Any, timeout: float) -> Any:
        """Send one document; large ones through a memory area shared with the worker (a private, unlinked
        /dev/shm file kept for the worker's life), not through the pipe."""
        size = len(data)
        if size < SHM_THRESHOLD or not self._shared(size, timeout):
            return self.call(("verify", data, request), timeout)
        assert self._shm_map is not None
        self._shm_map[:size] = data
        try:
            return self.call(("verify_shared", size, request), timeout)
        finally:
            if self._shm_cap > SHM_KEEP:  # do not hold on to the memory of an exceptionally large document
                self._shm_resize(0)

    def _shared(self, size: int, timeout: float) -> bool:
        if self._shm_fd is None:
            if not os.path.isdir(SHM_DIR):
                return False
            fd, path = tempfile.mkstemp(prefix="docexchange-verify-", dir=SHM_DIR)  # mode 0600
            try:
                answer = self.call(("shared", path), timeout)
            finally:
                with contextlib.suppress(OSError):
                    os.unlink(path)  # both sides hold it open: nothing is left behind, whatever happens
            if answer[0] != "ok":
                os.close(fd)
                return False
            self._shm_fd = fd
        if size > self._shm_cap:
            self._shm_resize(max(size, min(2 * self._shm_cap, SHM_KEEP)))
        return True

    def _shm_resize(self, capacity: int) -> None:
        assert self._shm_fd is not None
        if self._shm_map is not None:
            self._shm_map.close()
            self._shm_map = None
        os.ftruncate(self._shm_fd, capacity)
        self._shm_cap = capacity
        if capacity:
            self._shm_map = mmap.mmap(self._shm_fd, capacity)

    def _close_shared(self) -> None:
        if self._shm_map is not None:
            with contextlib.suppress(BufferError, OSError):
                self._shm_map.close()
            self._shm_map = None
        if self._shm_fd is not None:
            with contextlib.suppress(OSError):
                os.close(self._shm_fd)
            self._shm_fd = None
        self._shm_cap = 0

    def call(self, message: Any, timeout: float) -> Any:
        try:
            _write(self._in, message)
        except (BrokenPipeError, OSError) as exc:
            self.kill()
            raise SandboxDied(str(exc)) from exc
        try:
            return self._read(timeout)
        except SandboxTimeout:
            self.kill()
            raise

    def _read_exact(self, n: int, deadline: float) -> bytes:
        chunks = []
        while n:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise SandboxTimeout
            ready, _, _ = select.select([self._out_fd], [], [], remaining)
            if not ready:
                raise SandboxTimeout
            chunk = os.read(self._out_fd, min(n, 1 << 20))
            if not chunk:
                self.kill()
                raise SandboxDied("the verification worker stopped")
            chunks.append(chunk)
            n -= len(chunk)
        return b"".join(chunks)

    def _read(self, timeout: float) -> Any:
        deadline = time.monotonic() + timeout
        (size,) = _HEADER.unpack(self._read_exact(_HEADER.size, deadline))
        if size > MAX_MESSAGE:
            self.kill()
            raise SandboxDied("oversized answer from the verification worker")
        return pickle.loads(self._read_exact(size, deadline))  # noqa: S301 - our own child process

    def kill(self) -> None:
        self._close_shared()
        if self.proc.poll() is None:
            with contextlib.suppress(OSError):
                self.proc.kill()
        with contextlib.suppress(subprocess.TimeoutExpired, OSError):
            self.proc.wait(timeout=10)
        for stream in (self.proc.stdin, self.proc.stdout):
            with contextlib.suppress(OSError):
                if stream is not None:
                    stream.close()

    def close(self) -> None:
        """Ask the worker to stop (EOF on its input), then make sure it did."""
        if self.proc.poll() is None:
            with contextlib.suppress(OSError):
                self._in.close()
            try:
                self.proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                pass
        self.kill()


# --------------------------------------------------------------------------------------------- child
def _limit_memory(mb: int) -> None:
    if mb <= 0:
        return
    try:
        import resource

        limit = mb * 1024 * 1024
        resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
    except (ImportError, ValueError, OSError):  # not available on this platform: rely on the timeout
        pass


def _verify(core: Any, data: Any, request: Any) -> tuple[Any, ...]:
    try:
        return ("ok", core.verify(data, request))
    except MemoryError:
        return ("error", "resource_limit", "MemoryError")
    except BaseException as exc:  # report, then carry on serving
        return ("error", "internal", f"{type(exc).__name__}: {exc}")


def main() -> None:  # pragma: no cover - exercised through the Verifier in tests
    proto_out = os.fdopen(os.dup(1), "wb")
    os.dup2(2, 1)  # anything printed by a library goes to stderr, never into the protocol
    proto_in = sys.stdin.buffer
    memory_mb = int(sys.argv[1]) if len(sys.argv) > 1 else 0
    logging.basicConfig(level=logging.ERROR)
    for name in ("pyhanko", "pyhanko_certvalidator", "asn1crypto", "docexchange.verify"):
        logging.getLogger(name).setLevel(logging.CRITICAL)
    warnings.simplefilter("ignore")
    try:
        first = _read_blocking(proto_in)
    except EOFError:
        return
    from docexchange.verify._core import VerificationCore

    core = VerificationCore(first[1])
    _limit_memory(memory_mb)
    _write(proto_out, ("ready", os.getpid()))
    shared: IO[bytes] | None = None
    while True:
        try:
            message = _read_blocking(proto_in)
        except EOFError:
            return
        except MemoryError:  # the request itself does not fit: say so, then make room for a fresh worker
            _write(proto_out, ("error", "resource_limit", "MemoryError"))
            return
        kind = message[0]
        answer: Any
        if kind == "shared":  # the memory area large documents will come through
            try:
                if shared is not None:
                    shared.close()
                shared = open(message[1], "rb")  # kept open for the worker's life
                answer = ("ok", None)
            except OSError as exc:
                answer = ("error", "internal", f"cannot open the shared area: {exc}")
        elif kind == "verify_shared":  # read the document in place, exactly ``size`` bytes of the area
            _, size, request = message
            try:
                if shared is None:
                    raise OSError("no shared area")
                mapped = mmap.mmap(shared.fileno(), size, access=mmap.ACCESS_READ)
            except (OSError, ValueError) as exc:
                code = "resource_limit" if getattr(exc, "errno", None) == errno.ENOMEM else "internal"
                answer = ("error", code, f"cannot read the document: {exc}")
            else:
                try:
                    answer = _verify(core, mapped, request)
                finally:
                    with contextlib.suppress(BufferError):
                        mapped.close()
        elif kind == "verify":
            _, data, request = message
            answer = _verify(core, data, request)
            del data
        elif kind == "stats":
            answer = ("ok", core.trust.cache_stats())
        elif kind == "clear":
            core.trust.clear_caches()
            answer = ("ok", None)
        else:
            answer = ("error", "protocol", f"unknown message {kind!r}")
        restart = answer[0] == "error" and answer[1] == "resource_limit"
        try:
            _write(proto_out, answer)
        except MemoryError:
            _write(proto_out, ("error", "resource_limit", "MemoryError"))
            restart = True
        if restart:
            return


if __name__ == "__main__":  # pragma: no cover
    main()
