"""Certificates, paths, revocation decisions and the algorithm policy, on the dev PKI's real artefacts."""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime, timedelta

import pytest
from asn1crypto import algos
from asn1crypto import x509 as asn1_x509
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.x509 import ocsp
from verify_support import CHAIRMAN, HALONG, self_signed_material

from docexchange.pki.devpki import DevPki
from docexchange.verify._trust import (
    LRU,
    Answer,
    OnlineError,
    TrustEngine,
    TrustParams,
    digest_allowed,
    http_fetch,
    name_key,
    public_key_allowed,
    signature_mechanism_allowed,
)
from docexchange.verify.report import HolderKind, RevocationState, SubIndication
from helpers import ServerThread


def _der(cert: x509.Certificate) -> bytes:
    return cert.public_bytes(serialization.Encoding.DER)


@pytest.fixture
def engine(dev_pki: DevPki) -> TrustEngine:
    return TrustEngine(TrustParams(anchors=(_der(dev_pki.root_cert),),
                                   known_certs=tuple(_der(c) for c in dev_pki.intermediates()),
                                   allow_online=True, online_timeout=5))


def test_algorithm_policy() -> None:
    assert digest_allowed("sha256").ok and digest_allowed("sha3_512").ok
    assert not digest_allowed("sha1").ok and not digest_allowed("md5").ok
    assert "SHA-2" in digest_allowed("sha1").vi
    assert signature_mechanism_allowed(algos.SignedDigestAlgorithm({"algorithm": "sha256_rsa"})).ok
    assert not signature_mechanism_allowed(algos.SignedDigestAlgorithm({"algorithm": "sha1_rsa"})).ok
    assert not signature_mechanism_allowed(algos.SignedDigestAlgorithm({"algorithm": "ed25519"})).ok


