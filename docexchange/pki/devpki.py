"""The development PKI: a root, issuing CAs, a TSA, OCSP responders, and certificates for every agency (seal),
official (person) and axis node (TLS), generated into ``keys/`` for a directory.

Layout of ``keys/`` (all certificates PEM; private keys PKCS#12 or encrypted PEM under one passphrase)::

    pki.json                       manifest: base URL, every issued certificate by serial
    revocations.json               revoked serials with reason and time (read live by the OCSP/CRL services)
    ca/{root,org,person}.crt|.p12  root CA, issuing CA for organisations, issuing CA for persons
    services/tsa.crt|.p12          RFC 3161 time-stamping unit (issued by the org CA)
    services/ocsp-{org,person}.crt|.p12   delegated OCSP responders (one per issuing CA)
    agencies/<code>/seal.crt|.p12|.png    organisation (seal) certificate and the red seal image
    persons/<official>/cert.crt|key.p12|signature.png   personal certificate and the blue signature
    nodes/<node>/tls.crt|tls.key|chain.pem               TLS server+client certificate of an axis node

Re-running ``init`` only adds what is missing (new agencies, officials, nodes); ``force`` moves the old tree to
``keys/.old/<time>/`` first, so nothing is destroyed.
"""

from __future__ import annotations

import enum
import ipaddress
import json
import shutil
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.hazmat.primitives.asymmetric.types import PrivateKeyTypes
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from docexchange.clock import Clock, SystemClock
from docexchange.config import DEV_PASSPHRASE, Settings, env_secret
from docexchange.directory import Agency, Directory, Official
from docexchange.errors import KeystoreError, PKIError
from docexchange.pki.images import draw_seal, draw_signature
from docexchange.pki.keystore import KeyMaterial, load_cert, load_pkcs12, write_atomic, write_pkcs12

__all__ = ["REVOCATION_REASONS", "CertKind", "DevPki", "InitReport", "IssuedCert", "Revocation"]

FORMAT = 1
CA_IDS = ("root", "org", "person")

REVOCATION_REASONS: dict[str, x509.ReasonFlags] = {
    "unspecified": x509.ReasonFlags.unspecified,
    "key_compromise": x509.ReasonFlags.key_compromise,
    "ca_compromise": x509.ReasonFlags.ca_compromise,
    "affiliation_changed": x509.ReasonFlags.affiliation_changed,
    "superseded": x509.ReasonFlags.superseded,
    "cessation_of_operation": x509.ReasonFlags.cessation_of_operation,
    "certificate_hold": x509.ReasonFlags.certificate_hold,
}


class CertKind(str, enum.Enum):
    ROOT = "root"
    CA = "ca"
    SEAL = "seal"
    PERSON = "person"
    TSA = "tsa"
    OCSP = "ocsp"
    TLS = "tls"


@dataclass(frozen=True)
class IssuedCert:
    serial: int
    kind: CertKind
    subject_id: str
    """Agency code, official id, node id or CA id the certificate belongs to."""
    ca: str
    """Id of the issuing CA (``root`` for the root itself)."""
    cert_file: str
    """Path relative to ``keys/``."""
    not_after: str

    def to_json(self) -> dict[str, Any]:
        return {
            "kind": self.kind.value,
            "subject_id": self.subject_id,
            "ca": self.ca,
            "cert_file": self.cert_file,
            "not_after": self.not_after,
        }


@dataclass(frozen=True)
class Revocation:
    serial: int
    reason: str
    revoked_at: datetime


@dataclass
class InitReport:
    created: list[str] = field(default_factory=list)
    kept: int = 0
    backup: Path | None = None


def _name(*pairs: tuple[x509.ObjectIdentifier, str]) -> x509.Name:
    return x509.Name([x509.NameAttribute(oid, value) for oid, value in pairs if value])


def _new_key(algorithm: str) -> PrivateKeyTypes:
    if algorithm == "rsa2048":
        return rsa.generate_private_key(public_exponent=65537, key_size=2048)
    if algorithm == "rsa3072":
        return rsa.generate_private_key(public_exponent=65537, key_size=3072)
    if algorithm == "ecdsa-p256":
        return ec.generate_private_key(ec.SECP256R1())
    raise PKIError(
        f"Thuật toán khóa '{algorithm}' không được hỗ trợ (rsa2048, rsa3072, ecdsa-p256)",
        f"unsupported key algorithm '{algorithm}' (rsa2048, rsa3072, ecdsa-p256)",
    )


