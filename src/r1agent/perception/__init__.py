"""Perception of attachments: images (OCR, tags) and voice notes (speech to text).

Each perceiver takes the raw bytes of one attachment with its declared name and MIME type, checks them
(size, format sniffed from the bytes, decodability) and returns a typed result, or raises
:class:`r1agent.errors.InputError` with a message naming the file and the limit or problem. Models load
on first use, so a text-only deployment pays nothing for them.
"""

from r1agent.perception.types import (
    AudioPerception,
    ImagePerception,
    ImageTag,
    Segment,
    VoiceFeatures,
    Word,
)

__all__ = ["AudioPerception", "ImagePerception", "ImageTag", "Segment", "VoiceFeatures", "Word"]
