"""docs/national-axis-api.md says what the code does: the worked signature example reproduces (with our
signing code, with the doc's own standard-library snippet, and is accepted by the node's authentication), and
the doc's operation and error-code tables are exactly the code's."""

from __future__ import annotations

import ast
import hashlib
import re
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from docexchange.client.wire import (
    ERROR_HTTP,
    PATH_PREFIX,
    VXP_SCHEME,
    ErrorCode,
    Operation,
    operation_path,
    sign_call,
    vxp_scheme,
)
from docexchange.clock import FixedClock
from docexchange.errors import AuthError, ReplayedRequest, RequestExpired
from docexchange.exchange.sqlite_store import SqliteStore
from docexchange.exchange.store import CredentialRecord
from docexchange.web.auth import Credentials, Role, SecretBox, SignedRequest, string_to_sign
from helpers import REPO

DOC = REPO / "docs" / "national-axis-api.md"


def _block(text: str, name: str) -> str:
    m = re.search(rf"<!-- example:{re.escape(name)} -->\n```[a-z]*\n(.*?)\n```", text, re.S)
    assert m, f"no example block {name!r} in {DOC.name}"
    return m.group(1)


def _kv(block: str, sep: str) -> dict[str, str]:
    out = {}
    for line in block.splitlines():
        k, _, v = line.partition(sep)
        out[k.strip()] = v.strip()
    return out


@pytest.fixture(scope="module")
def example() -> dict[str, Any]:
    text = DOC.read_text("utf-8")
    inputs = _kv(_block(text, "inputs"), " : ")
    inputs = {k: v.split("(")[0].strip() if k in ("timestamp", "operation") else v for k, v in inputs.items()}
    return {
        "text": text,
        "inputs": inputs,
        "body": (_block(text, "body") + "\n").encode("utf-8"),
        "string_to_sign": _block(text, "string-to-sign"),
        "headers": _kv(_block(text, "headers"), ": "),
    }


def _params(inputs: dict[str, str]) -> dict[str, str]:
    return {k: inputs[k] for k in ("from", "to", "servicetype", "messagetype")}


def test_example_body_is_what_the_doc_says(example: dict[str, Any]) -> None:
    body = example["body"]
    assert f"{len(body)} bytes" in example["text"]
    assert example["headers"]["sha256"] == hashlib.sha256(body).hexdigest()


def test_example_headers_come_from_our_signing_code(example: dict[str, Any]) -> None:
    i = example["inputs"]
    headers = sign_call(i["secret"], i["system id"], Operation(i["operation"]), _params(i), example["body"],
                        now=int(i["timestamp"]), nonce=i["nonce"])
    assert headers == example["headers"]


def test_example_string_to_sign(example: dict[str, Any]) -> None:
    h = example["headers"]
    signed = h["Authorization"].split("SignedHeaders=")[1].split(",")[0].split(";")
    sts = string_to_sign(VXP_SCHEME, method="POST", path=operation_path(Operation.SEND_EDOC), query=(),
                         headers=h, signed=signed, body_sha256=h["sha256"])
    assert sts.decode("utf-8") == example["string_to_sign"]


def test_the_docs_python_snippet_reproduces_the_example(example: dict[str, Any]) -> None:
    (snippet,) = re.findall(r"```python\n(.*?)\n```", example["text"], re.S)
    namespace: dict[str, Any] = {}
    exec(compile(snippet, str(DOC), "exec"), namespace)
    i = example["inputs"]
    headers = namespace["sign"](i["secret"], i["system id"], f"{PATH_PREFIX}/{i['operation']}", _params(i),
                                example["body"], int(i["timestamp"]), i["nonce"])
    assert headers == example["headers"]


@pytest.fixture
async def store(tmp_path: Path) -> Any:
    s = SqliteStore(tmp_path / "node.sqlite", "lgsp-h49")
    await s.open()
    yield s
    await s.close()


async def test_the_node_accepts_the_example_and_refuses_its_replay(store: SqliteStore,
                                                                    example: dict[str, Any]) -> None:
    i, h = example["inputs"], example["headers"]
    box = SecretBox("test-passphrase", "docexchange-node:lgsp-h57")
    at = datetime.fromtimestamp(int(i["timestamp"]), UTC)
    await store.put_credential(CredentialRecord(
        system_id=i["system id"], role="agency", agencies=("000.00.01.H57",),
        secret_box=box.seal(i["secret"].encode(), i["system id"]), created_at=at,
    ))
    request = SignedRequest("POST", "/vxp/sendEdoc", (), h, example["body"])

    late = Credentials(store, box, FixedClock(at + timedelta(seconds=301)), scheme=vxp_scheme())
    with pytest.raises(RequestExpired):
        await late.authenticate(request)
    tampered = SignedRequest("POST", "/vxp/sendEdoc", (), {**h, "to": '["000.00.31.H57"]'}, example["body"])
    creds = Credentials(store, box, FixedClock(at + timedelta(seconds=299)), scheme=vxp_scheme())
    with pytest.raises(AuthError) as bad:
        await creds.authenticate(tampered)
    assert not isinstance(bad.value, (RequestExpired, ReplayedRequest))

    principal = await creds.authenticate(request)
    assert (principal.system_id, principal.role, principal.agencies) == (i["system id"], Role.AGENCY,
                                                                         frozenset({"000.00.01.H57"}))
    with pytest.raises(ReplayedRequest):
        await creds.authenticate(request)


def test_error_code_table_is_the_codes(example: dict[str, Any]) -> None:
    section = example["text"].split("## 6. Error codes", 1)[1].split("\n## ", 1)[0]
    rows = re.findall(r"^\| `([A-Z_]+)` \| (\d{3}) \|", section, re.M)
    assert dict((code, int(http)) for code, http in rows) == {c.value: ERROR_HTTP[c] for c in ErrorCode}
    assert [code for code, _ in rows] == [c.value for c in ErrorCode], "same order as the enum"


def test_operation_table_is_the_operations(example: dict[str, Any]) -> None:
    section = example["text"].split("## 1. Connecting", 1)[1].split("\n## ", 1)[0]
    names = re.findall(r"^\| `([A-Za-z]+)` \|", section, re.M)
    assert names == [o.value for o in Operation]
    for op in Operation:
        assert f"`{op.value}`" in example["text"].split("## 5. Operations", 1)[1]


def test_the_doc_only_client_imports_no_docexchange_code() -> None:
    """tests/vxp/test_vxp.py speaks the API from the doc alone: standard library and aiohttp."""
    tree = ast.parse((Path(__file__).parent / "test_vxp.py").read_text("utf-8"))
    modules = [a.name for n in ast.walk(tree) if isinstance(n, ast.Import) for a in n.names]
    modules += [n.module or "" for n in ast.walk(tree) if isinstance(n, ast.ImportFrom)]
    assert modules, "parsed"
    assert not [m for m in modules if m.split(".")[0] not in (
        "__future__", "asyncio", "base64", "hashlib", "hmac", "io", "json", "secrets", "ssl", "time", "xml",
        "zipfile", "collections", "dataclasses", "datetime", "typing", "aiohttp", "pytest", "pytest_asyncio")]
