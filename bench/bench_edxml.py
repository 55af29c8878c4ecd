"""edXML build and parse: throughput and peak memory, as ratios against plain lxml in the same run.

    python bench/bench_edxml.py            # 1 MB and 20 MB attachments
    python bench/bench_edxml.py --sizes 1 5 20 50

For each attachment size (a PDF-like, incompressible payload):

* throughput (MB of attachment per second) of ``write_document`` (ZIP + base64, the default; and raw base64),
  ``read_packet`` (safe, streaming, unzip), ``append_trace`` and ``verify_packet``;
* the baseline, measured in the same run on the same bytes: ``lxml.etree.fromstring`` (plain parse, huge_tree)
  and ``lxml.etree.tostring`` of an equivalent tree (plain build) — ratios are ours / baseline time;
* peak memory *added* by each operation, as a multiple of the attachment size, measured in a fresh process
  after a warm-up on a small packet: the process high-water mark (VmHWM, reset through /proc/self/clear_refs,
  so C allocations by libxml2 and zlib count) minus the resident size just before the operation, with glibc
  told to return large blocks to the system (MALLOC_MMAP_THRESHOLD_, malloc_trim) so reused heap does not
  hide anything; and the Python-heap peak seen by tracemalloc. The input (model or bytes) exists before.
"""

from __future__ import annotations

import argparse
import base64
import ctypes
import datetime as dt
import gc
import json
import os
import subprocess
import sys
import time
import tracemalloc
from collections.abc import Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from lxml import etree

from docexchange.clock import VN_TZ
from docexchange.edxml import append_trace, read_packet, verify_packet, write_document
from docexchange.edxml.model import (
    QCVN_NS,
    Attachment,
    Bussiness,
    Code,
    DocumentPacket,
    DocumentType,
    Organization,
    PromulgationInfo,
    TraceHeader,
    TraceHeaderList,
)
from docexchange.edxml.writer import AttachmentEncoding

MB = 1024 * 1024


def pdf_like(size: int) -> bytes:
    head = b"%PDF-1.7\n%\xe2\xe3\xcf\xd3\n"
    return head + os.urandom(size - len(head))


def packet(content: bytes) -> DocumentPacket:
    when = dt.date(2025, 1, 5)
    return DocumentPacket(
        sender=Organization("000.00.00.H49", organ_name="Ủy ban nhân dân tỉnh Quảng Ninh"),
        to=(Organization("000.00.00.G22", organ_name="Văn phòng Chính phủ"),),
        document_id="000.00.00.H49,2025/01/05,05/UBND-VX",
        code=Code("05", "UBND-VX"),
        promulgation=PromulgationInfo(when, "Hạ Long"),
        document_type=DocumentType("Công văn"),
        subject="V/v đo hiệu năng gói tin edXML",
        trace=TraceHeaderList(
            (TraceHeader("000.00.00.H49", dt.datetime(2025, 1, 5, 8, 0, tzinfo=VN_TZ)),), Bussiness.new()
        ),
        attachments=(Attachment("van-ban.pdf", content, "application/pdf", content_id="vb-1"),),
    )


def plain_tree(content: bytes) -> Any:
    """What plain lxml would build: the same envelope and the base64 text in one element."""
    q = "{" + QCVN_NS + "}"
    root = etree.Element(q + "edXML", nsmap={None: QCVN_NS})
    env = etree.SubElement(root, q + "edXMLEnvelope", nsmap={"edXML": QCVN_NS})
    etree.SubElement(etree.SubElement(env, q + "edXMLHeader"), q + "MessageHeader").text = "x"
    att = etree.SubElement(etree.SubElement(root, q + "AttachmentEncoded"), q + "Attachment")
    etree.SubElement(att, q + "ContentTransferEncoded").text = base64.b64encode(content).decode("ascii")
    return root


def best_of(fn: Callable[[], Any], repeat: int) -> float:
    times = []
    for _ in range(repeat):
        gc.collect()
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return min(times)


# --------------------------------------------------------------------------------------------- memory (child)


def _rss_kib(field: str) -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    raise RuntimeError(field)


def _warm_up(op: str, hop: TraceHeader) -> None:
    """Run ``op`` once on a small packet (module tables, zlib and libxml2 state): steady state is measured."""
    small_model = packet(pdf_like(64 * 1024))
    small = write_document(small_model)
    if op.startswith("build"):
        write_document(small_model, encoding=AttachmentEncoding.RAW if op == "build-raw" else AttachmentEncoding.ZIP)
    elif op == "parse":
        read_packet(small)
    elif op == "append-trace":
        append_trace(small, hop)
    elif op == "verify":
        verify_packet(small)
    else:
        etree.fromstring(small)


