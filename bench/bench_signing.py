"""PAdES signing: signatures per second and per-signature peak memory, as ratios against raw pyHanko in the same run.

    python bench/bench_signing.py                       # 50 KB, 1 MB, 10 MB letters × B-B, B-T, B-LT
    python bench/bench_signing.py --sizes 1MB --levels B-B --profile

What is measured, for each letter size and level, on one core (one thread; the TSA/OCSP/CRL services of a
fresh dev PKI run in a separate process, so their CPU is not ours):

* **ours** — a warm :class:`~docexchange.signing.SigningService`: the official's person signature with the blue
  signature image, into the template's empty field (keys kept loaded, certificate checks reused within
  ``precheck_cache_seconds``, reserved signature size, CMS container from a per-signer profile);
* **pyHanko stock** — the same signature the way pyHanko's documentation does it: ``SimpleSigner.load_pkcs12``
  per call, a ``StaticStampStyle`` over the same PNG, an ``HTTPTimeStamper`` (B-T+) and, for B-LT, a fresh
  ``ValidationContext`` with fetching and ``embed_validation_info`` — size estimated by a dry-run signature;
* **pyHanko, key kept** — the same with the ``SimpleSigner`` (and the decoded PNG) loaded once;
* **floor** — open + incremental write + SHA-256 of the output + one raw signature with the loaded key:
  what any PDF signer must do.

Ratios are pyHanko time / our time (higher is better for us). Peak memory: tracemalloc's Python-heap peak during
one signature (separate runs, tracemalloc slows everything down), also as a multiple of the letter size.
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import gc
import hashlib
import io
import os
import pstats
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import tracemalloc
import urllib.request
from collections.abc import Callable
from dataclasses import replace
from importlib.metadata import version
from pathlib import Path

import aiohttp

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding
from pyhanko.pdf_utils import generic
from pyhanko.pdf_utils.images import PdfImage
from pyhanko.pdf_utils.incremental_writer import IncrementalPdfFileWriter
from pyhanko.sign import fields, signers
from pyhanko.sign.timestamps.aiohttp_client import HTTPTimeStamper
from pyhanko.stamp import StaticStampStyle
from pyhanko_certvalidator import ValidationContext

from docexchange.config import Settings, load_settings
from docexchange.directory import load_directory
from docexchange.pki.devpki import DevPki
from docexchange.signing import LetterSpec, SigningService, make_letter
from docexchange.signing.letter import PERSON_FIELD, parse_size
from helpers import free_port, make_settings

OFFICIAL = "h49-halong-chu-tich"
LEVELS = ("B-B", "B-T", "B-LT")


# -- environment ----------------------------------------------------------------------------------------------
def build_project(base: Path) -> tuple[Settings, Path]:
    settings = make_settings(base, pki_port=free_port())
    DevPki.from_settings(settings).init(load_directory(settings.directory_file))
    cfg = base / "config" / "docexchange.toml"
    text = cfg.read_text().replace("port = 8480", f"port = {settings.pki.port}")
    cfg.write_text(text)
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


# -- the contenders -------------------------------------------------------------------------------------------
class Ours:
    name = "ours (service)"

    def __init__(self, settings: Settings) -> None:
        self.service = SigningService(settings)
        self.person = self.service.person(OFFICIAL)

    def sign(self, data: bytes, level: str) -> bytes:
        return self.service.sign(data, self.person, level=level)

    def close(self) -> None:
        self.service.close()


class PyHanko:
    """Raw pyHanko making the same visible person signature into the template's field."""

    def __init__(self, settings: Settings, *, keep_key: bool) -> None:
        pki = DevPki.open(settings)
        self.p12 = pki.person_p12(OFFICIAL)
        self.passphrase = pki.passphrase.encode()
        self.png = str(pki.signature_image(OFFICIAL))
        self.root = pki.root_cert
        self.tsa_url = f"{settings.pki.base_url}/tsa"
        self.keep_key = keep_key
        self.name = "pyHanko, key kept" if keep_key else "pyHanko stock"
        from pyhanko.keys import load_cert_from_pemder

        self.root_asn1 = load_cert_from_pemder(str(settings.keys_dir / "ca" / "root.crt"))
        self.inter = [load_cert_from_pemder(str(p)) for p in sorted((settings.keys_dir / "ca").glob("*.crt"))
                      if p.name != "root.crt"]
        self.timestamper = HTTPTimeStamper(self.tsa_url)
        if keep_key:
            self.signer = self._load()
            from PIL import Image

            self.image = Image.open(self.png)
            self.image.load()

    def _load(self) -> signers.SimpleSigner:
        signer = signers.SimpleSigner.load_pkcs12(str(self.p12), passphrase=self.passphrase)
        assert signer is not None
        return signer

    def sign(self, data: bytes, level: str) -> bytes:
        signer = self.signer if self.keep_key else self._load()
        image = self.image if self.keep_key else self.png
        style = StaticStampStyle(background=PdfImage(image), border_width=0, background_opacity=1.0)
        lt = level == "B-LT"
        vc = None
        if lt:
            vc = ValidationContext(trust_roots=[self.root_asn1], other_certs=self.inter, allow_fetching=True)
        meta = signers.PdfSignatureMetadata(
            field_name=PERSON_FIELD, md_algorithm="sha256", subfilter=fields.SigSeedSubFilter.PADES,
            embed_validation_info=lt, validation_context=vc,
        )
        ts = self.timestamper if level != "B-B" else None
        pdf_signer = signers.PdfSigner(meta, signer, timestamper=ts, stamp_style=style)
        out = pdf_signer.sign_pdf(IncrementalPdfFileWriter(io.BytesIO(data)), existing_fields_only=True)
        return out.getvalue()

    def close(self) -> None:
        pass


