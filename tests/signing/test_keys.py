"""Keys: the kept-key signer, the fast CMS container against pyHanko's own, and a real SoftHSM2 token."""

from __future__ import annotations

import asyncio
import io
from pathlib import Path

import pytest
from asn1crypto import cms
from conftest import CHAIRMAN, PIN, Token, assert_pdfsig_valid, pyhanko_report
from pyhanko.pdf_utils.reader import PdfFileReader
from pyhanko.sign.signers.pdf_cms import PdfCMSSignedAttributes, Signer

from docexchange.config import Settings
from docexchange.errors import KeystoreError, SigningError, WrongPassphrase
from docexchange.pki.devpki import DevPki
from docexchange.signing import PersonSigner, Placement, SigningKey, SigningService
from docexchange.signing.keys import check_digest


# -- the fast container is pyHanko's container -------------------------------------------------------------------
class _FixedTimestamper:
    def __init__(self, token: cms.ContentInfo) -> None:
        self.token = token

    async def async_timestamp(self, digest: bytes, md: str) -> cms.ContentInfo:
        return self.token


def _without_duplicate_certs(ci: cms.ContentInfo) -> dict[str, object]:
    sd = ci["content"]
    return {
        "certs": sorted({c.chosen.dump() for c in sd["certificates"]}),
        "rest": [sd[k].dump() for k in ("version", "digest_algorithms", "encap_content_info", "signer_infos")],
    }


@pytest.mark.parametrize("with_timestamp", [False, True], ids=["B-B", "B-T"])
def test_fast_container_matches_pyhanko(dev_pki: DevPki, with_timestamp: bool) -> None:
    """RSA PKCS#1 v1.5 is deterministic: both paths must give the same signer info, byte for byte. (pyHanko also
    embeds the signer's certificate twice; ours once.)"""
    key = SigningKey.from_material(dev_pki.person(CHAIRMAN))
    signer = key.signer
    digest = bytes(range(32))

    async def both() -> tuple[cms.ContentInfo, cms.ContentInfo]:
        ts = None
        if with_timestamp:
            ts = _FixedTimestamper(await signer.async_sign(bytes(32), "sha256", use_pades=True))
        fast = await signer.async_sign(digest, "sha256", use_pades=True, timestamper=ts,
                                       signed_attr_settings=PdfCMSSignedAttributes())
        slow = await Signer.async_sign(signer, digest, "sha256", use_pades=True, timestamper=ts,
                                       signed_attr_settings=PdfCMSSignedAttributes())
        return fast, slow

    fast, slow = asyncio.run(both())
    assert _without_duplicate_certs(fast) == _without_duplicate_certs(slow)
    assert len(fast["content"]["certificates"]) == 3  # signer, issuing CA, root — each once


def test_digest_policy() -> None:
    assert check_digest("SHA-256") == "sha256"
    assert check_digest("sha3-384") == "sha3_384"
    for weak in ("sha1", "md5", "sha224x"):
        with pytest.raises(SigningError):
            check_digest(weak)


def test_short_rsa_keys_are_refused() -> None:
    from cryptography.hazmat.primitives.asymmetric import rsa

    from docexchange.signing.keys import KeptKeySigner

    small = rsa.generate_private_key(public_exponent=65537, key_size=1024)
    with pytest.raises(KeystoreError):
        KeptKeySigner(small, None)  # type: ignore[arg-type]


# -- SoftHSM2 (the token fixture is in conftest.py) ----------------------------------------------------------
def _token_key(token: Token, dev_pki: DevPki, pin: str = PIN, key_label: str | None = None,
               rsa_pss: bool = False) -> SigningKey:
    return SigningKey.from_pkcs11(str(token.lib), token_label=token.label, key_label=key_label or token.key_label,
                                  pin=pin, chain=[*dev_pki.intermediates(), dev_pki.root_cert], rsa_pss=rsa_pss)


