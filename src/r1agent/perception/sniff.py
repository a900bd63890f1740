"""Recognise an attachment's format from its first bytes, and check it against the declared MIME type.

A client's declared MIME type (or a file's extension) is only a claim: decoders are chosen from what the bytes
are, and a mismatch is reported to the customer instead of being decoded as something else. The canonical
MIME types returned are ``image/png``, ``image/jpeg``, ``image/webp``, ``image/gif``, ``audio/wav``,
``audio/mpeg`` (MP3), ``audio/ogg`` (Opus or Vorbis), ``audio/flac``, ``audio/mp4`` (M4A/MP4 brands) and
``application/pdf``; common aliases (``image/jpg``, ``audio/x-wav``, ``audio/mp3``, ``audio/x-m4a``,
``audio/opus``...) are folded into them by :func:`canonical_mime`.
"""

from __future__ import annotations

from r1agent.errors import InputError

FORMAT_NAMES: dict[str, str] = {
    "image/png": "PNG",
    "image/jpeg": "JPEG",
    "image/webp": "WebP",
    "image/gif": "GIF",
    "audio/wav": "WAV",
    "audio/mpeg": "MP3",
    "audio/ogg": "Ogg",
    "audio/flac": "FLAC",
    "audio/mp4": "M4A/MP4",
    "application/pdf": "PDF",
}
"""Canonical MIME type -> the name used in messages ("its bytes are a JPEG")."""

_ALIASES: dict[str, str] = {
    "image/jpg": "image/jpeg",
    "image/pjpeg": "image/jpeg",
    "image/x-png": "image/png",
    "audio/x-wav": "audio/wav",
    "audio/wave": "audio/wav",
    "audio/vnd.wave": "audio/wav",
    "audio/mp3": "audio/mpeg",
    "audio/x-mp3": "audio/mpeg",
    "audio/mpeg3": "audio/mpeg",
    "audio/x-mpeg": "audio/mpeg",
    "audio/x-m4a": "audio/mp4",
    "audio/m4a": "audio/mp4",
    "audio/aac": "audio/mp4",
    "video/mp4": "audio/mp4",
    "audio/opus": "audio/ogg",
    "audio/vorbis": "audio/ogg",
    "application/ogg": "audio/ogg",
    "audio/x-flac": "audio/flac",
    "application/x-pdf": "application/pdf",
}

_MP4_BRANDS = (b"M4A ", b"M4B ", b"mp41", b"mp42", b"isom", b"iso2", b"iso4", b"iso5", b"dash", b"MSNV")

_UNDECLARED = ("", "application/octet-stream", "binary/octet-stream")


def canonical_mime(mime_type: str) -> str:
    """Lower-case, drop parameters (``; codecs=opus``) and fold aliases into the canonical type."""
    base = mime_type.split(";", 1)[0].strip().lower()
    return _ALIASES.get(base, base)


def sniff_mime(data: bytes) -> str | None:
    """The canonical MIME type the bytes' signature shows, or None when it is none of the known formats."""
    head = data[:16]
    if head.startswith(b"\x89PNG\r\n\x1a\n"):
        return "image/png"
    if head.startswith(b"\xff\xd8\xff"):
        return "image/jpeg"
    if head.startswith(b"RIFF") and head[8:12] == b"WEBP":
        return "image/webp"
    if head.startswith((b"GIF87a", b"GIF89a")):
        return "image/gif"
    if head.startswith(b"RIFF") and head[8:12] == b"WAVE":
        return "audio/wav"
    if head.startswith(b"%PDF-"):
        return "application/pdf"
    if head.startswith(b"OggS"):
        return "audio/ogg"
    if head.startswith(b"fLaC"):
        return "audio/flac"
    if head[4:8] == b"ftyp" and head[8:12] in _MP4_BRANDS:
        return "audio/mp4"
    if head.startswith(b"ID3"):
        return "audio/mpeg"
    # MPEG audio frame sync: 11 set bits, then a layer other than "reserved" (00 is ADTS AAC, not MP3).
    if len(head) >= 2 and head[0] == 0xFF and head[1] & 0xE0 == 0xE0 and head[1] & 0x06 != 0:
        return "audio/mpeg"
    return None


def check_declared(name: str, declared_mime: str, data: bytes, allowed: dict[str, str]) -> str:
    """Check that ``data`` is one of the ``allowed`` formats and is what ``declared_mime`` says.

    ``allowed`` maps MIME types (aliases are fine) to the names listed in the message. An empty or
    ``application/octet-stream`` declaration means "unknown" and accepts whatever the bytes are.
    Returns the canonical MIME type of the bytes; raises :class:`InputError` naming the file otherwise.
    """
    supported = {canonical_mime(mime): label for mime, label in allowed.items()}
    listing = ", ".join(dict.fromkeys(supported.values()))
    sniffed = sniff_mime(data)
    if sniffed is None or sniffed not in supported:
        what = FORMAT_NAMES[sniffed] if sniffed else "unrecognised content"
        raise InputError(f"{name}: unsupported file type ({what}); supported: {listing}")
    declared = canonical_mime(declared_mime)
    if declared not in _UNDECLARED and declared != sniffed:
        article = "an" if FORMAT_NAMES[sniffed][0] in "AEIMO" else "a"
        raise InputError(
            f"{name} says {declared_mime.split(';', 1)[0].strip()} but its bytes are {article} "
            f"{FORMAT_NAMES[sniffed]}; send it with the right type ({listing} are supported)"
        )
    return sniffed