def child(op: str, size_mb: float) -> None:
    size = int(size_mb * MB)
    content = pdf_like(size)
    model = packet(content)
    data = write_document(model)
    hop = TraceHeader("000.00.00.G22", dt.datetime(2025, 1, 5, 9, 0, tzinfo=VN_TZ))
    operations: dict[str, Callable[[], Any]] = {
        "build-zip": lambda: write_document(model),
        "build-raw": lambda: write_document(model, encoding=AttachmentEncoding.RAW),
        "parse": lambda: read_packet(data),
        "append-trace": lambda: append_trace(data, hop),
        "verify": lambda: verify_packet(data),
        "lxml-parse": lambda: etree.fromstring(data, etree.XMLParser(huge_tree=True)),
    }
    fn = operations[op]
    _warm_up(op, hop)
    gc.collect()
    ctypes.CDLL("libc.so.6").malloc_trim(0)
    Path("/proc/self/clear_refs").write_text("5")  # reset the high-water mark to the current RSS
    before = _rss_kib("VmRSS")
    result = fn()
    peak = _rss_kib("VmHWM")
    del result
    gc.collect()
    tracemalloc.start()
    base, _ = tracemalloc.get_traced_memory()
    result = fn()
    _, traced_peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    del result
    print(json.dumps({"extra_bytes": (peak - before) * 1024, "traced_bytes": traced_peak - base, "size": size}))


def peak_ratio(op: str, size_mb: float) -> tuple[float, float] | None:
    """(process peak, Python-heap peak) added by ``op``, as multiples of the attachment size."""
    env = {**os.environ, "MALLOC_MMAP_THRESHOLD_": "65536", "MALLOC_TRIM_THRESHOLD_": "65536"}
    proc = subprocess.run(
        [sys.executable, __file__, "--child", op, str(size_mb)], capture_output=True, text=True, timeout=600, env=env
    )
    if proc.returncode != 0:
        print(f"  (memory measurement of {op} failed: {proc.stderr.strip().splitlines()[-1:]})", file=sys.stderr)
        return None
    out = json.loads(proc.stdout.strip().splitlines()[-1])
    return float(out["extra_bytes"]) / out["size"], float(out["traced_bytes"]) / out["size"]


# --------------------------------------------------------------------------------------------- main


def bench(size_mb: float) -> None:
    size = int(size_mb * MB)
    repeat = 7 if size_mb <= 2 else 3
    content = pdf_like(size)
    model = packet(content)
    data = write_document(model)
    assert read_packet(data).attachments[0].content == content
    tree = plain_tree(content)
    hop = TraceHeader("000.00.00.G22", dt.datetime(2025, 1, 5, 9, 0, tzinfo=VN_TZ))
    parser = etree.XMLParser(huge_tree=True)

    t_lxml_parse = best_of(lambda: etree.fromstring(data, parser), repeat)
    t_lxml_build = best_of(lambda: etree.tostring(tree), repeat)
    rows = [
        ("build (zip+base64)", best_of(lambda: write_document(model), repeat), t_lxml_build, "build-zip"),
        (
            "build (raw base64)",
            best_of(lambda: write_document(model, encoding=AttachmentEncoding.RAW), repeat),
            t_lxml_build,
            "build-raw",
        ),
        ("parse (read_packet)", best_of(lambda: read_packet(data), repeat), t_lxml_parse, "parse"),
        ("append_trace", best_of(lambda: append_trace(data, hop), repeat), t_lxml_parse, "append-trace"),
        ("verify_packet (unsigned)", best_of(lambda: verify_packet(data), repeat), t_lxml_parse, "verify"),
    ]
    print(f"\nAttachment {size_mb:g} MB (packet {len(data) / MB:.2f} MB), best of {repeat}")
    print(f"  baseline lxml.fromstring : {t_lxml_parse * 1000:8.1f} ms  {size_mb / t_lxml_parse:8.1f} MB/s")
    print(f"  baseline lxml.tostring   : {t_lxml_build * 1000:8.1f} ms  {size_mb / t_lxml_build:8.1f} MB/s")
    base_mem = peak_ratio("lxml-parse", size_mb)
    print(f"  {'operation':26} {'time':>9} {'MB/s':>9} {'× baseline':>11}   peak memory × attachment")
    print(f"  {'':26} {'':>9} {'':>9} {'time':>11}   {'process':>8} {'python':>8} {'× lxml':>8}")
    for name, t, base, op in rows:
        mem = peak_ratio(op, size_mb)
        if mem is None:
            mem_s = f"{'n/a':>8} {'n/a':>8} {'n/a':>8}"
        else:
            rel = f"{mem[0] / base_mem[0]:8.2f}" if base_mem and base_mem[0] > 0 else f"{'n/a':>8}"
            mem_s = f"{mem[0]:8.2f} {mem[1]:8.2f} {rel}"
        print(f"  {name:26} {t * 1000:7.1f}ms {size_mb / t:9.1f} {t / base:11.2f}   {mem_s}")
    if base_mem is not None:
        print(f"  {'lxml.fromstring (baseline)':26} {'':>9} {'':>9} {'1.00':>11}   {base_mem[0]:8.2f} {'(C heap)':>8}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", type=float, nargs="+", default=[1, 20], help="attachment sizes in MB")
    parser.add_argument("--child", nargs=2, metavar=("OP", "MB"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(args.child[0], float(args.child[1]))
        return
    print(f"Python {sys.version.split()[0]}, lxml {etree.__version__}, libxml2 {etree.LIBXML_VERSION}")
    for size in args.sizes:
        bench(size)


if __name__ == "__main__":
    main()
