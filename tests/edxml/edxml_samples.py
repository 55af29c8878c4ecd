"""Sample packets, generated certificates and the real corpus, shared by the edXML tests."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.x509.oid import NameOID

from docexchange.clock import VN_TZ
from docexchange.edxml.model import (
    Attachment,
    Bussiness,
    Code,
    DocumentPacket,
    DocumentType,
    Organization,
    OtherInfo,
    Priority,
    PromulgationInfo,
    ResponseFor,
    SignerInfo,
    StaffInfo,
    StatusCode,
    StatusPacket,
    TraceHeader,
    TraceHeaderList,
    make_document_id,
)

CORPUS = Path(__file__).resolve().parents[2].parent / "shared" / "corpus" / "edxml"

PDF = (
    b"%PDF-1.7\n1 0 obj\n<< /Type /Catalog /Pages 2 0 R >>\nendobj\n"
    + b"% filler " * 2000
    + b"\n%%EOF\n"
)


def corpus_entries() -> list[dict[str, Any]]:
    return json.loads((CORPUS / "expected.json").read_text(encoding="utf-8"))


def sample_document(**changes: Any) -> DocumentPacket:
    code = Code("05", "UBND-VX")
    when = dt.date(2025, 1, 5)
    fields: dict[str, Any] = {
        "sender": Organization(
            "000.00.00.H49",
            organ_name="Ủy ban nhân dân tỉnh Quảng Ninh",
            organization_in_charge="Ủy ban nhân dân tỉnh Quảng Ninh",
            organ_add="Số 1 đường 25/4, Hạ Long",
            email="vanthu@quangninh.gov.vn",
        ),
        "to": (
            Organization("000.00.00.G22", organ_name="Văn phòng Chính phủ"),
            Organization("000.00.01.H49", organ_name="Sở Nội vụ tỉnh Quảng Ninh"),
        ),
        "document_id": make_document_id("000.00.00.H49", when, code),
        "code": code,
        "promulgation": PromulgationInfo(when, "Hạ Long"),
        "document_type": DocumentType("Công văn", "1", "0"),
        "subject": "V/v kết nối, liên thông phần mềm quản lý văn bản",
        "content": "Nội dung tóm tắt",
        "signer": SignerInfo("Nguyễn Văn An", "PHÓ CHỦ TỊCH", "KT. CHỦ TỊCH"),
        "due_date": dt.date(2025, 1, 20),
        "to_places": ("Như trên", "Lưu: VT"),
        "other_info": OtherInfo(
            priority=Priority.URGENT,
            sphere_of_promulgation="Liên thông văn bản quốc gia",
            typer_notation="TVC",
            promulgation_amount=2,
            page_amount=3,
            direction=False,
            appendixes=("Phụ lục I",),
        ),
        "response_for": (),
        "steering_type": "1",
        "trace": TraceHeaderList(
            (TraceHeader("000.00.00.H49", dt.datetime(2025, 1, 5, 8, 30, tzinfo=VN_TZ)),),
            Bussiness.new(staff_info=StaffInfo("Văn phòng", "Trần Thị Bình", "vt@qn.gov.vn", "0912000001")),
        ),
        "attachments": (Attachment("05-UBND-VX.pdf", PDF, "application/pdf", "Văn bản chính", "att-1"),),
    }
    fields.update(changes)
    return DocumentPacket(**fields)


def sample_status(**changes: Any) -> StatusPacket:
    fields: dict[str, Any] = {
        "sender": Organization("000.00.00.G22", organ_name="Văn phòng Chính phủ"),
        "response_for": ResponseFor(
            "000.00.00.H49", "05/UBND-VX", dt.date(2025, 1, 5), "000.00.00.H49,2025/01/05,05/UBND-VX"
        ),
        "status_code": StatusCode.ACCEPTED,
        "timestamp": dt.datetime(2025, 1, 5, 9, 15, 2, tzinfo=VN_TZ),
        "staff_info": StaffInfo("Phòng Hành chính", "Lê Văn Cường"),
        "description": "Đã tiếp nhận, vào sổ văn bản đến",
    }
    fields.update(changes)
    return StatusPacket(**fields)


def make_cert(
    key: Any,
    *,
    cn: str = "UBND tỉnh Quảng Ninh",
    days: int = 30,
    not_before: dt.datetime | None = None,
    key_usage: x509.KeyUsage | None = None,
) -> x509.Certificate:
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn), x509.NameAttribute(NameOID.COUNTRY_NAME, "VN")])
    start = not_before or dt.datetime.now(dt.UTC) - dt.timedelta(days=1)
    builder = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(start)
        .not_valid_after(start + dt.timedelta(days=days))
    )
    if key_usage is not None:
        builder = builder.add_extension(key_usage, critical=True)
    return builder.sign(key, hashes.SHA256())
