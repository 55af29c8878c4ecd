"""``docexchange sign`` and ``docexchange sample-letter``: a thin layer over :mod:`docexchange.signing`.

One command per job::

    docexchange sample-letter letter.pdf
    docexchange sign letter.pdf signed.pdf --person h49-halong-chu-tich          # template field found
    docexchange sign in.pdf out.pdf --person key.p12 --image sig.png --page 1 --box 350,120,520,190
    docexchange sign signed.pdf final.pdf --seal 000.00.11.H49                  # over the person's signature
    docexchange sign annex.pdf annex-signed.pdf --seal 000.00.11.H49 --appendix 05/QĐ-UBND
    docexchange sign in.pdf copy.pdf --seal 000.00.11.H49 --copy "SAO Y"
    docexchange sign in.pdf out.pdf --person h49-halong-chu-tich --pkcs11-lib /usr/lib/softhsm/libsofthsm2.so \\
        --token-label officials --key-label h49-halong-chu-tich
"""

from __future__ import annotations

import os
from datetime import date
from pathlib import Path

import click
from cryptography import x509

from docexchange.cli.runtime import CliContext, echo_ok, pass_ctx
from docexchange.config import PadesLevel, Settings
from docexchange.errors import InvalidPdf, SigningError
from docexchange.pki.keystore import load_cert, write_atomic

__all__ = ["sample_letter", "sign"]

PIN_ENV = "DOCEXCHANGE_TOKEN_PIN"


def _parse_box(text: str) -> tuple[float, float, float, float]:
    parts = [p for p in text.replace(";", ",").replace(" ", ",").split(",") if p]
    try:
        values = tuple(float(p) for p in parts)
    except ValueError:
        values = ()
    if len(values) != 4:
        raise click.BadParameter("cần 4 số x1,y1,x2,y2 (điểm PDF) — expected x1,y1,x2,y2 in PDF points")
    x1, y1, x2, y2 = values
    return (x1, y1, x2, y2)


def _secret(env_name: str, prompt: str) -> str:
    value = os.environ.get(env_name)
    if value is not None:
        return value
    return str(click.prompt(prompt, hide_input=True, err=True))


def _read_input(path: Path, settings: Settings) -> bytes:
    limit = settings.signing.max_pdf_mb * 1024 * 1024
    try:
        size = path.stat().st_size
        if size > limit:
            raise InvalidPdf(
                f"Tệp {path} quá lớn ({size // (1024 * 1024)} MB, tối đa {settings.signing.max_pdf_mb} MB)",
                f"{path} is too large ({size} bytes, at most {limit})",
            )
        with path.open("rb") as fh:
            return fh.read(limit + 1)
    except FileNotFoundError:
        raise InvalidPdf(f"Không tìm thấy tệp {path}", f"file {path} not found") from None
    except IsADirectoryError:
        raise InvalidPdf(f"{path} là thư mục", f"{path} is a directory") from None


def _chain_from_keys(settings: Settings) -> list[x509.Certificate]:
    ca_dir = settings.keys_dir / "ca"
    return [load_cert(p) for p in sorted(ca_dir.glob("*.crt"))] if ca_dir.is_dir() else []


@click.command("sign")
@click.argument("input_pdf", type=click.Path(path_type=Path, dir_okay=False))
@click.argument("output_pdf", type=click.Path(path_type=Path, dir_okay=False))
@click.option("--person", metavar="ID|P12", help="Người ký: mã cán bộ trong danh bạ hoặc tệp .p12 — the official.")
@click.option("--seal", metavar="CODE|P12", help="Con dấu: mã cơ quan hoặc tệp .p12 — the organisation's seal key.")
@click.option("--image", type=click.Path(path_type=Path, dir_okay=False, exists=True),
              help="Ảnh chữ ký/con dấu PNG (bắt buộc với .p12 hoặc token) — signature or seal image.")
@click.option("--name", "display_name", help="Tên hiển thị (mặc định lấy từ danh bạ/chứng thư) — signer name.")
@click.option("--field", help="Ký vào ô chữ ký có tên này — sign into this (empty) signature field.")
@click.option("--page", type=click.IntRange(min=1), help="Trang (từ 1) của ô --box — page of --box, from 1.")
@click.option("--box", "box_text", metavar="X1,Y1,X2,Y2", help="Ô chữ ký (điểm PDF, gốc dưới-trái) — box in points.")
@click.option("--appendix", metavar="SỐ/KÝ-HIỆU", help="Ký văn bản kèm theo của văn bản số … (với --seal).")
@click.option("--copy", "copy_kind", metavar="HÌNH-THỨC", help='Bản sao điện tử: "SAO Y", "SAO LỤC", "TRÍCH SAO".')
@click.option("--copy-org", help="Cơ quan sao (mặc định: cơ quan giữ con dấu) — the copying organisation.")
@click.option("--copy-number", help="Số, ký hiệu bản sao — number of the copy (optional).")
@click.option("--level", type=click.Choice([lvl.value for lvl in PadesLevel]), default=None,
              help="Mức PAdES (mặc định theo cấu hình, B-LT) — PAdES baseline level.")
