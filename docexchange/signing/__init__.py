"""Signing official PDFs as NĐ 30/2020 requires: PAdES B-B … B-LTA, person then seal, appendices, copies.

Typical use (see docs/signing.md)::

    from docexchange.signing import SigningService, make_letter

    with SigningService(settings) as service:
        signed = service.sign(make_letter(), service.person("h49-halong-chu-tich"))
        signed = service.sign(signed, service.seal("000.00.11.H49"))
"""

from docexchange.config import PadesLevel
from docexchange.signing.keys import SigningKey
from docexchange.signing.letter import LetterSpec, make_letter
from docexchange.signing.pades import (
    AppendixMark,
    CopyKind,
    CopyMark,
    PersonSigner,
    Placement,
    SealSigner,
    SigningService,
    async_sign_pdf,
    sign_pdf,
)
from docexchange.signing.precheck import TrustConfig

__all__ = [
    "AppendixMark",
    "CopyKind",
    "CopyMark",
    "LetterSpec",
    "PadesLevel",
    "PersonSigner",
    "Placement",
    "SealSigner",
    "SigningKey",
    "SigningService",
    "TrustConfig",
    "async_sign_pdf",
    "make_letter",
    "sign_pdf",
]
