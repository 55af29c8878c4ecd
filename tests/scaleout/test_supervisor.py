"""The supervisor of ``serve --workers N``: what it refuses, and a start-up failure that must not loop."""

from __future__ import annotations

import asyncio
import io
import socket
from dataclasses import replace
from pathlib import Path

import pytest
from scaleout_kit import Cluster

from docexchange.config import Settings
from docexchange.errors import ConfigError
from docexchange.exchange.workers import WorkerPlan, check_plan, supervise


def test_several_workers_need_postgresql(sx_keys: Settings) -> None:
    sqlite = replace(sx_keys, store=replace(sx_keys.store, url="sqlite:///data/{node}.sqlite"))
    with pytest.raises(ConfigError) as info:
        check_plan(sqlite, WorkerPlan(("vdxp",), 2))
    assert "PostgreSQL" in info.value.message_vi
    check_plan(sqlite, WorkerPlan(("vdxp",), 1))  # one process is fine on SQLite
    pg = replace(sx_keys, store=replace(sx_keys.store, url="postgresql://postgres@127.0.0.1/test"))
    check_plan(pg, WorkerPlan(("vdxp",), 4))
    with pytest.raises(ConfigError):
        check_plan(pg, WorkerPlan(("vdxp",), 0))
    with pytest.raises(ConfigError):
        check_plan(pg, WorkerPlan((), 2))


async def test_workers_that_cannot_start_stop_the_start_up(cluster: Cluster, tmp_path: Path) -> None:
    node = cluster.directory.node("vdxp")
    with socket.socket() as taken:  # the node's port is held by someone else (no SO_REUSEPORT)
        taken.bind((node.host, node.port))
        taken.listen()
        out = io.StringIO()
        cfg = Path(cluster.settings.base_dir) / "config" / "docexchange.toml"
        code = await asyncio.wait_for(
            supervise(cluster.settings, WorkerPlan(("vdxp",), 2, cfg, verify_on_arrival=False), out=out), 180)
    assert code == 1
    text = out.getvalue()
    assert "start-up failed" in text and "exited with code" in text
    assert "cổng" in text or "port" in text  # the workers said why
    # The schema was migrated once by the supervisor before the workers started.
    assert await cluster.fetchval("vdxp", "SELECT MAX(version) FROM schema_migrations") >= 1