@click.option("--pkcs11-lib", type=click.Path(path_type=Path, dir_okay=False), help="Thư viện PKCS#11 của token.")
@click.option("--token-label", help="Nhãn token — token label.")
@click.option("--key-label", help="Nhãn khóa trên token — key label on the token.")
@click.option("--cert-label", help="Nhãn chứng thư (mặc định = nhãn khóa) — certificate label.")
@click.option("--pin-env", default=PIN_ENV, show_default=True, help="Biến môi trường chứa PIN (không có thì hỏi).")
@pass_ctx
def sign(ctx: CliContext, input_pdf: Path, output_pdf: Path, person: str | None, seal: str | None,
         image: Path | None, display_name: str | None, field: str | None, page: int | None, box_text: str | None,
         appendix: str | None, copy_kind: str | None, copy_org: str | None, copy_number: str | None,
         level: str | None, pkcs11_lib: Path | None, token_label: str | None, key_label: str | None,
         cert_label: str | None, pin_env: str) -> None:
    """Ký số văn bản PDF theo NĐ 30/2020 (PAdES) — sign a PDF as NĐ 30/2020 requires.

    Người có thẩm quyền ký trước (--person), văn thư ký số của cơ quan sau (--seal). The person signs first; the
    clerk then applies the organisation's seal signature. The input file is never modified; the output is
    written atomically.
    """
    from docexchange.signing import (
        AppendixMark,
        CopyKind,
        CopyMark,
        PersonSigner,
        Placement,
        SealSigner,
        SigningKey,
        SigningService,
    )

    settings = ctx.settings
    if (person is None) == (seal is None):
        raise click.UsageError("Chọn đúng một: --person hoặc --seal — give exactly one of --person or --seal")
    if (appendix or copy_kind) and person:
        raise click.UsageError("--appendix/--copy là chữ ký của cơ quan: dùng --seal — they need --seal")
    if appendix and copy_kind:
        raise click.UsageError("Chỉ chọn một: --appendix hoặc --copy — choose one of --appendix or --copy")
    if seal and (field or box_text or page):
        raise click.UsageError("Vị trí chữ ký của cơ quan do NĐ 30 quy định: bỏ --field/--page/--box")
    if page and not box_text:
        raise click.UsageError("--page đi cùng --box — --page needs --box")
    token_opts = (pkcs11_lib, token_label, key_label)
    if any(token_opts) and not all(token_opts):
        raise click.UsageError("Token cần đủ --pkcs11-lib, --token-label và --key-label")
    if input_pdf.resolve() == output_pdf.resolve():
        raise click.UsageError("Tệp đầu ra phải khác tệp đầu vào (không sửa tệp gốc) — OUTPUT must differ from INPUT")
    data = _read_input(input_pdf, settings)

    who = person or seal
    assert who is not None
    is_file = who.lower().endswith((".p12", ".pfx"))
    directory = None if is_file else ctx.directory()
    rsa_pss = settings.signing.rsa_pss

    # which key
    if pkcs11_lib:
        pin = _secret(pin_env, f"PIN của token '{token_label}' (token PIN)")
        key = SigningKey.from_pkcs11(str(pkcs11_lib), token_label=str(token_label), key_label=str(key_label),
                                     cert_label=cert_label, pin=pin, chain=_chain_from_keys(settings), rsa_pss=rsa_pss)
    elif is_file:
        passphrase = _secret(settings.pki.passphrase_env, f"Mật khẩu tệp khóa {who} (passphrase)")
        key = SigningKey.from_pkcs12(Path(who), passphrase, rsa_pss=rsa_pss, extra_chain=_chain_from_keys(settings))
    else:
        key = None  # loaded below from the dev PKI layout

    signer: PersonSigner | SealSigner
    if person:
        if directory is not None:
            agency, official = directory.find_official(person)
            img = image or settings.keys_dir / "persons" / person / "signature.png"
            if key is None:
                passphrase = _secret(settings.pki.passphrase_env, f"Mật khẩu khóa của {official.full_name}")
                key = SigningKey.from_pkcs12(settings.keys_dir / "persons" / person / "key.p12", passphrase,
                                             rsa_pss=rsa_pss, extra_chain=_chain_from_keys(settings))
            signer = PersonSigner(key, img, full_name=display_name or official.full_name, official_id=person,
                                  location=agency.place)
        else:
            if image is None:
                raise click.UsageError("Cần --image (ảnh chữ ký PNG) khi ký bằng tệp .p12")
            assert key is not None
            signer = PersonSigner(key, image, full_name=display_name or "")
    else:
        assert seal is not None
        if directory is not None:
            agency = directory.agency(seal)
            img = image or settings.keys_dir / "agencies" / agency.code / "seal.png"
            if key is None:
                passphrase = _secret(settings.pki.passphrase_env, f"Mật khẩu khóa con dấu {agency.name}")
                key = SigningKey.from_pkcs12(settings.keys_dir / "agencies" / agency.code / "seal.p12", passphrase,
                                             rsa_pss=rsa_pss, extra_chain=_chain_from_keys(settings))
            signer = SealSigner(key, img, agency_name=display_name or agency.name, agency_code=agency.code,
                                location=agency.place)
        else:
            if image is None and not (appendix or copy_kind):
                raise click.UsageError("Cần --image (ảnh con dấu PNG) khi ký bằng tệp .p12")
            assert key is not None
            signer = SealSigner(key, image or _blank_png(), agency_name=display_name or "")

    placement = None
    if person:
        placement = Placement(field=field, page=page if box_text else None,
                              box=_parse_box(box_text) if box_text else None)
    appendix_mark = AppendixMark(appendix) if appendix else None
    copy_mark = CopyMark(CopyKind.parse(copy_kind), copy_org or "", copy_number or "") if copy_kind else None

    try:
        with SigningService(settings) as service:
            signed = service.sign(data, signer, level=level, placement=placement, appendix=appendix_mark,
                                  copy=copy_mark)
    finally:
        signer.close()
    try:
        write_atomic(output_pdf, signed)
    except OSError as exc:
        raise SigningError(f"Không ghi được {output_pdf}: {exc.strerror}", f"cannot write {output_pdf}: {exc}") from exc
    lvl = level or settings.signing.level.value
    role = ("bản sao" if copy_mark else "văn bản kèm theo" if appendix_mark else
            "chữ ký cá nhân" if person else "chữ ký của cơ quan")
    echo_ok(f"Đã ký {output_pdf} ({role}, PAdES {lvl}, {len(signed)} byte) — signed")


