"""The wire format of the national-axis-style API (``docs/national-axis-api.md``), shared by the node
(:mod:`docexchange.web.vxp`) and the client (:mod:`docexchange.client.axis`). Values only: no I/O.

Every operation is ``POST <node>/vxp/<operation>``; parameters travel in HTTP headers (``from``, ``to``,
``servicetype``, ``messagetype``, ``docId``, ``status`` …), the body is the raw edXML of ``sendEdoc`` (empty
otherwise), answers are JSON ``{"status": "OK"|"FAIL", "ErrorCode", "ErrorDesc", …}``.

Calls are signed with the node's HMAC-SHA256 request scheme (:mod:`docexchange.web.auth`) under the header names
of this API: ``timestamp`` (Unix seconds), ``nonce``, ``sha256`` (hex SHA-256 of the body) and
``Authorization: VXP-HMAC-SHA256 Credential=<system id>, SignedHeaders=<names>, Signature=<hex>``.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from datetime import timedelta

from docexchange.web.auth import HmacScheme, sign_request

__all__ = [
    "ALGORITHM",
    "ERROR_HTTP",
    "OK_CODE",
    "PARAM_HEADERS",
    "PATH_PREFIX",
    "SERVICE_TYPE",
    "VXP_SCHEME",
    "ErrorCode",
    "Header",
    "MessageType",
    "Operation",
    "TransportStatus",
    "operation_path",
    "sign_call",
    "vxp_scheme",
]

PATH_PREFIX = "/vxp"
ALGORITHM = "VXP-HMAC-SHA256"
SERVICE_TYPE = "eDoc"
OK_CODE = "0"
"""``ErrorCode`` of every successful answer."""


class Header:
    """Header names (HTTP header names are case-insensitive; they are signed in lower case)."""

    FROM = "from"
    TO = "to"
    SERVICETYPE = "servicetype"
    MESSAGETYPE = "messagetype"
    DOCID = "docId"
    STATUS = "status"
    LIMIT = "limit"
    CURSOR = "cursor"
    TIMESTAMP = "timestamp"
    NONCE = "nonce"
    SHA256 = "sha256"
    AUTHORIZATION = "Authorization"


PARAM_HEADERS = (
    Header.FROM, Header.TO, Header.SERVICETYPE, Header.MESSAGETYPE, Header.DOCID, Header.STATUS, Header.LIMIT,
    Header.CURSOR,
)
"""Operation parameters: every one present in a request must be among its signed headers."""


class Operation(str, enum.Enum):
    SEND_EDOC = "sendEdoc"
    GET_RECEIVED_EDOC_LIST = "getReceivedEdocList"
    GET_EDOC = "getEdoc"
    UPDATE_STATUS = "updateStatus"
    GET_SENT_EDOC_LIST = "getSentEdocList"
    COUNT_RECEIVE_EDOC = "countReceiveEdoc"
    COUNT_RECEIVE_STATUS = "countReceiveStatus"
    GET_AGENCY_LIST = "getAgencyList"


class MessageType(str, enum.Enum):
    EDOC = "edoc"
    """A document packet (văn bản)."""
    STATUS = "status"
    """A status packet (trạng thái 01–16)."""


class TransportStatus(str, enum.Enum):
    """What ``updateStatus`` says about the transfer of one received packet to the caller's software."""

    DONE = "done"
    """Taken and stored by the caller's software: the packet leaves the pending list (final)."""
    PROCESSING = "processing"
    """Taken, being stored: stays pending, marked as fetched."""
    FAIL = "fail"
    """The caller could not take it (its copy is damaged, its database is down …): stays pending, to fetch again."""