def floor(settings: Settings) -> Callable[[bytes], bytes]:
    """Open + incremental write + SHA-256 of the result + one RSA-2048 PKCS#1 v1.5 signature (key loaded)."""
    key = DevPki.open(settings).person(OFFICIAL).key

    def run(data: bytes) -> bytes:
        w = IncrementalPdfFileWriter(io.BytesIO(data))
        w.root[generic.pdf_name("/DXBench")] = generic.NumberObject(1)
        w.update_root()
        out = io.BytesIO()
        w.write(out)
        digest = hashlib.sha256(out.getbuffer()).digest()
        key.sign(digest, padding.PKCS1v15(), hashes.SHA256())  # type: ignore[union-attr,call-arg]
        return out.getvalue()

    return run


# -- measuring ------------------------------------------------------------------------------------------------
def timed(fn: Callable[[], object], n: int) -> list[float]:
    out = []
    for _ in range(n):
        gc.collect()
        t = time.perf_counter()
        fn()
        out.append(time.perf_counter() - t)
    return out


def peak_mb(fn: Callable[[], object]) -> float:
    gc.collect()
    tracemalloc.start()
    tracemalloc.reset_peak()
    base = tracemalloc.get_traced_memory()[0]
    fn()
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    return (peak - base) / (1024 * 1024)


