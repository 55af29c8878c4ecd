"""Verification throughput: documents verified per second, ours against raw pyHanko in the same run, as ratios.

    python bench/bench_verify.py                  # 50 KB, 1 MB, 10 MB; 1 and 2 signatures; B-LT; offline
    python bench/bench_verify.py --sizes 1MB --docs 12 --rounds 7

What is measured, for each document size and signature count:

* **the stream**: ``--docs`` distinct letters (different text, different signers of the same PKI: person then
  the agency's seal), signed B-LT by our signing module, as an axis node receives them;
* **raw pyHanko** (the baseline): stock usage, per document — ``PdfFileReader``, the DSS read into a fresh
  ``ValidationContext`` (the document's anchors, no fetching), ``validate_pdf_signature`` on each signature.
  Runs in this process, which never loads our pyHanko adapters;
* **ours**: :class:`docexchange.verify.Verifier` as deployed — its sandboxed worker process, offline, warm
  (caches of certificate paths and revocation answers filled by the stream itself), inter-process copy of the
  document and of the report included;
* **ours, cold**: the same with every cache emptied before each document (what a verifier that reuses
  nothing would cost).

Both verify every document completely each time (digest, signature, chain, revocation, time-stamps, difference
analysis); the bench checks that both find every document valid. Rounds alternate between contenders and the
median per-document time is reported, so a busy machine slows both alike. Figures are documents per second and
ratios to pyHanko (higher is better).
"""

from __future__ import annotations

import argparse
import io
import os
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from dataclasses import replace
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))

from asn1crypto import x509 as asn1_x509
from cryptography.hazmat.primitives import serialization
from pyhanko.pdf_utils.reader import PdfFileReader
from pyhanko.sign.validation import validate_pdf_signature
from pyhanko.sign.validation.dss import DocumentSecurityStore

from docexchange.config import Settings, load_settings
from docexchange.directory import Directory, load_directory
from docexchange.pki.devpki import DevPki
from docexchange.signing import LetterSpec, SigningService, make_letter
from docexchange.signing.letter import parse_size
from docexchange.verify import Verifier
from docexchange.verify.report import Outcome
from helpers import free_port, make_settings

AGENCY = "000.00.11.H49"
OFFICIALS = ("h49-halong-chu-tich", "h49-halong-pho-chu-tich")


def build_project(base: Path) -> tuple[Settings, Path]:
    settings = make_settings(base, pki_port=free_port())
    DevPki.from_settings(settings).init(load_directory(settings.directory_file))
    cfg = base / "config" / "docexchange.toml"
    cfg.write_text(cfg.read_text().replace("port = 8480", f"port = {settings.pki.port}"))
    return load_settings(cfg), cfg


