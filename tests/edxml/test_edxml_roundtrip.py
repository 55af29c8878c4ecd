"""Property: any packet model → bytes → model is the same packet, and the bytes conform to our XSD."""

from __future__ import annotations

import datetime as dt
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from docexchange.clock import VN_TZ
from docexchange.edxml import append_trace, read_packet, sign_packet, validate, verify_packet, write_document
from docexchange.edxml.model import (
    Attachment,
    Bussiness,
    BussinessDocType,
    BussinessDocumentInfo,
    Code,
    DocumentPacket,
    DocumentType,
    Organization,
    OtherInfo,
    Priority,
    PromulgationInfo,
    Receiver,
    ReceiverType,
    ReplacementInfo,
    ResponseFor,
    SignerInfo,
    StaffInfo,
    StatusCode,
    StatusPacket,
    TraceHeader,
    TraceHeaderList,
    WarningCode,
)
from docexchange.edxml.reader import _magic
from docexchange.edxml.signature import SignatureStatus
from docexchange.edxml.writer import AttachmentEncoding, is_safe_attachment_name, write_status

XML_CHARS = st.characters(exclude_categories=("Cs", "Cc", "Cn"), include_characters="\t\n\r")


def text(max_size: int, min_size: int = 0) -> st.SearchStrategy[str]:
    return st.text(XML_CHARS, min_size=min_size, max_size=max_size)


