"""Test harness for federations of axis nodes: directories with free ports, nodes in this process (real HTTPS
with mutual TLS on loopback) or as separate ``docexchange serve`` processes, and signed API clients."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
import tomllib
from collections.abc import Iterable, Mapping
from dataclasses import replace
from pathlib import Path
from typing import Any

from aiohttp import web

from docexchange.config import Settings, load_settings
from docexchange.directory import Directory, load_directory
from docexchange.pki.devpki import DevPki
from docexchange.web.app import NodeOptions, create_app
from docexchange.web.auth import Role
from docexchange.web.client import AgencyClient
from docexchange.web.keys import CREDENTIALS, DISPATCHER, SERVICE, STORE, TLS
from helpers import REPO, free_port

# ---------------------------------------------------------------------------------------------- directories

HONG_GAI = "000.01.11.H49"
THUAN_HOA = "000.00.31.H57"
DONG_XA = "000.02.12.H49"

FOUR_LEVEL_NODES = [
    {"id": "vdxp", "name": "Trục liên thông văn bản quốc gia", "organ_id": "000.00.00.G22"},
    {"id": "lgsp-h49", "name": "Trục liên thông văn bản tỉnh Quảng Ninh", "parent": "vdxp",
     "organ_id": "000.00.00.H49"},
    {"id": "lgsp-h49-hl", "name": "Trục liên thông thành phố Hạ Long", "parent": "lgsp-h49",
     "organ_id": "000.00.11.H49"},
    {"id": "lgsp-h49-hg", "name": "Trục liên thông phường Hồng Gai", "parent": "lgsp-h49-hl",
     "organ_id": "000.01.11.H49"},
    {"id": "lgsp-h57", "name": "Trục liên thông văn bản thành phố Huế", "parent": "vdxp",
     "organ_id": "000.00.00.H57"},
]
"""Four levels of axis nodes (national → province → city → commune) plus a second province."""

FOUR_LEVEL_HOMES = {"000.00.11.H49": "lgsp-h49-hl", "000.01.11.H49": "lgsp-h49-hg"}


def _toml_value(v: Any) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, (int, float)):
        return repr(v)
    if isinstance(v, str):
        return '"' + v.replace("\\", "\\\\").replace('"', '\\"') + '"'
    if isinstance(v, (list, tuple)):
        return "[" + ", ".join(_toml_value(x) for x in v) + "]"
    raise TypeError(type(v))


def dump_directory(data: Mapping[str, Any]) -> str:
    lines = []
    for k, v in data.items():
        if not isinstance(v, list) or (v and not isinstance(v[0], dict)):
            lines.append(f"{k} = {_toml_value(v)}")
    for node in data.get("nodes", []):
        lines.append("\n[[nodes]]")
        lines.extend(f"{k} = {_toml_value(v)}" for k, v in node.items())
    for agency in data.get("agencies", []):
        lines.append("\n[[agencies]]")
        lines.extend(f"{k} = {_toml_value(v)}" for k, v in agency.items() if k != "officials")
        for off in agency.get("officials", []):
            lines.append("[[agencies.officials]]")
            lines.extend(f"{k} = {_toml_value(v)}" for k, v in off.items())
    return "\n".join(lines) + "\n"


def directory_data(*, four_level: bool = True) -> dict[str, Any]:
    data = tomllib.loads((REPO / "config" / "agencies.toml").read_text("utf-8"))
    if four_level:
        data["nodes"] = [dict(n, host="127.0.0.1", port=0) for n in FOUR_LEVEL_NODES]
        for a in data["agencies"]:
            if a["code"] in FOUR_LEVEL_HOMES:
                a["node"] = FOUR_LEVEL_HOMES[a["code"]]
    return data


def write_directory(path: Path, ports: Mapping[str, int] | None = None, *, four_level: bool = True) -> dict[str, int]:
    """Write a directory with a free loopback port for every node; returns the ports used."""
    data = directory_data(four_level=four_level)
    used = {}
    for n in data["nodes"]:
        n["host"] = "127.0.0.1"
        n["port"] = (ports or {}).get(n["id"]) or free_port()
        used[n["id"]] = n["port"]
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(dump_directory(data), "utf-8")
    return used


TEST_SECTIONS: dict[str, dict[str, Any]] = {
    "exchange": {
        "lease_seconds": 5,
        "retry_base_seconds": 0.2,
        "retry_max_delay_seconds": 1.0,
        "breaker_failures": 3,
        "breaker_open_seconds": 0.5,
        "breaker_max_open_seconds": 2.0,
        "batch_max_items": 64,
        "peer_concurrency": 2,
        "verify_workers": 1,
        "parse_workers": 0,
        "transfer_timeout_seconds": 10.0,
    },
    "scheduler": {"retry_seconds": 1, "lease_recovery_seconds": 1, "housekeeping_minutes": 60},
}


def _section(name: str, values: Mapping[str, Any]) -> str:
    lines = [f"[{name}]"]
    tables = {}
    for k, v in values.items():
        if isinstance(v, list) and v and isinstance(v[0], dict):
            tables[k] = v
        else:
            lines.append(f"{k} = {_toml_value(v)}")
    for k, rows in tables.items():
        for row in rows:
            lines.append(f"[[{name}.{k}]]")
            lines.extend(f"{kk} = {_toml_value(vv)}" for kk, vv in row.items())
    return "\n".join(lines)


def write_project(base: Path, keys_dir: Path, pki_port: int, *, verify: bool = False,
                  ports: Mapping[str, int] | None = None, four_level: bool = True,
                  **overrides: Mapping[str, Any]) -> Settings:
    """A project folder using the shared ``keys_dir`` with its own data, directory (free ports) and config.
    ``overrides``: settings per section, e.g. ``exchange={"max_attempts": 2}``."""
    (base / "config").mkdir(parents=True, exist_ok=True)
    write_directory(base / "config" / "agencies.toml", ports, four_level=four_level)
    sections: dict[str, dict[str, Any]] = {
        "paths": {"data_dir": "data", "keys_dir": str(keys_dir), "directory": "config/agencies.toml"},
        "pki": {"host": "127.0.0.1", "port": pki_port},
        "verification": {"nd30_on_arrival": verify, "allow_online": True},
        **{k: dict(v) for k, v in TEST_SECTIONS.items()},
    }
    for name, values in overrides.items():
        sections.setdefault(name, {}).update(values)
    text = "\n\n".join(_section(k, v) for k, v in sections.items()) + "\n"
    (base / "config" / "docexchange.toml").write_text(text, "utf-8")
    return load_settings(base / "config" / "docexchange.toml")


# ---------------------------------------------------------------------------------------------- in process


class Federation:
    """Axis nodes running in the current event loop, each on its own HTTPS port with mutual TLS."""

    def __init__(self, settings: Settings, *, options: NodeOptions | None = None) -> None:
        self.settings = settings
        self.directory: Directory = load_directory(settings.directory_file)
        self.pki = DevPki.open(settings)
        self.options = options or NodeOptions()
        self.apps: dict[str, web.Application] = {}
        self.runners: dict[str, web.AppRunner] = {}
        self._secrets: dict[tuple[str, str], str] = {}
        self.clients: list[AgencyClient] = []

    @property
    def ca_file(self) -> Path:
        return self.settings.keys_dir / "ca" / "root.crt"

    async def start(self, *node_ids: str, options: NodeOptions | None = None) -> None:
        for node_id in node_ids or [n.id for n in self.directory.nodes]:
            app = create_app(self.settings, self.directory, node_id, pki=self.pki, options=options or self.options)
            runner = web.AppRunner(app, access_log=None, shutdown_timeout=1.0)
            await runner.setup()
            node = self.directory.node(node_id)
            site = web.TCPSite(runner, node.host, node.port, ssl_context=app[TLS].server_context())
            await site.start()
            self.apps[node_id] = app
            self.runners[node_id] = runner

    async def stop(self, node_id: str) -> None:
        runner = self.runners.pop(node_id)
        self.apps.pop(node_id)
        await runner.cleanup()

    async def close(self) -> None:
        for c in self.clients:
            await c.close()
        for node_id in list(self.runners):
            await self.stop(node_id)

    def app(self, node_id: str) -> web.Application:
        return self.apps[node_id]

    def service(self, node_id: str) -> Any:
        return self.apps[node_id][SERVICE]

    def store(self, node_id: str) -> Any:
        return self.apps[node_id][STORE]

    def dispatcher(self, node_id: str) -> Any:
        return self.apps[node_id][DISPATCHER]

    async def credential(self, node_id: str, system_id: str, role: Role, agencies: Iterable[str] = ()) -> str:
        key = (node_id, system_id)
        if key not in self._secrets:
            _, secret = await self.apps[node_id][CREDENTIALS].create(system_id, role, list(agencies))
            self._secrets[key] = secret
        return self._secrets[key]

    async def client(self, agency: str | None = None, *, node_id: str | None = None, system_id: str | None = None,
                     role: Role = Role.AGENCY, agencies: Iterable[str] | None = None) -> AgencyClient:
        """A signed API client for ``agency`` at its home node (or a role at ``node_id``)."""
        if node_id is None:
            assert agency is not None
            node_id = self.directory.agency(agency).node
        codes = list(agencies) if agencies is not None else ([agency] if agency else [])
        sid = system_id or f"sys-{(agency or role.value).replace('.', '-')}-{node_id}"
        secret = await self.credential(node_id, sid, role, codes)
        c = AgencyClient(self.directory.node(node_id).url, sid, secret, ca_file=self.ca_file)
        self.clients.append(c)
        return c


async def eventually(check: Any, within: float = 30.0, interval: float = 0.1, what: str = "condition") -> Any:
    """Poll ``check`` (sync or async) until it returns a truthy value."""
    deadline = time.monotonic() + within
    last: Any = None
    while time.monotonic() < deadline:
        last = check()
        if asyncio.iscoroutine(last):
            last = await last
        if last:
            return last
        await asyncio.sleep(interval)
    raise AssertionError(f"timed out waiting for {what} (last: {last!r})")


# ---------------------------------------------------------------------------------------------- processes


class NodeProcess:
    """``docexchange serve --node X`` as a child process (its own process group, killable with SIGKILL)."""

    def __init__(self, settings: Settings, node_id: str, log_dir: Path) -> None:
        self.settings = settings
        self.node_id = node_id
        self.log_path = log_dir / f"{node_id}.log"
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> NodeProcess:
        cfg = Path(self.settings.base_dir) / "config" / "docexchange.toml"
        env = dict(os.environ, DOCEXCHANGE_CONFIG=str(cfg), PYTHONUNBUFFERED="1")
        log = self.log_path.open("ab")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "docexchange", "serve", "--node", self.node_id, "--no-trust-services"],
            cwd=self.settings.base_dir, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
        )
        log.close()
        return self

    def wait_ready(self, timeout: float = 60.0) -> None:
        import socket

        node = load_directory(self.settings.directory_file).node(self.node_id)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            assert self.proc is not None
            if self.proc.poll() is not None:
                raise AssertionError(f"{self.node_id} exited: {self.log_path.read_text(errors='replace')[-3000:]}")
            try:
                with socket.create_connection((node.host, node.port), timeout=0.5):
                    return
            except OSError:
                time.sleep(0.1)
        raise AssertionError(f"{self.node_id} did not start: {self.log_path.read_text(errors='replace')[-3000:]}")

    def kill9(self) -> None:
        assert self.proc is not None
        os.kill(self.proc.pid, signal.SIGKILL)
        self.proc.wait(timeout=30)

    def stop(self) -> None:
        if self.proc is None or self.proc.poll() is not None:
            return
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            self.kill9()


def project_settings(settings: Settings, **exchange: Any) -> Settings:
    return replace(settings, exchange=replace(settings.exchange, **exchange))
