"""What perception writes into the graph's state (and the CLI's JSON ``perception`` field)."""

from __future__ import annotations

from typing import TypedDict


class Word(TypedDict):
    text: str
    confidence: float
    """Tesseract's word confidence, 0..100."""


class ImageTag(TypedDict):
    label: str
    probability: float


class ImagePerception(TypedDict):
    name: str
    mime_type: str
    width: int
    height: int
    """After EXIF orientation, before downscaling."""
    text: str
    """OCR text, words below the confidence floor marked like ``[?word]``."""
    words: list[Word]
    low_confidence: bool
    """Mean word confidence below the floor: treat the text as a guess."""
    tags: list[ImageTag]
    """Top ImageNet labels of EfficientNet-Lite0 with probabilities."""


class Segment(TypedDict):
    start: float
    end: float
    text: str


class VoiceFeatures(TypedDict):
    duration_s: float
    loudness_dbfs: float
    """RMS level in dB relative to full scale."""
    words_per_minute: float


class AudioPerception(TypedDict):
    name: str
    mime_type: str
    duration_s: float
    transcript: str
    segments: list[Segment]
    engine: str
    """Which recogniser produced the transcript (e.g. "faster-whisper tiny.en", "pocketsphinx")."""
    features: VoiceFeatures