def opt(strategy: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    return st.none() | strategy


def nonblank(max_size: int) -> st.SearchStrategy[str]:
    return text(max_size, 1).filter(lambda s: s.strip() != "")


def ident(max_size: int) -> st.SearchStrategy[str]:
    return text(max_size, 1).filter(lambda s: s != "" and s == s.strip())


@st.composite
def organ_ids(draw: st.DrawFn) -> str:
    letter = draw(st.sampled_from("ABCDEGHK"))
    number = draw(st.integers(1, 99))
    level = draw(st.integers(1, 4))
    y = draw(st.integers(1, 99)) if level >= 2 else 0
    z = draw(st.integers(1, 99)) if level >= 3 else 0
    v = draw(st.integers(1, 999)) if level >= 4 else 0
    return f"{v:03d}.{z:02d}.{y:02d}.{letter}{number:02d}"


moments = st.datetimes(
    min_value=dt.datetime(1900, 1, 2),
    max_value=dt.datetime(2200, 1, 1),
    timezones=st.sampled_from([VN_TZ, dt.UTC, dt.timezone(dt.timedelta(hours=-5))]),
).map(lambda d: d.replace(microsecond=0))
dates = st.dates(min_value=dt.date(1, 1, 1), max_value=dt.date(9999, 12, 31))

organizations = st.builds(
    Organization,
    organ_id=organ_ids(),
    organ_name=opt(text(200)),
    organization_in_charge=opt(text(60)),
    organ_add=opt(text(60)),
    email=opt(text(30)),
    telephone=opt(text(20)),
    fax=opt(text(20)),
    website=opt(text(30)),
)
staff = st.builds(StaffInfo, opt(text(40)), opt(text(40)), opt(text(30)), opt(text(20)))
traces = st.builds(TraceHeader, organ_ids(), moments)


@st.composite
def bussinesses(draw: st.DrawFn) -> Bussiness:
    kind = draw(st.sampled_from(BussinessDocType))
    info = None
    if kind is BussinessDocType.UPDATE:
        info = draw(
            opt(
                st.builds(
                    BussinessDocumentInfo,
                    opt(st.sampled_from(["0", "1"])),
                    opt(st.sampled_from(["0", "1"])),
                    st.lists(st.builds(Receiver, organ_ids(), st.sampled_from(ReceiverType)), max_size=3).map(tuple),
                )
            )
        )
    replacements: tuple[ReplacementInfo, ...] = ()
    if kind is BussinessDocType.REPLACE:
        replacements = tuple(
            draw(
                st.lists(
                    st.builds(ReplacementInfo, ident(60), st.lists(organ_ids(), max_size=3).map(tuple)),
                    min_size=1,
                    max_size=3,
                )
            )
        )
    return Bussiness(
        doc_type=kind,
        document_id=draw(ident(60) if kind is not BussinessDocType.NEW else opt(ident(60))),
        reason=draw(opt(text(80))),
        paper=draw(opt(st.sampled_from(["0", "1"]))),
        staff_info=draw(opt(staff)),
        document_info=info,
        replacements=replacements,
    )


response_fors = st.builds(
    ResponseFor, opt(organ_ids()), opt(ident(40)), opt(dates), opt(ident(60))
).filter(lambda r: any(v is not None for v in (r.organ_id, r.code, r.promulgation_date, r.document_id)))

CONTENT_TYPES = [
    "application/pdf",
    "application/msword",
    "text/plain",
    "image/png",
    "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
]

attachments = st.builds(
    Attachment,
    name=st.text(st.characters(exclude_categories=("Cs", "Cc", "Cn", "Zl", "Zp")), min_size=1, max_size=40).filter(
        is_safe_attachment_name
    ),
    content=st.binary(max_size=4000).filter(lambda b: _magic(b) is None),
    content_type=st.sampled_from(CONTENT_TYPES),
    description=opt(text(60)),
    content_id=st.from_regex(r"[A-Za-z0-9._@-]{1,36}", fullmatch=True).filter(
        lambda c: not c.lower().startswith("cid:")
    ),
)


@st.composite
def documents(draw: st.DrawFn) -> DocumentPacket:
    sender = draw(organizations)
    return DocumentPacket(
        sender=sender,
        to=tuple(draw(st.lists(organizations, min_size=1, max_size=3))),
        document_id=draw(ident(80)),
        code=Code(draw(ident(11)), draw(ident(30))),
        promulgation=PromulgationInfo(draw(dates), draw(opt(text(40)))),
        document_type=DocumentType(draw(nonblank(100)), draw(opt(ident(4) | st.just(""))), draw(opt(ident(4)))),
        subject=draw(nonblank(500)),
        content=draw(opt(text(200))),
        signer=draw(opt(st.builds(SignerInfo, opt(text(50)), opt(text(100)), opt(text(40))))),
        due_date=draw(opt(dates)),
        to_places=tuple(draw(st.lists(nonblank(40), max_size=3))),
        other_info=draw(
            opt(
                st.builds(
                    OtherInfo,
                    priority=opt(st.sampled_from(Priority)),
                    sphere_of_promulgation=opt(text(40)),
                    typer_notation=opt(text(10)),
                    promulgation_amount=opt(st.integers(0, 10**6)),
                    page_amount=opt(st.integers(0, 999)),
                    direction=opt(st.booleans()),
                    appendixes=st.lists(nonblank(40), max_size=3).map(tuple),
                )
            )
        ),
        response_for=tuple(draw(st.lists(response_fors, max_size=2))),
        steering_type=draw(opt(ident(3))),
        trace=TraceHeaderList(tuple(draw(st.lists(traces, max_size=3))), draw(opt(bussinesses()))),
        attachments=tuple(draw(st.lists(attachments, max_size=3, unique_by=lambda a: a.content_id))),
    )


statuses = st.builds(
    StatusPacket,
    sender=organizations,
    response_for=st.builds(ResponseFor, organ_ids(), ident(40), dates, ident(60)),
    status_code=st.sampled_from(StatusCode),
    timestamp=moments,
    staff_info=opt(staff),
    description=opt(text(120)),
    trace=st.lists(traces, max_size=3).map(lambda t: TraceHeaderList(tuple(t))),
)

# What the reader may legitimately note about our own output: random DocumentIds are not "OrganId,date,code",
# a packet may lack Bussiness, two attachments may share a name.
ALLOWED = {
    WarningCode.NONSTANDARD_DOCUMENT_ID,
    WarningCode.DOCUMENT_ID_SENDER_MISMATCH,
    WarningCode.BUSSINESS_MISSING,
    WarningCode.DUPLICATE_ATTACHMENT_NAME,
}
SETTINGS = settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@SETTINGS
@given(packet=documents(), encoding=st.sampled_from(AttachmentEncoding))
def test_document_round_trip(packet: DocumentPacket, encoding: AttachmentEncoding) -> None:
    data = write_document(packet, encoding=encoding)
    back = read_packet(data)
    assert back == packet
    assert {w.code for w in back.warnings} <= ALLOWED
    report = validate(data)
    assert report.valid, report.problems


@SETTINGS
@given(packet=statuses)
def test_status_round_trip(packet: StatusPacket) -> None:
    data = write_status(packet)
    back = read_packet(data)
    assert back == packet
    assert not back.warnings
    assert validate(data).valid


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(packet=st.one_of(documents(), statuses), hops=st.lists(traces, min_size=1, max_size=3))
def test_trace_splice_and_signature_on_any_packet(packet: Any, hops: list[TraceHeader], rsa_signer) -> None:
    data = write_document(packet) if isinstance(packet, DocumentPacket) else write_status(packet)
    data = sign_packet(data, rsa_signer)
    for hop in hops:
        data = append_trace(data, hop)
    back = read_packet(data)
    assert back.trace.headers == packet.trace.headers + tuple(hops)
    assert verify_packet(data).status is SignatureStatus.VALID
    assert validate(data).valid