def _sample_budget_code(code: str) -> str:
    digits = "".join(c for c in code if c.isdigit())
    return (digits + "0000000")[:7]


def _atomic_json(path: Path, data: Any) -> None:
    write_atomic(path, json.dumps(data, ensure_ascii=False, indent=1, sort_keys=True).encode())


class DevPki:
    """The dev PKI on disk. Open an existing one with :meth:`open`, build one with :meth:`init`."""

    def __init__(self, keys_dir: Path, base_url: str, passphrase: str, *, clock: Clock | None = None,
                 key_algorithm: str = "rsa2048", validity_days: int = 730) -> None:
        self.keys_dir = keys_dir
        self.base_url = base_url.rstrip("/")
        self.passphrase = passphrase
        self.clock: Clock = clock or SystemClock()
        self.key_algorithm = key_algorithm
        self.validity_days = validity_days
        self._materials: dict[str, KeyMaterial] = {}

    # -- opening -------------------------------------------------------------------------------
    @staticmethod
    def passphrase_from(settings: Settings) -> str:
        return env_secret(settings.pki.passphrase_env) or DEV_PASSPHRASE

    @classmethod
    def from_settings(cls, settings: Settings, clock: Clock | None = None) -> DevPki:
        return cls(
            settings.keys_dir,
            settings.pki.base_url,
            cls.passphrase_from(settings),
            clock=clock,
            key_algorithm=settings.pki.key_algorithm,
            validity_days=settings.pki.validity_days,
        )

    @classmethod
    def open(cls, settings: Settings, clock: Clock | None = None) -> DevPki:
        """Open ``keys/``; refuse clearly if it has not been built."""
        pki = cls.from_settings(settings, clock)
        if not pki.manifest_path.exists():
            raise KeystoreError(
                f"Chưa có hạ tầng khóa trong {pki.keys_dir}: chạy 'docexchange pki init' trước",
                f"no PKI in {pki.keys_dir}: run 'docexchange pki init' first",
            )
        pki._manifest()  # fail early on a damaged manifest
        return pki

    @property
    def manifest_path(self) -> Path:
        return self.keys_dir / "pki.json"

    @property
    def revocations_path(self) -> Path:
        return self.keys_dir / "revocations.json"

    def exists(self) -> bool:
        return self.manifest_path.exists()

    def _manifest(self) -> dict[str, Any]:
        try:
            data = json.loads(self.manifest_path.read_text("utf-8"))
        except FileNotFoundError:
            return {"format": FORMAT, "base_url": self.base_url, "issued": {}}
        except (ValueError, UnicodeDecodeError) as exc:
            raise KeystoreError(
                f"Tệp {self.manifest_path} bị hỏng", f"{self.manifest_path} is damaged ({exc})"
            ) from exc
        if data.get("format") != FORMAT:
            raise KeystoreError(
                f"{self.manifest_path}: định dạng {data.get('format')} không được hỗ trợ",
                f"{self.manifest_path}: unsupported format {data.get('format')}",
            )
        return data

    # -- reading -------------------------------------------------------------------------------
    def issued(self) -> dict[int, IssuedCert]:
        out = {}
        for serial_hex, entry in self._manifest().get("issued", {}).items():
            serial = int(serial_hex, 16)
            out[serial] = IssuedCert(
                serial, CertKind(entry["kind"]), entry["subject_id"], entry["ca"], entry["cert_file"],
                entry["not_after"],
            )
        return out

    def _material(self, rel_p12: str) -> KeyMaterial:
        if rel_p12 not in self._materials:
            self._materials[rel_p12] = load_pkcs12(self.keys_dir / rel_p12, self.passphrase)
        return self._materials[rel_p12]

    def ca(self, ca_id: str) -> KeyMaterial:
        if ca_id not in CA_IDS:
            raise PKIError(f"Không có CA '{ca_id}'", f"no CA '{ca_id}' (root, org, person)")
        return self._material(f"ca/{ca_id}.p12")

    def ca_cert(self, ca_id: str) -> x509.Certificate:
        return load_cert(self.keys_dir / "ca" / f"{ca_id}.crt")

    @property
    def root_cert(self) -> x509.Certificate:
        return self.ca_cert("root")

    def anchors(self) -> list[x509.Certificate]:
        return [self.root_cert]

    def intermediates(self) -> list[x509.Certificate]:
        return [self.ca_cert("org"), self.ca_cert("person")]

    def seal(self, code: str) -> KeyMaterial:
        return self._material(f"agencies/{code}/seal.p12")

    def seal_cert(self, code: str) -> x509.Certificate:
        return load_cert(self.keys_dir / "agencies" / code / "seal.crt")

    def seal_image(self, code: str) -> Path:
        return self.keys_dir / "agencies" / code / "seal.png"

    def person(self, official_id: str) -> KeyMaterial:
        return self._material(f"persons/{official_id}/key.p12")

    def person_p12(self, official_id: str) -> Path:
        return self.keys_dir / "persons" / official_id / "key.p12"

    def signature_image(self, official_id: str) -> Path:
        return self.keys_dir / "persons" / official_id / "signature.png"

    def tsa(self) -> KeyMaterial:
        return self._material("services/tsa.p12")

    def ocsp_responder(self, ca_id: str) -> KeyMaterial:
        return self._material(f"services/ocsp-{ca_id}.p12")

    def node_tls(self, node_id: str) -> tuple[Path, Path]:
        """(chain PEM, encrypted key PEM) for an axis node; the key's passphrase is :attr:`passphrase`."""
        folder = self.keys_dir / "nodes" / node_id
        chain, key = folder / "chain.pem", folder / "tls.key"
        for p in (chain, key):
            if not p.exists():
                raise KeystoreError(f"Thiếu tệp {p}: chạy 'docexchange pki init'", f"missing {p}: run 'pki init'")
        return chain, key

    def node_cert(self, node_id: str) -> x509.Certificate:
        return load_cert(self.keys_dir / "nodes" / node_id / "tls.crt")

    # -- revocation ----------------------------------------------------------------------------
    def revocations(self) -> dict[int, Revocation]:
        try:
            raw = json.loads(self.revocations_path.read_text("utf-8"))
        except FileNotFoundError:
            return {}
        except ValueError as exc:
            raise KeystoreError(
                f"Tệp {self.revocations_path} bị hỏng", f"{self.revocations_path} is damaged ({exc})"
            ) from exc
        return {
            int(k, 16): Revocation(int(k, 16), v["reason"], datetime.fromisoformat(v["revoked_at"]))
            for k, v in raw.items()
        }

    def find_serial(self, target: str) -> int:
        """Serial of a certificate named by serial (hex), official id, agency code, node id or file path."""
        issued = self.issued()
        by_subject = [s for s, e in issued.items() if e.subject_id == target and e.kind != CertKind.OCSP]
        if len(by_subject) == 1:
            return by_subject[0]
        path = Path(target)
        if path.is_file():
            return load_cert(path).serial_number
        try:
            serial = int(target.replace(":", ""), 16)
        except ValueError:
            serial = -1
        if serial in issued:
            return serial
        raise PKIError(
            f"Không tìm thấy chứng thư '{target}' (số hiệu, mã cán bộ, mã cơ quan, mã trục hoặc tệp)",
            f"no certificate '{target}' (serial, official id, agency code, node id or file)",
        )

    def revoke(self, serial: int, reason: str = "unspecified", when: datetime | None = None) -> Revocation:
        if reason not in REVOCATION_REASONS:
            raise PKIError(
                f"Lý do thu hồi '{reason}' không hợp lệ ({', '.join(REVOCATION_REASONS)})",
                f"invalid revocation reason '{reason}' ({', '.join(REVOCATION_REASONS)})",
            )
        if serial not in self.issued():
            raise PKIError(f"Chứng thư số hiệu {serial:x} không do PKI này cấp", f"serial {serial:x} not issued here")
        revs = self.revocations()
        rev = Revocation(serial, reason, (when or self.clock.now()).astimezone(UTC).replace(microsecond=0))
        revs[serial] = rev
        _atomic_json(
            self.revocations_path,
            {f"{s:x}": {"reason": r.reason, "revoked_at": r.revoked_at.isoformat()} for s, r in revs.items()},
        )
        return rev

    # -- issuing -------------------------------------------------------------------------------
    def _url(self, path: str) -> str:
        return f"{self.base_url}/{path}"

    def _record(self, cert: x509.Certificate, kind: CertKind, subject_id: str, ca: str, cert_file: str) -> None:
        manifest = self._manifest()
        manifest["base_url"] = self.base_url
        manifest.setdefault("issued", {})[f"{cert.serial_number:x}"] = IssuedCert(
            cert.serial_number, kind, subject_id, ca, cert_file, cert.not_valid_after_utc.isoformat()
        ).to_json()
        _atomic_json(self.manifest_path, manifest)

    def build_cert(
        self,
        subject: x509.Name,
        public_key: Any,
        issuer: KeyMaterial | None,
        *,
        kind: CertKind,
        ca_id: str,
        not_before: datetime | None = None,
        not_after: datetime | None = None,
        self_key: PrivateKeyTypes | None = None,
        san: list[x509.GeneralName] | None = None,
    ) -> x509.Certificate:
        """Build and sign one certificate with the profile of ``kind`` (SHA-256, never SHA-1)."""
        now = self.clock.now().replace(microsecond=0)
        start = not_before or now - timedelta(hours=1)
        if not_after is None:
            years = {CertKind.ROOT: 20, CertKind.CA: 10}.get(kind)
            not_after = start + (timedelta(days=365 * years) if years else timedelta(days=self.validity_days))
        signing_key = issuer.key if issuer else self_key
        issuer_name = issuer.cert.subject if issuer else subject
        b = (
            x509.CertificateBuilder()
            .subject_name(subject)
            .issuer_name(issuer_name)
            .public_key(public_key)
            .serial_number(x509.random_serial_number())
            .not_valid_before(start)
            .not_valid_after(not_after)
            .add_extension(x509.SubjectKeyIdentifier.from_public_key(public_key), critical=False)
        )
        if issuer is not None:
            b = b.add_extension(
                x509.AuthorityKeyIdentifier.from_issuer_public_key(issuer.cert.public_key()),  # type: ignore[arg-type]
                critical=False,
            )
        is_ca = kind in (CertKind.ROOT, CertKind.CA)
        b = b.add_extension(
            x509.BasicConstraints(ca=is_ca, path_length={CertKind.ROOT: 1, CertKind.CA: 0}.get(kind)), critical=True
        )
        signing = kind in (CertKind.SEAL, CertKind.PERSON, CertKind.TSA, CertKind.OCSP)
        b = b.add_extension(
            x509.KeyUsage(
                digital_signature=not is_ca,
                content_commitment=signing and kind != CertKind.OCSP,
                key_encipherment=kind == CertKind.TLS and isinstance(public_key, rsa.RSAPublicKey),
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=is_ca,
                crl_sign=is_ca,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        eku = {
            CertKind.TSA: [ExtendedKeyUsageOID.TIME_STAMPING],
            CertKind.OCSP: [ExtendedKeyUsageOID.OCSP_SIGNING],
            CertKind.TLS: [ExtendedKeyUsageOID.SERVER_AUTH, ExtendedKeyUsageOID.CLIENT_AUTH],
        }.get(kind)
        if eku:
            b = b.add_extension(x509.ExtendedKeyUsage(eku), critical=kind == CertKind.TSA)
        if kind == CertKind.OCSP:
            b = b.add_extension(x509.OCSPNoCheck(), critical=False)
        if san:
            b = b.add_extension(x509.SubjectAlternativeName(san), critical=False)
        if kind != CertKind.ROOT:
            b = b.add_extension(
                x509.CRLDistributionPoints(
                    [x509.DistributionPoint([x509.UniformResourceIdentifier(self._url(f"crl/{ca_id}.crl"))],
                                            None, None, None)]
                ),
                critical=False,
            )
            access = [
                x509.AccessDescription(
                    x509.AuthorityInformationAccessOID.CA_ISSUERS,
                    x509.UniformResourceIdentifier(self._url(f"certs/{ca_id}.crt")),
                )
            ]
            if ca_id != "root" and kind != CertKind.OCSP:
                access.insert(
                    0,
                    x509.AccessDescription(
                        x509.AuthorityInformationAccessOID.OCSP,
                        x509.UniformResourceIdentifier(self._url(f"ocsp/{ca_id}")),
                    ),
                )
            b = b.add_extension(x509.AuthorityInformationAccess(access), critical=False)
        if signing_key is None:
            raise PKIError("Thiếu khóa ký chứng thư", "no key to sign the certificate with")
        return b.sign(signing_key, hashes.SHA256())  # type: ignore[arg-type]

    def issue(
        self,
        kind: CertKind,
        subject: x509.Name,
        subject_id: str,
        *,
        ca_id: str = "org",
        key_algorithm: str | None = None,
        not_before: datetime | None = None,
        not_after: datetime | None = None,
        san: list[x509.GeneralName] | None = None,
        record_as: str | None = None,
    ) -> KeyMaterial:
        """Issue an end-entity certificate under ``ca_id``; recorded (so OCSP knows it) but not written to disk
        unless ``record_as`` names where the certificate file goes."""
        issuer = self.ca(ca_id)
        key = _new_key(key_algorithm or self.key_algorithm)
        cert = self.build_cert(
            subject, key.public_key(), issuer, kind=kind, ca_id=ca_id, not_before=not_before,
            not_after=not_after, san=san,
        )
        chain = (issuer.cert, *issuer.chain)
        material = KeyMaterial(key, cert, chain)
        rel = record_as or f"extra/{cert.serial_number:x}.crt"
        write_atomic(self.keys_dir / rel, cert.public_bytes(serialization.Encoding.PEM))
        self._record(cert, kind, subject_id, ca_id, rel)
        return material

    def _write_material(self, folder: str, stem: str, material: KeyMaterial, friendly: str) -> None:
        write_atomic(self.keys_dir / folder / f"{stem}.crt", material.cert.public_bytes(serialization.Encoding.PEM))
        write_pkcs12(self.keys_dir / folder / f"{stem}.p12", material, self.passphrase, friendly)

    # -- init ----------------------------------------------------------------------------------
    def init(
        self,
        directory: Directory,
        *,
        force: bool = False,
        progress: Callable[[str], None] | None = None,
    ) -> InitReport:
        """Build (or top up) ``keys/`` for ``directory``."""
        say = progress or (lambda _msg: None)
        report = InitReport()
        if force and self.keys_dir.exists() and any(p.name != "README.md" for p in self.keys_dir.iterdir()):
            stamp = self.clock.now().strftime("%Y%m%dT%H%M%SZ")
            backup = self.keys_dir / ".old" / stamp
            backup.mkdir(parents=True)
            for p in list(self.keys_dir.iterdir()):
                if p.name not in ("README.md", ".old"):
                    shutil.move(str(p), backup / p.name)
            report.backup = backup
            self._materials.clear()
        self.keys_dir.mkdir(parents=True, exist_ok=True)
        if self.exists():
            manifest = self._manifest()
            if manifest.get("base_url") != self.base_url:
                raise PKIError(
                    f"Chứng thư hiện có trỏ tới {manifest.get('base_url')}, cấu hình là {self.base_url}: "
                    "dùng --force để tạo lại",
                    f"existing certificates point at {manifest.get('base_url')}, configuration says "
                    f"{self.base_url}: use --force to rebuild",
                )
            self.ca("root")  # wrong passphrase or missing file: fail before touching anything
        self._ensure_cas(report, say)
        self._ensure_services(report, say)
        for agency in directory:
            self._ensure_seal(agency, report, say)
            for official in agency.officials:
                self._ensure_person(agency, official, report, say)
        for node in directory.nodes:
            self._ensure_node(node.id, node.name, node.host, report, say)
        readme = self.keys_dir / "README.md"
        if not readme.exists():
            write_atomic(readme, _KEYS_README.encode())
        return report

    def _have(self, *rel: str) -> bool:
        return all((self.keys_dir / r).exists() for r in rel)

    def _ensure_cas(self, report: InitReport, say: Callable[[str], None]) -> None:
        if self._have("ca/root.crt", "ca/root.p12"):
            report.kept += 1
        else:
            if self._have("ca/org.p12") or self._have("ca/person.p12"):
                raise KeystoreError(
                    f"Thiếu {self.keys_dir}/ca/root.p12 nhưng các CA cấp dưới vẫn còn: khôi phục tệp hoặc dùng --force",
                    f"{self.keys_dir}/ca/root.p12 is missing while issuing CAs remain: restore it or use --force",
                )
            say("CA gốc (root CA)")
            key = _new_key("rsa3072")
            subject = _name(
                (NameOID.COUNTRY_NAME, "VN"),
                (NameOID.ORGANIZATION_NAME, "docexchange — hạ tầng thử nghiệm"),
                (NameOID.COMMON_NAME, "docexchange Dev Root CA"),
            )
            cert = self.build_cert(subject, key.public_key(), None, kind=CertKind.ROOT, ca_id="root", self_key=key)
            self._write_material("ca", "root", KeyMaterial(key, cert, ()), "root")
            self._record(cert, CertKind.ROOT, "root", "root", "ca/root.crt")
            report.created.append("ca/root")
        for ca_id, label in (("org", "Tổ chức (organisations)"), ("person", "Cá nhân (persons)")):
            if self._have(f"ca/{ca_id}.crt", f"ca/{ca_id}.p12"):
                report.kept += 1
                continue
            say(f"CA {label}")
            root = self.ca("root")
            key = _new_key("rsa3072")
            subject = _name(
                (NameOID.COUNTRY_NAME, "VN"),
                (NameOID.ORGANIZATION_NAME, "docexchange — hạ tầng thử nghiệm"),
                (NameOID.COMMON_NAME, f"docexchange Dev CA {label.split(' (')[0]}"),
            )
            cert = self.build_cert(subject, key.public_key(), root, kind=CertKind.CA, ca_id="root")
            self._write_material("ca", ca_id, KeyMaterial(key, cert, (root.cert,)), ca_id)
            self._record(cert, CertKind.CA, ca_id, "root", f"ca/{ca_id}.crt")
            report.created.append(f"ca/{ca_id}")

    def _ensure_services(self, report: InitReport, say: Callable[[str], None]) -> None:
        if self._have("services/tsa.p12"):
            report.kept += 1
        else:
            say("Dịch vụ cấp dấu thời gian (TSA)")
            m = self.issue(
                CertKind.TSA,
                _name((NameOID.COUNTRY_NAME, "VN"), (NameOID.ORGANIZATION_NAME, "docexchange"),
                      (NameOID.COMMON_NAME, "docexchange Dev TSA")),
                "tsa", ca_id="org", record_as="services/tsa.crt",
            )
            self._write_material("services", "tsa", m, "tsa")
            report.created.append("services/tsa")
        for ca_id in ("org", "person"):
            if self._have(f"services/ocsp-{ca_id}.p12"):
                report.kept += 1
                continue
            say(f"OCSP ({ca_id})")
            m = self.issue(
                CertKind.OCSP,
                _name((NameOID.COUNTRY_NAME, "VN"), (NameOID.ORGANIZATION_NAME, "docexchange"),
                      (NameOID.COMMON_NAME, f"docexchange Dev OCSP Responder ({ca_id})")),
                f"ocsp-{ca_id}", ca_id=ca_id, record_as=f"services/ocsp-{ca_id}.crt",
            )
            self._write_material("services", f"ocsp-{ca_id}", m, f"ocsp-{ca_id}")
            report.created.append(f"services/ocsp-{ca_id}")

    def seal_subject(self, agency: Agency) -> x509.Name:
        budget = agency.budget_code or _sample_budget_code(agency.code)
        return _name(
            (NameOID.COUNTRY_NAME, "VN"),
            (NameOID.LOCALITY_NAME, agency.place),
            (NameOID.ORGANIZATION_NAME, agency.name),
            (NameOID.COMMON_NAME, agency.name),
            (NameOID.USER_ID, f"MNS:{budget}"),
        )

    def person_subject(self, agency: Agency, official: Official) -> x509.Name:
        return _name(
            (NameOID.COUNTRY_NAME, "VN"),
            (NameOID.LOCALITY_NAME, agency.place),
            (NameOID.ORGANIZATION_NAME, agency.name),
            (NameOID.TITLE, official.position),
            (NameOID.COMMON_NAME, official.full_name),
            (NameOID.USER_ID, f"CCCD:{official.citizen_id}" if official.citizen_id else ""),
        )

    def _ensure_seal(self, agency: Agency, report: InitReport, say: Callable[[str], None]) -> None:
        folder = f"agencies/{agency.code}"
        if not self._have(f"{folder}/seal.p12", f"{folder}/seal.crt"):
            say(f"Chứng thư con dấu: {agency.name}")
            m = self.issue(CertKind.SEAL, self.seal_subject(agency), agency.code, ca_id="org",
                           record_as=f"{folder}/seal.crt")
            self._write_material(folder, "seal", m, agency.code)
            report.created.append(f"{folder}/seal")
        else:
            report.kept += 1
        if not self._have(f"{folder}/seal.png"):
            write_atomic(self.keys_dir / folder / "seal.png", draw_seal(agency.name, agency.place))

    def _ensure_person(self, agency: Agency, official: Official, report: InitReport,
                       say: Callable[[str], None]) -> None:
        folder = f"persons/{official.id}"
        if not self._have(f"{folder}/key.p12", f"{folder}/cert.crt"):
            say(f"Chứng thư cá nhân: {official.full_name} ({official.position}, {agency.short_name or agency.name})")
            m = self.issue(CertKind.PERSON, self.person_subject(agency, official), official.id, ca_id="person",
                           record_as=f"{folder}/cert.crt")
            write_pkcs12(self.keys_dir / folder / "key.p12", m, self.passphrase, official.id)
            report.created.append(folder)
        else:
            report.kept += 1
        if not self._have(f"{folder}/signature.png"):
            write_atomic(self.keys_dir / folder / "signature.png", draw_signature(official.full_name, official.id))

    def _ensure_node(self, node_id: str, name: str, host: str, report: InitReport,
                     say: Callable[[str], None]) -> None:
        folder = f"nodes/{node_id}"
        if self._have(f"{folder}/tls.crt", f"{folder}/tls.key", f"{folder}/chain.pem"):
            report.kept += 1
            return
        say(f"Chứng thư TLS trục: {name}")
        san: list[x509.GeneralName] = [x509.DNSName("localhost"), x509.DNSName(node_id)]
        for h in {host, "127.0.0.1"}:
            try:
                san.append(x509.IPAddress(ipaddress.ip_address(h)))
            except ValueError:
                san.append(x509.DNSName(h))
        m = self.issue(
            CertKind.TLS,
            _name((NameOID.COUNTRY_NAME, "VN"), (NameOID.ORGANIZATION_NAME, "docexchange"),
                  (NameOID.ORGANIZATIONAL_UNIT_NAME, name), (NameOID.COMMON_NAME, node_id)),
            node_id, ca_id="org", san=san, record_as=f"{folder}/tls.crt",
        )
        pem = serialization.Encoding.PEM
        key_pem = m.key.private_bytes(
            pem, serialization.PrivateFormat.PKCS8, serialization.BestAvailableEncryption(self.passphrase.encode())
        )
        write_atomic(self.keys_dir / folder / "tls.key", key_pem, mode=0o600)
        write_atomic(
            self.keys_dir / folder / "chain.pem",
            m.cert.public_bytes(pem) + b"".join(c.public_bytes(pem) for c in m.chain[:-1]),
        )
        report.created.append(folder)


_KEYS_README = """# keys/ — generated, never committed

This folder is made by `docexchange pki init` (the development PKI) and is git-ignored except this file.
Private keys are PKCS#12 (or encrypted PEM for TLS) under the passphrase in `$DOCEXCHANGE_KEY_PASSPHRASE`
(development default: `docexchange-dev`). For production, put your real certificates here instead and point
`config/docexchange.toml` at them; never commit private keys.

`docexchange pki init --force` moves the current tree to `.old/<time>/` before rebuilding.
"""
