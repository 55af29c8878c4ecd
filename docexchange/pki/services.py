"""The dev PKI's trust services over HTTP: RFC 3161 time stamps, RFC 6960 OCSP and CRLs.

Routes (under ``[pki] host:port``; the same URLs are written into every issued certificate)::

    POST /tsa                    application/timestamp-query  → application/timestamp-reply
    POST /ocsp/{ca}              application/ocsp-request     → application/ocsp-response
    GET  /ocsp/{ca}/{b64 req}    (RFC 6960 appendix A GET form)
    GET  /crl/{ca}.crl           DER CRL, built fresh from revocations.json (cached while unchanged)
    GET  /certs/{ca}.crt         DER CA certificate (AIA caIssuers)
    GET  /health

Revocations recorded by ``docexchange pki revoke`` (another process) show up in the next CRL and OCSP answer:
the state file is re-read whenever it changes.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import logging
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from aiohttp import web
from asn1crypto import algos, cms, core, tsp
from asn1crypto import x509 as asn1_x509
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from cryptography.x509 import ocsp

from docexchange.clock import Clock, SystemClock
from docexchange.pki.devpki import CA_IDS, REVOCATION_REASONS, DevPki, Revocation
from docexchange.pki.keystore import KeyMaterial

__all__ = ["TRUST_SERVICES", "TrustServices", "create_trust_app"]

log = logging.getLogger(__name__)

MAX_REQUEST = 64 * 1024
CRL_VALIDITY = timedelta(hours=24)
OCSP_VALIDITY = timedelta(hours=1)


def _asn1_cert(cert: x509.Certificate) -> asn1_x509.Certificate:
    return asn1_x509.Certificate.load(cert.public_bytes(serialization.Encoding.DER))


class _TimeStampUnit:
    """An RFC 3161 time-stamping unit whose key stays loaded (built with asn1crypto, signed with cryptography).

    The token's signing-certificate attribute is ESSCertIDv2 with SHA-256 (RFC 5816), so nothing in it uses SHA-1.
    """

    POLICY = "1.3.6.1.4.1.4146.2.3"  # a test policy OID; real TSAs publish their own

    def __init__(self, material: KeyMaterial) -> None:
        self.key = material.key
        self.cert = _asn1_cert(material.cert)
        self.certs = [self.cert, *(_asn1_cert(c) for c in material.chain[:-1])]
        cert_hash = hashlib.sha256(self.cert.dump()).digest()
        self.signing_cert_v2 = tsp.SigningCertificateV2({"certs": [{"cert_hash": cert_hash}]})
        if isinstance(self.key, rsa.RSAPrivateKey):
            self.sig_algo = algos.SignedDigestAlgorithm({"algorithm": "sha256_rsa"})
        else:
            self.sig_algo = algos.SignedDigestAlgorithm({"algorithm": "sha256_ecdsa"})

    def _sign(self, data: bytes) -> bytes:
        if isinstance(self.key, rsa.RSAPrivateKey):
            return self.key.sign(data, padding.PKCS1v15(), hashes.SHA256())
        if isinstance(self.key, ec.EllipticCurvePrivateKey):
            return self.key.sign(data, ec.ECDSA(hashes.SHA256()))
        raise TypeError(f"unsupported TSA key {type(self.key).__name__}")

    def respond(self, req: tsp.TimeStampReq, at: datetime) -> bytes:
        tst_info = {
            "version": "v1",
            "policy": req["req_policy"].native or self.POLICY,
            "message_imprint": req["message_imprint"],
            "serial_number": secrets.randbits(127),
            "gen_time": at.astimezone(UTC),
            "accuracy": {"seconds": 1},
            "tsa": x509_general_name(self.cert),
        }
        if isinstance(req["nonce"], core.Integer):
            tst_info["nonce"] = req["nonce"]
        content = tsp.TSTInfo(tst_info).dump()
        signed_attrs = cms.CMSAttributes([
            cms.CMSAttribute({"type": "content_type", "values": ["tst_info"]}),
            cms.CMSAttribute({"type": "signing_time", "values": [cms.Time({"utc_time": core.UTCTime(at)})]}),
            cms.CMSAttribute({"type": "signing_certificate_v2", "values": [self.signing_cert_v2]}),
            cms.CMSAttribute({"type": "message_digest", "values": [hashlib.sha256(content).digest()]}),
        ])
        signer_info = cms.SignerInfo({
            "version": "v1",
            "sid": cms.SignerIdentifier({"issuer_and_serial_number": cms.IssuerAndSerialNumber(
                {"issuer": self.cert.issuer, "serial_number": self.cert.serial_number})}),
            "digest_algorithm": {"algorithm": "sha256"},
            "signed_attrs": signed_attrs,
            "signature_algorithm": self.sig_algo,
            "signature": self._sign(signed_attrs.dump()),
        })
        token = cms.ContentInfo({
            "content_type": "signed_data",
            "content": cms.SignedData({
                "version": "v3",
                "digest_algorithms": [{"algorithm": "sha256"}],
                "encap_content_info": {"content_type": "tst_info", "content": cms.ParsableOctetString(content)},
                "certificates": self.certs,
                "signer_infos": [signer_info],
            }),
        })
        granted = tsp.PKIStatusInfo({"status": "granted"})
        return tsp.TimeStampResp({"status": granted, "time_stamp_token": token}).dump()


def x509_general_name(cert: asn1_x509.Certificate) -> asn1_x509.GeneralName:
    return asn1_x509.GeneralName(name="directory_name", value=cert.subject)


class _StatusOnlyResp(core.Sequence):
    """TimeStampResp without a token (asn1crypto's own class insists on the optional token)."""

    _fields = [("status", tsp.PKIStatusInfo)]  # noqa: RUF012 - asn1crypto's declaration style


def _rejection(reason: str) -> bytes:
    status = tsp.PKIStatusInfo({"status": "rejection", "fail_info": tsp.PKIFailureInfo({reason})})
    return _StatusOnlyResp({"status": status}).dump()


@dataclass
class _CrlCache:
    state_mtime: float
    built_at: datetime
    der: bytes


class TrustServices:
    """Holds the loaded CA, TSA and OCSP keys (loaded once) and answers requests."""

    def __init__(self, pki: DevPki, clock: Clock | None = None) -> None:
        self.pki = pki
        self.clock: Clock = clock or SystemClock()
        self.cas = {ca: pki.ca(ca) for ca in CA_IDS}
        self.responders = {ca: pki.ocsp_responder(ca) for ca in ("org", "person")}
        self.tsa = _TimeStampUnit(pki.tsa())
        self._crl_cache: dict[str, _CrlCache] = {}
        self._rev_mtime = -1.0
        self._revs: dict[int, Revocation] = {}
        self._issued_mtime = -1.0
        self._issued: dict[int, str] = {}

    def _state(self) -> tuple[dict[int, Revocation], dict[int, str]]:
        path = self.pki.revocations_path
        mtime = path.stat().st_mtime if path.exists() else 0.0
        if mtime != self._rev_mtime:
            self._revs, self._rev_mtime = self.pki.revocations(), mtime
        mpath = self.pki.manifest_path
        mmtime = mpath.stat().st_mtime if mpath.exists() else 0.0
        if mmtime != self._issued_mtime:
            self._issued = {s: e.ca for s, e in self.pki.issued().items()}
            self._issued_mtime = mmtime
        return self._revs, self._issued

    # -- TSA -----------------------------------------------------------------------------------
    def timestamp(self, body: bytes) -> bytes:
        try:
            req = tsp.TimeStampReq.load(body)
            req.native  # noqa: B018 - force a full parse so garbage is refused here
        except (ValueError, TypeError) as exc:
            log.info("bad timestamp request: %s", exc)
            return _rejection("bad_data_format")
        algo = req["message_imprint"]["hash_algorithm"]["algorithm"].native
        if algo in ("sha1", "md5"):
            return _rejection("bad_alg")
        return self.tsa.respond(req, self.clock.now())

    # -- CRL -----------------------------------------------------------------------------------
    def crl(self, ca_id: str) -> bytes:
        revs, issued = self._state()
        now = self.clock.now().replace(microsecond=0)
        cached = self._crl_cache.get(ca_id)
        if cached and cached.state_mtime == self._rev_mtime and now - cached.built_at < timedelta(minutes=5):
            return cached.der
        ca = self.cas[ca_id]
        builder = (
            x509.CertificateRevocationListBuilder()
            .issuer_name(ca.cert.subject)
            .last_update(now)
            .next_update(now + CRL_VALIDITY)
            .add_extension(x509.CRLNumber(int(now.timestamp())), critical=False)
            .add_extension(
                x509.AuthorityKeyIdentifier.from_issuer_public_key(ca.cert.public_key()),  # type: ignore[arg-type]
                critical=False,
            )
        )
        for serial, rev in sorted(revs.items()):
            if issued.get(serial) != ca_id:
                continue
            entry = (
                x509.RevokedCertificateBuilder()
                .serial_number(serial)
                .revocation_date(rev.revoked_at)
                .add_extension(x509.CRLReason(REVOCATION_REASONS[rev.reason]), critical=False)
                .build()
            )
            builder = builder.add_revoked_certificate(entry)
        der = builder.sign(ca.key, hashes.SHA256()).public_bytes(serialization.Encoding.DER)  # type: ignore[arg-type]
        self._crl_cache[ca_id] = _CrlCache(self._rev_mtime, now, der)
        return der

    # -- OCSP ----------------------------------------------------------------------------------
    def ocsp(self, ca_id: str, body: bytes) -> bytes:
        try:
            req = ocsp.load_der_ocsp_request(body)
        except ValueError:
            return ocsp.OCSPResponseBuilder.build_unsuccessful(ocsp.OCSPResponseStatus.MALFORMED_REQUEST).public_bytes(
                serialization.Encoding.DER
            )
        ca = self.cas[ca_id]
        responder = self.responders[ca_id]
        algo = req.hash_algorithm
        h_name = hashes.Hash(algo)
        h_name.update(ca.cert.subject.public_bytes())
        h_key = hashes.Hash(algo)
        h_key.update(
            _asn1_cert(ca.cert)["tbs_certificate"]["subject_public_key_info"]["public_key"].contents[1:]
        )
        if req.issuer_name_hash != h_name.finalize() or req.issuer_key_hash != h_key.finalize():
            return ocsp.OCSPResponseBuilder.build_unsuccessful(ocsp.OCSPResponseStatus.UNAUTHORIZED).public_bytes(
                serialization.Encoding.DER
            )
        revs, issued = self._state()
        now = self.clock.now().replace(microsecond=0)
        serial = req.serial_number
        rev = revs.get(serial)
        if issued.get(serial) != ca_id:
            status, rev_time, rev_reason = ocsp.OCSPCertStatus.UNKNOWN, None, None
        elif rev is not None:
            status, rev_time, rev_reason = ocsp.OCSPCertStatus.REVOKED, rev.revoked_at, REVOCATION_REASONS[rev.reason]
        else:
            status, rev_time, rev_reason = ocsp.OCSPCertStatus.GOOD, None, None
        builder = (
            ocsp.OCSPResponseBuilder()
            .add_response_by_hash(
                issuer_name_hash=req.issuer_name_hash,
                issuer_key_hash=req.issuer_key_hash,
                serial_number=serial,
                algorithm=algo,
                cert_status=status,
                this_update=now,
                next_update=now + OCSP_VALIDITY,
                revocation_time=rev_time,
                revocation_reason=rev_reason,
            )
            .responder_id(ocsp.OCSPResponderEncoding.HASH, responder.cert)
            .certificates([responder.cert])
        )
        for ext in req.extensions:
            if isinstance(ext.value, x509.OCSPNonce):
                builder = builder.add_extension(ext.value, critical=False)
        resp = builder.sign(responder.key, hashes.SHA256())  # type: ignore[arg-type]
        return resp.public_bytes(serialization.Encoding.DER)


TRUST_SERVICES = web.AppKey("trust_services", TrustServices)


def _ca_id(request: web.Request) -> str:
    ca_id = request.match_info["ca"]
    if ca_id not in CA_IDS:
        raise web.HTTPNotFound(text=f"không có CA '{ca_id}' — no CA '{ca_id}'\n")
    return ca_id


async def _read_body(request: web.Request, content_type: str) -> bytes:
    if request.content_length is not None and request.content_length > MAX_REQUEST:
        raise web.HTTPRequestEntityTooLarge(max_size=MAX_REQUEST, actual_size=request.content_length)
    body = await request.content.read(MAX_REQUEST + 1)
    if len(body) > MAX_REQUEST:
        raise web.HTTPRequestEntityTooLarge(max_size=MAX_REQUEST, actual_size=len(body))
    return body


async def tsa_handler(request: web.Request) -> web.Response:
    body = await _read_body(request, "application/timestamp-query")
    answer = request.app[TRUST_SERVICES].timestamp(body)
    return web.Response(body=answer, content_type="application/timestamp-reply")


async def ocsp_post(request: web.Request) -> web.Response:
    ca_id = _ca_id(request)
    if ca_id == "root":
        raise web.HTTPNotFound(text="CA gốc dùng CRL — the root CA publishes CRLs only\n")
    body = await _read_body(request, "application/ocsp-request")
    return web.Response(body=request.app[TRUST_SERVICES].ocsp(ca_id, body), content_type="application/ocsp-response")


async def ocsp_get(request: web.Request) -> web.Response:
    ca_id = _ca_id(request)
    if ca_id == "root":
        raise web.HTTPNotFound(text="CA gốc dùng CRL — the root CA publishes CRLs only\n")
    raw = request.match_info["req"]
    try:
        body = base64.b64decode(raw + "=" * (-len(raw) % 4), validate=False)
    except (binascii.Error, ValueError):
        body = b""
    return web.Response(body=request.app[TRUST_SERVICES].ocsp(ca_id, body), content_type="application/ocsp-response")


async def crl_handler(request: web.Request) -> web.Response:
    ca_id = _ca_id(request)
    return web.Response(body=request.app[TRUST_SERVICES].crl(ca_id), content_type="application/pkix-crl")


async def cert_handler(request: web.Request) -> web.Response:
    ca_id = _ca_id(request)
    der = request.app[TRUST_SERVICES].cas[ca_id].cert.public_bytes(serialization.Encoding.DER)
    return web.Response(body=der, content_type="application/pkix-cert")


async def health(request: web.Request) -> web.Response:
    return web.json_response({"status": "ok", "services": ["tsa", "ocsp", "crl"]})


def create_trust_app(pki: DevPki, clock: Clock | None = None) -> web.Application:
    app = web.Application(client_max_size=MAX_REQUEST)
    app[TRUST_SERVICES] = TrustServices(pki, clock)
    app.router.add_post("/tsa", tsa_handler)
    app.router.add_post("/ocsp/{ca}", ocsp_post)
    app.router.add_get("/ocsp/{ca}/{req:.+}", ocsp_get)
    app.router.add_get("/crl/{ca}.crl", crl_handler)
    app.router.add_get("/certs/{ca}.crt", cert_handler)
    app.router.add_get("/health", health)
    return app
