"""edXML packets (QCVN 102:2016): model, writer, tolerant reader, schema, envelope signature.

The entry points::

    read_packet(data)                  -> DocumentPacket | StatusPacket   (safe, tolerant, warnings attached)
    write_document(packet, signer=…)   -> bytes                           (exact prefix layout, zip+base64)
    write_status(packet)               -> bytes
    append_trace(data, TraceHeader(…)) -> bytes                           (byte-level splice, signature kept)
    sign_packet(data, PacketSigner(…)) -> bytes
    verify_packet(data)                -> SignatureCheck (valid / weak / invalid / absent)
    validate(data)                     -> SchemaReport
"""

from docexchange.edxml._xml import ReadLimits
from docexchange.edxml.model import DocumentPacket, Packet, StatusPacket
from docexchange.edxml.reader import read_packet
from docexchange.edxml.schema import validate
from docexchange.edxml.signature import PacketSigner, SignatureCheck, SignatureStatus, sign_packet, verify_packet
from docexchange.edxml.writer import AttachmentEncoding, append_trace, write_document, write_status

__all__ = [
    "AttachmentEncoding",
    "DocumentPacket",
    "Packet",
    "PacketSigner",
    "ReadLimits",
    "SignatureCheck",
    "SignatureStatus",
    "StatusPacket",
    "append_trace",
    "read_packet",
    "sign_packet",
    "validate",
    "verify_packet",
    "write_document",
    "write_status",
]
