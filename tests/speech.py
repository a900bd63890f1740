"""Real test audio: speech from espeak-ng, conversions and synthetic signals from sox, and the
compressed formats sox cannot write here (MP3, M4A/AAC, Opus) encoded with PyAV.

A missing tool skips the test locally and fails it in CI (``CI`` set), so CI never silently runs without
the audio checks.
"""

from __future__ import annotations

import os
import random
import shutil
import subprocess
from pathlib import Path

import pytest

SENTENCE = "I want to check the status of order W two three seven eight one five six"


def _need(tool: str) -> str:
    path = shutil.which(tool)
    if path is None:
        reason = f"{tool} is not installed (Debian: apt-get install {tool})"
        if os.environ.get("CI"):
            pytest.fail(reason)
        pytest.skip(reason)
    return path


def speak(text: str, path: Path, *, words_per_minute: int = 150) -> Path:
    """Synthesise ``text`` into a WAV file (22.05 kHz mono 16-bit) with espeak-ng."""
    espeak = _need("espeak-ng")
    subprocess.run([espeak, "-w", str(path), "-s", str(words_per_minute), text], check=True, capture_output=True)
    return path


def sox_convert(src: Path, dst: Path, *extra: str) -> Path:
    """Convert with sox; the output format follows ``dst``'s suffix (.flac, .ogg for Vorbis, .wav)."""
    sox = _need("sox")
    subprocess.run([sox, str(src), *extra, str(dst)], check=True, capture_output=True)
    return dst


def sox_synth(dst: Path, seconds: float, kind: str = "sine 440", *, rate: int = 16000) -> Path:
    """A synthetic signal: ``kind`` is a sox synth type ("sine 440", "whitenoise", "pinknoise")."""
    sox = _need("sox")
    cmd = [sox, "-n", "-r", str(rate), "-c", "1", "-b", "16", str(dst), "synth", str(seconds), *kind.split()]
    subprocess.run([*cmd, "vol", "0.3"], check=True, capture_output=True)
    return dst


def silence(dst: Path, seconds: float = 3.0) -> Path:
    """Digital silence (all zeros) as WAV."""
    sox = _need("sox")
    cmd = [sox, "-n", "-r", "16000", "-c", "1", "-b", "16", str(dst), "trim", "0", str(seconds)]
    subprocess.run(cmd, check=True, capture_output=True)
    return dst


def noise(dst: Path, seconds: float = 3.0) -> Path:
    return sox_synth(dst, seconds, "whitenoise")


def long_tone(dst: Path, seconds: float) -> Path:
    """A long file made cheaply (low rate, 8-bit FLAC stays small even for minutes)."""
    sox = _need("sox")
    cmd = [sox, "-n", "-r", "8000", "-c", "1", "-b", "16", str(dst), "synth", str(seconds), "sine", "300"]
    subprocess.run(cmd, check=True, capture_output=True)
    return dst


def av_encode(src: Path, dst: Path, codec: str, container: str, *, rate: int = 16000) -> Path:
    """Encode ``src`` with PyAV (e.g. codec "libmp3lame"/"mp3" + container "mp3", "aac" + "mp4",
    "libopus" + "ogg"). Skips (or fails in CI) when this FFmpeg build lacks the encoder."""
    import av

    if codec not in av.codecs_available:
        reason = f"this FFmpeg build has no {codec} encoder"
        if os.environ.get("CI"):
            pytest.fail(reason)
        pytest.skip(reason)
    out_rate = 48000 if codec in {"libopus", "opus"} else rate
    with av.open(str(src)) as inp, av.open(str(dst), "w", format=container) as out:
        stream = out.add_stream(codec, rate=out_rate)
        assert isinstance(stream, av.AudioStream)
        stream.layout = "mono"
        resampler = av.AudioResampler(format=stream.format.name, layout="mono", rate=out_rate)
        frames = [f for frame in inp.decode(audio=0) for f in resampler.resample(frame)]
        frames.extend(resampler.resample(None))
        for frame in frames:
            frame.pts = None
            for packet in stream.encode(frame):
                out.mux(packet)
        for packet in stream.encode(None):
            out.mux(packet)
    return dst


def truncated(data: bytes, keep: int) -> bytes:
    """The first ``keep`` bytes: a download cut short."""
    return data[:keep]


def random_bytes(n: int = 4096, seed: int = 7) -> bytes:
    return random.Random(seed).randbytes(n)