def test_key_size_policy() -> None:
    from cryptography.hazmat.primitives.asymmetric import ec, rsa

    def info(key: object) -> object:
        der = key.public_key().public_bytes(  # type: ignore[attr-defined]
            serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
        from asn1crypto import keys

        return keys.PublicKeyInfo.load(der)

    assert public_key_allowed(info(rsa.generate_private_key(65537, 2048))).ok  # type: ignore[arg-type]
    weak = public_key_allowed(info(rsa.generate_private_key(65537, 1024)))  # type: ignore[arg-type]
    assert not weak.ok and "1024" in weak.vi
    assert public_key_allowed(info(ec.generate_private_key(ec.SECP256R1()))).ok  # type: ignore[arg-type]
    assert not public_key_allowed(info(ec.generate_private_key(ec.SECP224R1()))).ok  # type: ignore[arg-type]


def test_name_keys_normalise() -> None:
    a = asn1_x509.Name.build({"common_name": "Bộ Nội vụ", "country_name": "VN"})
    b = asn1_x509.Name.build({"common_name": "  bộ  nội vụ ", "country_name": "VN"})
    assert name_key(a) == name_key(b)


def test_lru() -> None:
    lru: LRU[str, int] = LRU(2)
    lru.put("a", 1)
    lru.put("b", 2)
    assert lru.get("a") == 1
    lru.put("c", 3)
    assert lru.get("b") is None and lru.get("a") == 1 and len(lru) == 2
    assert (lru.hits, lru.misses) == (2, 1)


def test_paths(engine: TrustEngine, dev_pki: DevPki) -> None:
    person = engine.cert(_der(dev_pki.person(CHAIRMAN).cert))
    path = engine.build_path(person, engine.pool([]))
    assert path.trusted and [c.common_name for c in path.certs][1:] == [
        "docexchange Dev CA Cá nhân", "docexchange Dev Root CA"]
    assert person.info.holder_kind == HolderKind.PERSON
    seal = engine.cert(_der(dev_pki.seal_cert(HALONG)))
    assert seal.info.holder_kind == HolderKind.ORGANIZATION
    assert engine.build_path(seal, engine.pool([])).trusted
    foreign = self_signed_material()
    untrusted = engine.build_path(engine.cert(_der(foreign.cert)), engine.pool([engine.cert(_der(foreign.chain[0]))]))
    assert not untrusted.trusted and untrusted.sub_indication == SubIndication.NO_CERTIFICATE_CHAIN_FOUND
    assert len(untrusted.certs) == 2, "the partial chain is reported"
    # the second look-up of the same chain is served from the cache
    hits = engine.cache_stats()["paths"][1]
    engine.build_path(person, engine.pool([]))
    assert engine.cache_stats()["paths"][1] == hits + 1


def test_a_forged_issuer_is_not_an_issuer(engine: TrustEngine, dev_pki: DevPki) -> None:
    """Same name as the real CA, different key: names find candidates, signatures decide."""
    impostor = self_signed_material(ca_name=dev_pki.ca_cert("person").subject)
    real_person = engine.cert(_der(dev_pki.person(CHAIRMAN).cert))
    fake_ca = engine.cert(_der(impostor.chain[0]))
    assert fake_ca.subject_key == real_person.issuer_key
    assert not engine.issued_by(real_person, fake_ca)


def _answer(status: str, this: datetime, nxt: datetime | None, revoked: datetime | None = None,
            reason: str = "") -> Answer:
    return Answer("embedded_ocsp", status, this, nxt, revoked, reason)


def test_revocation_decision_rules(engine: TrustEngine, dev_pki: DevPki) -> None:
    cert = engine.cert(_der(dev_pki.person(CHAIRMAN).cert))
    t = datetime(2026, 1, 1, 12, tzinfo=UTC)
    h = timedelta(hours=1)
    decide = engine._decide
    # issued after the time of use: proves the status then
    st, _ = decide(cert, t, [_answer("good", t + h, t + 2 * h)])  # type: ignore[misc]
    assert st.state == RevocationState.GOOD
    # in force at the time of use (the latest CRL at signing time)
    assert decide(cert, t, [_answer("good", t - 20 * h, t + 4 * h)]) is not None
    # expired before the time of use: proves nothing
    assert decide(cert, t, [_answer("good", t - 20 * h, t - h)]) is None
    # no nextUpdate: the freshness limit (24 h) decides
    assert decide(cert, t, [_answer("good", t - 23 * h, None)]) is not None
    assert decide(cert, t, [_answer("good", t - 25 * h, None)]) is None
    # revoked before the time of use, whatever the age of the answer
    st, _ = decide(cert, t, [_answer("revoked", t - 30 * h, None, t - 40 * h, "key_compromise")])  # type: ignore[misc]
    assert st.state == RevocationState.REVOKED and st.reason == "key_compromise"
    # revoked after the time of use: not revoked then
    st, _ = decide(cert, t, [_answer("revoked", t + 5 * h, None, t + 4 * h, "superseded")])  # type: ignore[misc]
    assert st.state == RevocationState.REVOKED_LATER
    # a revocation wins over an older "good"
    st, _ = decide(cert, t, [_answer("good", t - h, t + h), _answer("revoked", t + h, None, t - 2 * h)])  # type: ignore[misc]
    assert st.state == RevocationState.REVOKED
    # on hold counts only when the answer is acceptable for the time
    assert decide(cert, t, [_answer("revoked", t - 90 * h, t - 80 * h, t - 95 * h, "certificate_hold")]) is None


def test_live_ocsp_and_crl_answers(engine: TrustEngine, dev_pki: DevPki, trust_services: ServerThread) -> None:
    person = dev_pki.person(CHAIRMAN)
    cert = engine.cert(_der(person.cert))
    issuer = engine.cert(_der(person.chain[0]))
    now = datetime.now(UTC)
    res = engine.revocation(cert, issuer, now, ocsps=[], crls=[], pool=engine.pool([]), now=now, online=True)
    assert res.status.state == RevocationState.GOOD and res.status.source == "online_ocsp" and res.online
    # a CRL of the person CA, fetched by hand, answers for the certificate too
    crl = http_fetch(f"{trust_services.url}/crl/person.crl", None, "", 5, 1 << 20)
    answer = engine.crl_answer(crl, cert, issuer, "embedded_crl")
    assert isinstance(answer, Answer) and answer.status == "good"
    # ... but not for a certificate of another CA
    seal = engine.cert(_der(dev_pki.seal_cert(HALONG)))
    org_ca = engine.cert(_der(dev_pki.ca_cert("org")))
    assert engine.crl_answer(crl, seal, org_ca, "embedded_crl") is None
    # an OCSP response signed for one CA is not accepted for another's certificate
    req = ocsp.OCSPRequestBuilder().add_certificate(person.cert, person.chain[0], hashes.SHA256()).build()
    der = http_fetch(f"{trust_services.url}/ocsp/person", req.public_bytes(serialization.Encoding.DER),
                     "application/ocsp-request", 5, 1 << 20)
    assert isinstance(engine.ocsp_answer(der, cert, issuer, engine.pool([]), "embedded_ocsp"), Answer)
    assert engine.ocsp_answer(der, seal, org_ca, engine.pool([]), "embedded_ocsp") is None
    from asn1crypto import ocsp as asn1_ocsp

    signature = asn1_ocsp.OCSPResponse.load(der)["response_bytes"]["response"].parsed["signature"].native
    at = der.index(signature) + 10
    tampered = bytearray(der)
    tampered[at] ^= 0xFF  # inside the responder's signature
    bad = engine.ocsp_answer(bytes(tampered), cert, issuer, engine.pool([]), "embedded_ocsp")
    assert bad == "OCSP response signature does not verify"
    tampered = bytearray(der)
    tampered[-5] ^= 0xFF  # inside the responder's certificate
    assert isinstance(engine.ocsp_answer(bytes(tampered), cert, issuer, engine.pool([]), "embedded_ocsp"), str)


def test_online_is_refused_for_other_schemes() -> None:
    with pytest.raises(OnlineError):
        http_fetch("file:///etc/passwd", None, "", 1, 100)
    with pytest.raises(OnlineError):
        http_fetch("ldap://example.invalid/cn=ca", None, "", 1, 100)


def test_offline_engine_never_fetches(dev_pki: DevPki) -> None:
    calls: list[str] = []

    def fetch(url: str, *_args: object) -> bytes:
        calls.append(url)
        raise OnlineError("not here")

    engine = TrustEngine(TrustParams(anchors=(_der(dev_pki.root_cert),), allow_online=False), fetch=fetch)
    person = dev_pki.person(CHAIRMAN)
    cert, issuer = engine.cert(_der(person.cert)), engine.cert(_der(person.chain[0]))
    now = datetime.now(UTC)
    res = engine.revocation(cert, issuer, now, ocsps=[], crls=[], pool=engine.pool([]), now=now, online=True)
    assert res.status.state == RevocationState.UNKNOWN and calls == []
    assert hashlib.sha256(cert.der).hexdigest() == cert.fp


def test_a_host_that_is_down_is_not_asked_again_at_once(dev_pki: DevPki) -> None:
    calls: list[str] = []

    def fetch(url: str, *_args: object) -> bytes:
        calls.append(url)
        raise OnlineError(f"{url}: connection refused")

    engine = TrustEngine(TrustParams(anchors=(_der(dev_pki.root_cert),)), fetch=fetch)
    person = dev_pki.person(CHAIRMAN)
    cert, issuer = engine.cert(_der(person.cert)), engine.cert(_der(person.chain[0]))
    now = datetime.now(UTC)
    first = engine.revocation(cert, issuer, now, ocsps=[], crls=[], pool=engine.pool([]), now=now, online=True)
    assert first.status.state == RevocationState.UNKNOWN and len(calls) == 1, calls  # OCSP, then CRL: same host
    engine.revocation(cert, issuer, now, ocsps=[], crls=[], pool=engine.pool([]), now=now + timedelta(seconds=5),
                      online=True)
    assert len(calls) == 1
    engine.revocation(cert, issuer, now, ocsps=[], crls=[], pool=engine.pool([]), now=now + timedelta(minutes=2),
                      online=True)
    assert len(calls) == 2
