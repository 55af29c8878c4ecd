"""Finding a Unicode font with full Vietnamese coverage (Times-metric serif: Liberation Serif 2.x).

Liberation Serif/Sans 2.x (SIL Open Font License, see ``fonts_data/LICENSE-Liberation.txt``) ship as package
data, so stamps render the same on every machine; Debian's ``fonts-liberation2`` and DejaVu are fallbacks. A font
is only accepted if it really carries every Vietnamese letter: Liberation 1.x lacks ơ, ư and the dotted vowels,
and a stamp with missing glyphs is worse than an error.
"""

from __future__ import annotations

import functools
from pathlib import Path

from docexchange.errors import ConfigError

__all__ = ["VIETNAMESE_SAMPLE", "find_font"]

VIETNAMESE_SAMPLE = (
    "ĂÂĐÊÔƠƯăâđêôơưẠẢẤẦẨẪẬẮẰẲẴẶẸẺẼẾỀỂỄỆỈỊỌỎỐỒỔỖỘỚỜỞỠỢỤỦỨỪỬỮỰỲỴỶỸ"
    "ạảấầẩẫậắằẳẵặẹẻẽếềểễệỉịọỏốồổỗộớờởỡợụủứừửữựỳỵỷỹ"
)

_DIRS = [
    Path(__file__).resolve().parent / "fonts_data",
    Path("/usr/share/fonts/truetype/liberation2"),
    Path("/usr/share/fonts/truetype/liberation"),
    Path("/usr/share/fonts/truetype/dejavu"),
]
_NAMES = {
    ("serif", False): ["LiberationSerif-Regular.ttf", "DejaVuSerif.ttf"],
    ("serif", True): ["LiberationSerif-Bold.ttf", "DejaVuSerif-Bold.ttf"],
    ("sans", False): ["LiberationSans-Regular.ttf", "DejaVuSans.ttf"],
    ("sans", True): ["LiberationSans-Bold.ttf", "DejaVuSans-Bold.ttf"],
}


@functools.cache
def covers_vietnamese(path: Path) -> bool:
    from fontTools.ttLib import TTFont

    try:
        cmap = TTFont(str(path), lazy=True).getBestCmap()
    except Exception:
        return False
    return all(ord(c) in cmap for c in VIETNAMESE_SAMPLE)


@functools.cache
def find_font(family: str = "serif", bold: bool = False, configured: str = "") -> Path:
    """Path of a TrueType font with full Vietnamese coverage; ``configured`` wins when given."""
    if configured:
        path = Path(configured)
        if not path.is_file():
            raise ConfigError(f"Không tìm thấy phông chữ {path}", f"font file {path} not found")
        if not covers_vietnamese(path):
            raise ConfigError(
                f"Phông chữ {path} thiếu ký tự tiếng Việt", f"font {path} lacks Vietnamese glyphs"
            )
        return path
    for name in _NAMES[(family, bold)]:
        for folder in _DIRS:
            candidate = folder / name
            if candidate.is_file() and covers_vietnamese(candidate):
                return candidate
    raise ConfigError(
        "Không tìm thấy phông chữ có đủ dấu tiếng Việt: cài gói fonts-liberation2 (apt-get install fonts-liberation2)",
        "no font with full Vietnamese coverage found: install fonts-liberation2 (Debian) or set signing.font",
    )