def iterations(level: str, size: int, who: str) -> int:
    if level == "B-B":
        return (40 if size <= 1 << 20 else 12) if who.startswith("ours") else (8 if size <= 1 << 20 else 4)
    return 10 if who.startswith("ours") else 4


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--sizes", nargs="+", default=["50KB", "1MB", "10MB"])
    ap.add_argument("--levels", nargs="+", default=list(LEVELS), choices=LEVELS)
    ap.add_argument("--profile", action="store_true", help="cProfile our B-B signature on the 1 MB letter")
    ap.add_argument("--no-memory", action="store_true")
    args = ap.parse_args()

    tmp = Path(tempfile.mkdtemp(prefix="bench-signing-"))
    try:
        print("building a dev PKI …", flush=True)
        settings, cfg = build_project(tmp)
        services = start_services(cfg, settings)
        try:
            run(settings, args)
        finally:
            services.terminate()
            services.wait(10)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def run(settings: Settings, args: argparse.Namespace) -> None:
    settings = replace(settings, signing=replace(settings.signing, precheck_cache_seconds=300))
    ours = Ours(settings)
    stock = PyHanko(settings, keep_key=False)
    kept = PyHanko(settings, keep_key=True)
    base_floor = floor(settings)
    print(f"python {sys.version.split()[0]}, pyHanko {version('pyhanko')}, one thread; "
          f"trust services in a separate process")
    async def tsa_rtt() -> float:
        async with aiohttp.ClientSession() as session:
            tsa = HTTPTimeStamper(f"{settings.pki.base_url}/tsa", session=session)
            await tsa.async_timestamp(os.urandom(32), "sha256")
            times = []
            for _ in range(10):
                t = time.perf_counter()
                await tsa.async_timestamp(os.urandom(32), "sha256")
                times.append(time.perf_counter() - t)
            return statistics.median(times) * 1000

    print(f"dev TSA round trip (one RFC 3161 token, kept connection): {asyncio.run(tsa_rtt()):.1f} ms — part of "
          "every B-T/B-LT figure\n")
    header = (f"{'letter':>7} {'level':5} | {'ours ms':>8} {'sig/s':>6} | {'stock ms':>8} {'×':>5} | "
              f"{'kept ms':>8} {'×':>5} | {'floor ms':>8} | {'peak MB ours/stock/kept':>24} {'(× letter)':>11}")
    print(header)
    print("-" * len(header))
    for size_text in args.sizes:
        size = parse_size(size_text)
        letter = make_letter(LetterSpec(target_bytes=size))
        mb = len(letter) / (1024 * 1024)
        fl = statistics.median(timed(lambda: base_floor(letter), 10)) * 1000
        for level in args.levels:
            for who in (ours, stock, kept):  # warm up: caches, connections, first TSA dummy
                who.sign(letter, level)
            t_ours = statistics.median(timed(lambda: ours.sign(letter, level), iterations(level, size, "ours")))
            t_stock = statistics.median(timed(lambda: stock.sign(letter, level), iterations(level, size, "stock")))
            t_kept = statistics.median(timed(lambda: kept.sign(letter, level), iterations(level, size, "kept")))
            mem = ""
            if not args.no_memory:
                m = [peak_mb(lambda w=w: w.sign(letter, level)) for w in (ours, stock, kept)]
                mem = f"{m[0]:6.1f}/{m[1]:6.1f}/{m[2]:6.1f}   ({m[0] / mb:4.1f}/{m[1] / mb:4.1f}/{m[2] / mb:4.1f})"
            print(f"{size_text:>7} {level:5} | {t_ours * 1000:8.1f} {1 / t_ours:6.0f} | {t_stock * 1000:8.1f} "
                  f"{t_stock / t_ours:5.1f} | {t_kept * 1000:8.1f} {t_kept / t_ours:5.1f} | {fl:8.1f} | {mem}",
                  flush=True)
    print("\n× = pyHanko time / our time in the same run; floor = open + incremental write + SHA-256 + RSA-2048.")
    print("B-T and B-LT include the dev TSA's round trip (its RSA key handling dominates: see docs/signing.md).")
    if args.profile:
        letter = make_letter(LetterSpec(target_bytes=1 << 20))
        for _ in range(5):
            ours.sign(letter, "B-B")
        prof = cProfile.Profile()
        prof.enable()
        for _ in range(50):
            ours.sign(letter, "B-B")
        prof.disable()
        print("\ncProfile, 50 × our B-B on the 1 MB letter (tottime):")
        pstats.Stats(prof).sort_stats("tottime").print_stats(18)
    ours.close()
    asyncio.set_event_loop(None)


if __name__ == "__main__":
    main()
