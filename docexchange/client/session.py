"""What every docexchange HTTP client shares: the node's base URL, the caller's credentials, TLS trust, and an
aiohttp session the client either received (the caller closes it) or created itself (closed by :meth:`close`)."""

from __future__ import annotations

import ssl
from pathlib import Path
from types import TracebackType
from typing import Self

import aiohttp

__all__ = ["SignedHttpClient"]


class SignedHttpClient:
    connection_limit = 16
    """Connections kept open to the node when the client makes its own session."""

    def __init__(
        self,
        base_url: str,
        system_id: str,
        secret: str,
        *,
        ca_file: Path | None = None,
        session: aiohttp.ClientSession | None = None,
        timeout: float = 120.0,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self.system_id = system_id
        self._secret = secret
        self._ssl: ssl.SSLContext | bool = True
        if ca_file is not None:
            self._ssl = ssl.create_default_context(cafile=str(ca_file))
        self._own = session is None
        self._session = session
        self.timeout = aiohttp.ClientTimeout(total=timeout)

    def __repr__(self) -> str:  # never show the secret
        return f"{type(self).__name__}({self.base_url!r}, {self.system_id!r})"

    async def __aenter__(self) -> Self:
        await self._http()
        return self

    async def __aexit__(self, et: type[BaseException] | None, e: BaseException | None,
                        tb: TracebackType | None) -> None:
        await self.close()

    async def _http(self) -> aiohttp.ClientSession:
        """The session to send with (made on first use when none was given)."""
        if self._session is None:
            self._session = aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=self.connection_limit))
        return self._session

    async def close(self) -> None:
        if self._own and self._session is not None:
            await self._session.close()
            self._session = None