@pytest.mark.parametrize("rsa_pss", [False, True], ids=["pkcs1v15", "pss"])
def test_softhsm_token_signs_person_then_seal(softhsm_token: Token, dev_pki: DevPki, service: SigningService,
                                              letter: bytes, root_pem: Path, nss_db: Path, tmp_path: Path,
                                              rsa_pss: bool) -> None:
    key = _token_key(softhsm_token, dev_pki, rsa_pss=rsa_pss)
    assert key.on_token and key.cert == dev_pki.person(CHAIRMAN).cert
    signer = PersonSigner(key, dev_pki.signature_image(CHAIRMAN), full_name="Trần Quang Hưng")
    try:
        once = service.sign(letter, signer, level="B-LT")
        twice = service.sign(once, signer, level="B-B", placement=Placement(page=1, box=(60, 40, 200, 100)))
    finally:
        signer.close()
    sealed = service.sign(once, service.seal("000.00.11.H49"), level="B-LT")
    for pdf, n in ((once, 1), (sealed, 2), (twice, 2)):
        reports = pyhanko_report(pdf, root_pem)
        assert len(reports) == n and all(r.intact and r.valid and r.trusted for r in reports)
    # pdfsig: not on `twice`. When one certificate signs a document twice, poppler 22.12/NSS reports the second
    # signature "Valid" but its certificate "Unknown issue" (deterministic per file, depending on the file's
    # layout; reproduced with pyHanko's own PdfSigner and an image stamp, so not ours). NĐ 30 documents carry
    # two certificates (person, then seal), which pdfsig checks everywhere else.
    for pdf, n in ((once, 1), (sealed, 2)):
        assert_pdfsig_valid(pdf, nss_db, tmp_path, expected_signatures=n)
    mech = PdfFileReader(io.BytesIO(once)).embedded_signatures[0].signer_info["signature_algorithm"]["algorithm"]
    assert mech.native == ("rsassa_pss" if rsa_pss else "sha256_rsa")


def test_softhsm_wrong_pin(softhsm_token: Token, dev_pki: DevPki) -> None:
    with pytest.raises(WrongPassphrase) as err:
        _token_key(softhsm_token, dev_pki, pin="000000")
    assert "PIN" in err.value.message_vi


def test_softhsm_missing_key(softhsm_token: Token, dev_pki: DevPki) -> None:
    with pytest.raises(KeystoreError) as err:
        _token_key(softhsm_token, dev_pki, key_label="khong-co")
    assert "khong-co" in err.value.message_vi


def test_softhsm_missing_token_and_library(softhsm_token: Token, dev_pki: DevPki, tmp_path: Path) -> None:
    with pytest.raises(KeystoreError):
        SigningKey.from_pkcs11(str(softhsm_token.lib), token_label="khong-co", key_label="x", pin=PIN)
    with pytest.raises(KeystoreError):
        SigningKey.from_pkcs11(str(tmp_path / "nope.so"), token_label="x", key_label="x", pin=PIN)


def test_p12_signer_from_file(pki_settings: Settings, dev_pki: DevPki) -> None:
    key = SigningKey.from_pkcs12(dev_pki.person_p12(CHAIRMAN), dev_pki.passphrase)
    assert key.cert == dev_pki.person(CHAIRMAN).cert and len(key.chain) == 2
    assert key.subject_name == "Trần Quang Hưng" and not key.on_token
    with pytest.raises(WrongPassphrase):
        SigningKey.from_pkcs12(dev_pki.person_p12(CHAIRMAN), "sai")


def test_chain_for_keeps_only_the_signers_path(dev_pki: DevPki) -> None:
    from docexchange.signing.keys import chain_for

    person = dev_pki.person(CHAIRMAN).cert
    pool = [dev_pki.ca_cert("org"), dev_pki.root_cert, dev_pki.ca_cert("person")]
    assert chain_for(person, pool) == (dev_pki.ca_cert("person"), dev_pki.root_cert)
    seal = dev_pki.seal("000.00.11.H49").cert
    assert chain_for(seal, pool) == (dev_pki.ca_cert("org"), dev_pki.root_cert)
    assert chain_for(person, [dev_pki.ca_cert("org")]) == ()  # same name would not do: signatures are checked
    key = SigningKey.from_pkcs12(dev_pki.person_p12(CHAIRMAN), dev_pki.passphrase, extra_chain=pool)
    assert key.chain == (dev_pki.ca_cert("person"), dev_pki.root_cert)
