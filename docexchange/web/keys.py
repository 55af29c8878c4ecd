"""Typed application keys: every resource a node's aiohttp application holds, in one place."""

from __future__ import annotations

from aiohttp import ClientSession, web
from apscheduler.schedulers.asyncio import AsyncIOScheduler

from docexchange.clock import Clock
from docexchange.config import Settings
from docexchange.directory import Directory
from docexchange.exchange.delivery import Dispatcher
from docexchange.exchange.service import NodeService
from docexchange.exchange.store import Store
from docexchange.exchange.transport import NodeTls, PeerTransport
from docexchange.exchange.verification import VerificationRunner
from docexchange.web.auth import Credentials

__all__ = [
    "CLOCK",
    "CREDENTIALS",
    "DIRECTORY",
    "DISPATCHER",
    "NODE_ID",
    "OPTIONS",
    "SCHEDULER",
    "SERVICE",
    "SESSION",
    "SETTINGS",
    "STORE",
    "TLS",
    "TRANSPORT",
    "VERIFICATION",
]

SETTINGS = web.AppKey("settings", Settings)
DIRECTORY = web.AppKey("directory", Directory)
NODE_ID = web.AppKey("node_id", str)
CLOCK = web.AppKey("clock", Clock)
STORE = web.AppKey("store", Store)
SERVICE = web.AppKey("service", NodeService)
CREDENTIALS = web.AppKey("credentials", Credentials)
TLS = web.AppKey("tls", NodeTls)
SESSION = web.AppKey("session", ClientSession)
TRANSPORT = web.AppKey("transport", PeerTransport)
DISPATCHER = web.AppKey("dispatcher", Dispatcher)
VERIFICATION = web.AppKey("verification", VerificationRunner)
SCHEDULER = web.AppKey("scheduler", AsyncIOScheduler)
OPTIONS = web.AppKey("options", object)