def _blank_png() -> bytes:
    """A 1×1 transparent PNG: appendix/copy signatures show text only, but a SealSigner needs some image."""
    import io

    from PIL import Image

    buf = io.BytesIO()
    Image.new("RGBA", (1, 1), (0, 0, 0, 0)).save(buf, format="PNG")
    return buf.getvalue()


@click.command("sample-letter")
@click.argument("output_pdf", type=click.Path(path_type=Path, dir_okay=False))
@click.option("--official", default="h49-halong-chu-tich", show_default=True,
              help="Người ký trong danh bạ (cơ quan, chức vụ, họ tên) — the signing official.")
@click.option("--number", default="05", show_default=True, help="Số văn bản.")
@click.option("--notation", default=None, help="Ký hiệu (mặc định theo loại: QĐ-UBND, UBND-VP…) — notation.")
@click.option("--date", "issued", default="2025-01-05", show_default=True, help="Ngày ban hành YYYY-MM-DD.")
@click.option("--type", "doc_type", default="QUYẾT ĐỊNH", show_default=True, help="Tên loại văn bản.")
@click.option("--subject", default=None, help="Trích yếu nội dung.")
@click.option("--size", default=None, help="Độn thêm phụ lục tới cỡ này (50KB, 1MB, 10MB) — pad to this size.")
@pass_ctx
def sample_letter(ctx: CliContext, output_pdf: Path, official: str, number: str, notation: str | None,
                  issued: str, doc_type: str, subject: str | None, size: str | None) -> None:
    """Tạo văn bản mẫu theo thể thức NĐ 30 — write a sample Vietnamese official letter (PDF).

    The letter has an empty signature field in its signature block, so `docexchange sign --person` needs no
    position.
    """
    from docexchange.signing.letter import LetterSpec, make_letter, parse_size

    try:
        day = date.fromisoformat(issued)
    except ValueError:
        raise click.BadParameter(f"ngày không hợp lệ: {issued} (YYYY-MM-DD)", param_hint="--date") from None
    overrides: dict[str, object] = {"number": number, "issued": day, "doc_type": doc_type}
    if notation:
        overrides["notation"] = notation
    if subject:
        overrides["subject"] = subject
    if size:
        overrides["target_bytes"] = parse_size(size)
    spec = LetterSpec.for_official(ctx.directory(), official, **overrides)
    pdf = make_letter(spec, font=ctx.settings.signing.font)
    write_atomic(output_pdf, pdf)
    echo_ok(f"Đã tạo {output_pdf}: {spec.doc_type} số {spec.reference}, {len(pdf)} byte — sample letter written")
