"""Test images rendered with Pillow: invoices in English and Chinese, rotated, noisy, EXIF-oriented."""

from __future__ import annotations

import io
import random
import struct
import zlib
from pathlib import Path

from PIL import Image, ImageDraw, ImageFont

LATIN_FONTS = (
    Path("/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf"),
    Path("/usr/share/fonts/truetype/wqy/wqy-zenhei.ttc"),
)
CJK_FONT = Path("/usr/share/fonts/truetype/wqy/wqy-zenhei.ttc")

INVOICE_LINES = ("INVOICE", "Order #W2378156", "Total $129.99")
CHINESE_LINES = ("订单号 #W2378156", "金额 129.99")


def font_path(cjk: bool = False) -> Path | None:
    """A TrueType font on this machine, or None."""
    candidates = (CJK_FONT,) if cjk else LATIN_FONTS
    return next((path for path in candidates if path.exists()), None)


def render_lines(lines: tuple[str, ...], *, cjk: bool = False, size: int = 40, width: int = 900) -> Image.Image:
    """Black text on white, one line per entry, at a readable size."""
    path = font_path(cjk)
    font = ImageFont.truetype(str(path), size) if path else ImageFont.load_default(size)
    line_height = int(size * 2)
    image = Image.new("RGB", (width, line_height * len(lines) + 2 * size), "white")
    draw = ImageDraw.Draw(image)
    for i, line in enumerate(lines):
        draw.text((size, size + i * line_height), line, font=font, fill="black")
    return image


def add_noise(image: Image.Image, *, fraction: float = 0.02, seed: int = 7) -> Image.Image:
    """Salt-and-pepper noise on ``fraction`` of the pixels (deterministic)."""
    noisy = image.copy()
    rng = random.Random(seed)
    pixels = noisy.load()
    assert pixels is not None
    for _ in range(int(noisy.width * noisy.height * fraction)):
        x, y = rng.randrange(noisy.width), rng.randrange(noisy.height)
        pixels[x, y] = (0, 0, 0) if rng.random() < 0.5 else (255, 255, 255)
    return noisy


def encode(image: Image.Image, fmt: str = "PNG", **params: object) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format=fmt, **params)
    return buffer.getvalue()


def invoice_png() -> bytes:
    return encode(render_lines(INVOICE_LINES))


def chinese_invoice_png() -> bytes:
    return encode(render_lines(CHINESE_LINES, cjk=True))


def rotated_noisy_invoice_png() -> bytes:
    """The English invoice turned 90° counter-clockwise, with salt-and-pepper noise."""
    return encode(add_noise(render_lines(INVOICE_LINES).rotate(90, expand=True)))


def exif_rotated_invoice_jpeg() -> tuple[bytes, tuple[int, int]]:
    """A JPEG whose pixels are sideways and whose EXIF orientation (6: rotate 90° CW to view) makes them upright.

    Returns the bytes and the upright (width, height).
    """
    upright = render_lines(INVOICE_LINES)
    stored = upright.rotate(90, expand=True)  # orientation 6 means: the viewer rotates this 90° clockwise
    exif = Image.Exif()
    exif[0x0112] = 6
    return encode(stored, "JPEG", quality=92, exif=exif.tobytes()), upright.size


def decompression_bomb_png(side: int = 100_000) -> bytes:
    """A PNG whose header claims side x side 1-bit pixels, with a tiny (truncated) body: a bomb's signature."""

    def chunk(kind: bytes, body: bytes) -> bytes:
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))

    header = struct.pack(">IIBBBBB", side, side, 1, 0, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(b"\x00" * 4096, 9))
