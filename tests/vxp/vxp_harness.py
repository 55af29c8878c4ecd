"""Helpers of the national-axis-style API tests (server side: signing letters, reading a node's store)."""

from __future__ import annotations

import hashlib
import sqlite3
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

from docexchange.clock import VN_TZ
from docexchange.config import Settings
from docexchange.directory import load_directory
from docexchange.exchange.backends import sqlite_path
from docexchange.exchange.packets import OutgoingDocument, document_packet

HONG_GAI = "000.01.11.H49"
"""UBND phường Hồng Gai (a commune of Quảng Ninh, home node lgsp-h49)."""
HA_LONG = "000.00.11.H49"
SNV_HUE = "000.00.01.H57"
"""Sở Nội vụ thành phố Huế (a department of Huế, home node lgsp-h57)."""
THUAN_HOA = "000.00.31.H57"
"""UBND phường Thuận Hóa (Huế)."""

OFFICIALS = {HONG_GAI: "h49-honggai-chu-tich", HA_LONG: "h49-halong-chu-tich"}


@dataclass(frozen=True)
class Letter:
    sender: str
    recipients: tuple[str, ...]
    document_id: str
    code: str
    pdf: bytes = field(repr=False)
    packet: bytes = field(repr=False)


def sign_letter(settings: Settings, sender: str, recipients: Sequence[str], *, number: str,
                subject: str = "Về việc phối hợp liên thông văn bản điện tử") -> Letter:
    """A letter of ``sender`` signed by its chairman then sealed, in an edXML document packet (no trace yet)."""
    from docexchange.signing import LetterSpec, SigningService, make_letter

    directory = load_directory(settings.directory_file)
    official = OFFICIALS[sender]
    today = datetime.now(VN_TZ).date()
    with SigningService(settings) as service:
        spec = LetterSpec.for_official(directory, official, number=number, issued=today, subject=subject,
                                       doc_type="Công văn")
        pdf = service.sign(make_letter(spec), service.person(official))
        pdf = service.sign(pdf, service.seal(sender))
    notation = spec.reference.split("/", 1)[1]  # e.g. UBND-VP, as printed on the letter
    doc = OutgoingDocument(
        to=tuple(recipients), subject=subject, code_number=number, code_notation=notation, type_name="Công văn",
        promulgation_date=today, signer_full_name=spec.signer_name, signer_position=spec.position,
        signer_competence=spec.competence, priority=1, document_name=f"cv-{number}.pdf",
    )
    _model, packet = document_packet(directory, sender, doc, pdf, at=datetime.now(VN_TZ))
    document_id = f"{sender},{today:%Y/%m/%d},{number}/{notation}"
    return Letter(sender, tuple(recipients), document_id, f"{number}/{notation}", pdf, packet)


def snapshot(settings: Settings, node_id: str, *, nonces: bool) -> str:
    """A digest of everything a node's store holds (its two SQLite files, every table, every row), read-only.
    ``nonces=False`` leaves out the replay-protection table (a call that passed authentication records its
    nonce, whatever happens next)."""
    meta = Path(sqlite_path(settings, node_id))
    files = [meta, meta.with_name(meta.stem + ".payloads" + (meta.suffix or ".sqlite"))]
    h = hashlib.sha256()
    for path in files:
        conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
        try:
            tables = [r[0] for r in conn.execute(
                "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%' ORDER BY name")]
            for table in tables:
                if table == "nonces" and not nonces:
                    continue
                h.update(f"\x00{path.name}:{table}\x00".encode())
                for row in sorted(repr(r) for r in conn.execute(f"SELECT * FROM {table}")):
                    h.update(row.encode())
        finally:
            conn.close()
    return h.hexdigest()