class ErrorCode(str, enum.Enum):
    """Stable ``ErrorCode`` values of FAIL answers; :data:`ERROR_HTTP` gives each one's HTTP status."""

    AUTH_MISSING = "AUTH_MISSING"
    AUTH_MALFORMED = "AUTH_MALFORMED"
    AUTH_UNSIGNED_HEADER = "AUTH_UNSIGNED_HEADER"
    AUTH_EXPIRED = "AUTH_EXPIRED"
    AUTH_REPLAYED = "AUTH_REPLAYED"
    AUTH_INVALID = "AUTH_INVALID"
    BODY_HASH_MISMATCH = "BODY_HASH_MISMATCH"
    FORBIDDEN_AGENCY = "FORBIDDEN_AGENCY"
    FORBIDDEN_ROLE = "FORBIDDEN_ROLE"
    SENDER_MISMATCH = "SENDER_MISMATCH"
    MISSING_HEADER = "MISSING_HEADER"
    INVALID_HEADER = "INVALID_HEADER"
    INVALID_TO = "INVALID_TO"
    UNKNOWN_AGENCY = "UNKNOWN_AGENCY"
    MESSAGETYPE_MISMATCH = "MESSAGETYPE_MISMATCH"
    INVALID_EDXML = "INVALID_EDXML"
    PACKET_TOO_LARGE = "PACKET_TOO_LARGE"
    DOC_NOT_FOUND = "DOC_NOT_FOUND"
    UNKNOWN_DOCUMENT = "UNKNOWN_DOCUMENT"
    ALREADY_DONE = "ALREADY_DONE"
    CONFLICT = "CONFLICT"
    UNKNOWN_OPERATION = "UNKNOWN_OPERATION"
    METHOD_NOT_ALLOWED = "METHOD_NOT_ALLOWED"
    SERVICE_UNAVAILABLE = "SERVICE_UNAVAILABLE"
    INTERNAL_ERROR = "INTERNAL_ERROR"

    @property
    def http_status(self) -> int:
        return ERROR_HTTP[self]


ERROR_HTTP: Mapping[ErrorCode, int] = {
    ErrorCode.AUTH_MISSING: 401,
    ErrorCode.AUTH_MALFORMED: 401,
    ErrorCode.AUTH_UNSIGNED_HEADER: 401,
    ErrorCode.AUTH_EXPIRED: 401,
    ErrorCode.AUTH_REPLAYED: 401,
    ErrorCode.AUTH_INVALID: 401,
    ErrorCode.BODY_HASH_MISMATCH: 400,
    ErrorCode.FORBIDDEN_AGENCY: 403,
    ErrorCode.FORBIDDEN_ROLE: 403,
    ErrorCode.SENDER_MISMATCH: 403,
    ErrorCode.MISSING_HEADER: 400,
    ErrorCode.INVALID_HEADER: 400,
    ErrorCode.INVALID_TO: 400,
    ErrorCode.UNKNOWN_AGENCY: 400,
    ErrorCode.MESSAGETYPE_MISMATCH: 400,
    ErrorCode.INVALID_EDXML: 400,
    ErrorCode.PACKET_TOO_LARGE: 413,
    ErrorCode.DOC_NOT_FOUND: 404,
    ErrorCode.UNKNOWN_DOCUMENT: 404,
    ErrorCode.ALREADY_DONE: 409,
    ErrorCode.CONFLICT: 409,
    ErrorCode.UNKNOWN_OPERATION: 404,
    ErrorCode.METHOD_NOT_ALLOWED: 405,
    ErrorCode.SERVICE_UNAVAILABLE: 503,
    ErrorCode.INTERNAL_ERROR: 500,
}


def vxp_scheme(window: timedelta = timedelta(minutes=5)) -> HmacScheme:
    """The node's HMAC request scheme under this API's header names."""
    return HmacScheme(
        algorithm=ALGORITHM,
        authorization=Header.AUTHORIZATION,
        date=Header.TIMESTAMP,
        nonce=Header.NONCE,
        content_sha256=Header.SHA256,
        window=window,
    )


VXP_SCHEME = vxp_scheme()


def operation_path(operation: Operation | str, prefix: str = PATH_PREFIX) -> str:
    return f"{prefix}/{Operation(operation).value}"


def sign_call(
    secret: str,
    system_id: str,
    operation: Operation | str,
    params: Mapping[str, str],
    body: bytes = b"",
    *,
    now: float | None = None,
    nonce: str | None = None,
    prefix: str = PATH_PREFIX,
) -> dict[str, str]:
    """Every header of one call: the parameters, ``timestamp``, ``nonce``, ``sha256`` and ``Authorization``
    (all parameters signed). ``now`` and ``nonce`` default to the current time and a fresh random nonce."""
    headers = {k: v for k, v in params.items() if v is not None}
    return sign_request(
        secret, system_id, method="POST", path=operation_path(operation, prefix), body=body, headers=headers,
        scheme=VXP_SCHEME, now=now, nonce=nonce,
    )
