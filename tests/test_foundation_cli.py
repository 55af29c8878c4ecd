"""The CLI as an operator uses it: real processes, real exit codes and messages."""

from __future__ import annotations

import subprocess
import sys
import time
import urllib.request
from pathlib import Path

from cryptography import x509

from helpers import free_port, make_settings


def run(*args: str, cwd: Path, check: bool = False) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["docexchange", *args], cwd=cwd, capture_output=True, text=True, timeout=300, check=check)


def test_python_dash_m_and_help(tmp_path: Path) -> None:
    out = subprocess.run([sys.executable, "-m", "docexchange", "--help"], capture_output=True, text=True, check=True)
    for command in ("pki", "serve", "directory"):
        assert command in out.stdout


def test_config_error_is_a_message_not_a_traceback(tmp_path: Path) -> None:
    cfg = tmp_path / "config"
    cfg.mkdir()
    (cfg / "docexchange.toml").write_text("[pki]\nport = \"x\"\n")
    res = run("--config", str(cfg / "docexchange.toml"), "directory", "check", cwd=tmp_path)
    assert res.returncode == 78
    assert "Lỗi [config]" in res.stderr and "pki.port" in res.stderr
    assert "Traceback" not in res.stderr
    verbose = run("--verbose", "--config", str(cfg / "docexchange.toml"), "directory", "check", cwd=tmp_path)
    assert "Traceback" in verbose.stderr


def test_directory_commands(tmp_path: Path) -> None:
    make_settings(tmp_path)
    assert "12 cơ quan" in run("directory", "check", cwd=tmp_path, check=True).stdout
    path = run("directory", "path", "000.01.11.H49", "000.00.32.H57", cwd=tmp_path, check=True).stdout
    assert "Quảng Ninh" in path and "quốc gia" in path and "Huế" in path
    bad = run("directory", "path", "000.01.11.H49", "000.00.99.H57", cwd=tmp_path)
    assert bad.returncode == 1 and "000.00.99.H57" in bad.stderr


def test_pki_init_then_serve_answers_openssl(tmp_path: Path) -> None:
    port = free_port()
    make_settings(tmp_path)
    toml = tmp_path / "config" / "docexchange.toml"
    toml.write_text(toml.read_text().replace("port = 8480", f"port = {port}"))
    first = run("pki", "init", cwd=tmp_path, check=True)
    assert "Đã tạo" in first.stdout
    again = run("pki", "init", cwd=tmp_path, check=True)
    assert "Không có gì cần tạo" in again.stdout
    server = subprocess.Popen(["docexchange", "pki", "serve"], cwd=tmp_path, stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=2) as resp:
                    assert resp.status == 200
                    break
            except OSError:
                if time.monotonic() > deadline or server.poll() is not None:
                    raise
                time.sleep(0.2)
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/crl/org.crl", timeout=10) as resp:
            crl = x509.load_der_x509_crl(resp.read())
        assert len(list(crl)) == 0
        keys = tmp_path / "keys"
        out = subprocess.run(
            ["openssl", "ocsp", "-issuer", str(keys / "ca/org.crt"), "-cert",
             str(keys / "agencies/000.00.00.G22/seal.crt"), "-url", f"http://127.0.0.1:{port}/ocsp/org",
             "-CAfile", str(keys / "ca/root.crt"), "-verify_other", str(keys / "ca/org.crt")],
            capture_output=True, text=True, timeout=30, check=True,
        )
        assert "seal.crt: good" in out.stdout
        revoked = run("pki", "revoke", "000.00.00.G22", "--reason", "superseded", cwd=tmp_path, check=True)
        assert "Đã thu hồi" in revoked.stdout
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/crl/org.crl", timeout=10) as resp:
            crl = x509.load_der_x509_crl(resp.read())
        seal = x509.load_pem_x509_certificate((keys / "agencies/000.00.00.G22/seal.crt").read_bytes())
        assert crl.get_revoked_certificate_by_serial_number(seal.serial_number) is not None
        # a second server on the same port is refused with a clear message
        clash = run("pki", "serve", cwd=tmp_path)
        assert clash.returncode != 0 and "cổng" in clash.stderr
    finally:
        server.terminate()
        server.wait(timeout=30)
    assert server.returncode == 0