def start_services(cfg: Path, settings: Settings) -> subprocess.Popen[bytes]:
    env = {**os.environ, "DOCEXCHANGE_CONFIG": str(cfg)}
    proc = subprocess.Popen([sys.executable, "-m", "docexchange", "pki", "serve"], env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 60
    while time.time() < deadline:
        try:
            with urllib.request.urlopen(f"{settings.pki.base_url}/health", timeout=1) as r:
                if r.status == 200:
                    return proc
        except OSError:
            time.sleep(0.2)
    proc.kill()
    raise SystemExit("trust services did not start")


def make_stream(settings: Settings, directory: Directory, size: int, sigs: int, count: int) -> list[bytes]:
    docs = []
    with SigningService(settings) as service:
        for i in range(count):
            official = OFFICIALS[i % len(OFFICIALS)]
            spec = LetterSpec.for_official(directory, official, number=f"{i + 1:02d}",
                                           subject=f"Văn bản thử nghiệm số {i + 1}", target_bytes=size)
            doc = service.sign(make_letter(spec), service.person(official), level="B-LT")
            if sigs == 2:
                doc = service.sign(doc, service.seal(AGENCY), level="B-LT")
            docs.append(doc)
    return docs


class RawPyhanko:
    """Stock pyHanko validation of a B-LT document, offline (validation data from the DSS)."""

    def __init__(self, root_der: bytes) -> None:
        self.root = asn1_x509.Certificate.load(root_der)

    def verify(self, data: bytes) -> bool:
        reader = PdfFileReader(io.BytesIO(data))
        dss = DocumentSecurityStore.read_dss(reader)
        ok = True
        for sig in reader.embedded_signatures:
            vc = dss.as_validation_context({"trust_roots": [self.root], "allow_fetching": False})
            status = validate_pdf_signature(sig, vc)
            ok = ok and status.bottom_line
        return ok


def per_doc_times(fn, docs: list[bytes]) -> list[float]:  # type: ignore[no-untyped-def]
    out = []
    for d in docs:
        t = time.perf_counter()
        fn(d)
        out.append(time.perf_counter() - t)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", nargs="+", default=["50KB", "1MB", "10MB"])
    parser.add_argument("--sigs", nargs="+", type=int, default=[1, 2])
    parser.add_argument("--docs", type=int, default=8, help="distinct documents in each stream")
    parser.add_argument("--rounds", type=int, default=5, help="alternating measurement rounds")
    args = parser.parse_args()

    tmp = Path(tempfile.mkdtemp(prefix="bench-verify-"))
    settings, cfg = build_project(tmp)
    directory = load_directory(settings.directory_file)
    services = start_services(cfg, settings)
    try:
        streams = {}
        for size_text in args.sizes:
            for sigs in args.sigs:
                print(f"signing {args.docs} × {size_text} with {sigs} signature(s)…", file=sys.stderr)
                streams[(size_text, sigs)] = make_stream(settings, directory, parse_size(size_text), sigs, args.docs)
    finally:
        services.kill()
        services.wait()
    # from here on everything is offline: the services are gone
    offline = replace(settings, verification=replace(settings.verification, allow_online=False))
    root_der = DevPki.open(settings).root_cert.public_bytes(serialization.Encoding.DER)
    raw = RawPyhanko(root_der)
    rows = []
    with Verifier.from_settings(offline, directory) as ours:
        def warm(d: bytes) -> None:
            report = ours.verify_pdf(d, offline=True)
            assert report.outcome == Outcome.VALID, report.render_text("en")

        def cold(d: bytes) -> None:
            ours.clear_caches()
            warm(d)

        for (size_text, sigs), docs in streams.items():
            for d in docs:  # agreement first: every document valid for both
                assert raw.verify(d), "pyHanko does not find the document valid"
                warm(d)
            times: dict[str, list[float]] = {"pyhanko": [], "ours": [], "cold": []}
            for _ in range(args.rounds):
                times["pyhanko"] += per_doc_times(raw.verify, docs)
                times["ours"] += per_doc_times(warm, docs)
                times["cold"] += per_doc_times(cold, docs)
            med = {k: statistics.median(v) for k, v in times.items()}
            rows.append((size_text, sigs, len(docs[0]), med))
            print(f"  {size_text:>5} {sigs} sig: pyHanko {med['pyhanko'] * 1000:7.1f} ms, "
                  f"ours {med['ours'] * 1000:7.1f} ms (cold {med['cold'] * 1000:7.1f} ms)", file=sys.stderr)
        stats = ours.cache_stats()
    print()
    print("Verification throughput, B-LT, offline — documents per second (median per document), ratios to pyHanko")
    print(f"{'size':>6} {'sigs':>4} {'bytes':>10} {'pyHanko/s':>10} {'ours/s':>9} {'ratio':>7} {'cold/s':>8} "
          f"{'ratio':>7}")
    for size_text, sigs, nbytes, med in rows:
        p, o, c = (1 / med["pyhanko"], 1 / med["ours"], 1 / med["cold"])
        print(f"{size_text:>6} {sigs:>4} {nbytes:>10} {p:>10.1f} {o:>9.1f} {o / p:>6.2f}× {c:>8.1f} {c / p:>6.2f}×")
    print()
    print("worker caches (entries, hits, misses):",
          ", ".join(f"{k}={v}" for k, v in stats.items() if v[0] or v[1] or v[2]))


if __name__ == "__main__":
    main()
