"""Clients of a node's APIs. :class:`AxisClient` speaks the national-axis-style API (``docs/national-axis-api.md``,
wire format in :mod:`docexchange.client.wire`); the agency JSON API client is :mod:`docexchange.web.client`."""

from docexchange.client.axis import AxisClient, AxisError, Page
from docexchange.client.wire import ErrorCode, MessageType, Operation, TransportStatus, sign_call

__all__ = ["AxisClient", "AxisError", "ErrorCode", "MessageType", "Operation", "Page", "TransportStatus", "sign_call"]
