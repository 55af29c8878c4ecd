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
        """Send one document; large ones go through a private file in /dev/shm (memory, not the pipe)."""
        if len(data) < SHM_THRESHOLD or not os.path.isdir(SHM_DIR):
            return self.call(("verify", data, request), timeout)
        fd, path = tempfile.mkstemp(prefix="docexchange-verify-", dir=SHM_DIR)  # mode 0600
        try:
            with os.fdopen(fd, "wb") as fh:
                fh.write(data)
            return self.call(("verify_file", path, len(data), request), timeout)
        finally:
            with contextlib.suppress(OSError):
                os.unlink(path)

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
        if kind == "verify_file":  # the parent put a large document in a private file: read it in place
            _, path, size, request = message
            try:
                with open(path, "rb") as fh:
                    mapped = mmap.mmap(fh.fileno(), 0, access=mmap.ACCESS_READ)
            except (OSError, ValueError) as exc:
                code = "resource_limit" if getattr(exc, "errno", None) == errno.ENOMEM else "internal"
                answer = ("error", code, f"cannot read the document: {exc}")
            else:
                try:
                    answer = _verify(core, mapped, request) if len(mapped) == size else (
                        "error", "internal", "the document file does not have the announced size")
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
