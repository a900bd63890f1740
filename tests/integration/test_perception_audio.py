"""Voice notes on real audio (espeak-ng speech, sox/PyAV encodings) and the real Whisper tiny.en."""

from __future__ import annotations

import importlib.util
import re
from pathlib import Path

import pytest

from r1agent.errors import InputError
from r1agent.perception import audio as audio_module
from r1agent.perception.audio import AudioPerceiver
from tests import speech

LIMIT_BYTES = 25_000_000
LIMIT_SECONDS = 300.0


def _norm(text: str) -> str:
    return re.sub(r"[^a-z0-9]", "", text.lower())


@pytest.fixture(scope="module")
def folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("audio")


@pytest.fixture(scope="module")
def spoken(folder: Path) -> Path:
    return speech.speak(speech.SENTENCE, folder / "order.wav")


@pytest.fixture(scope="module")
def perceiver() -> AudioPerceiver:
    """One instance for the module: Whisper loads once."""
    return AudioPerceiver(max_bytes=LIMIT_BYTES, max_seconds=LIMIT_SECONDS)


def test_whisper_transcribes_an_order_question(perceiver: AudioPerceiver, spoken: Path) -> None:
    result = perceiver.perceive(spoken.read_bytes(), name="order.wav", mime_type="audio/wav")

    text = result["transcript"].lower()
    assert "status" in text
    assert "order" in text
    # tiny.en hears espeak's "W two three seven eight one five six" as e.g. "W23sevinate 156": the order
    # number comes out as digits, though not every one of them.
    normalised = _norm(result["transcript"])
    assert "2378156" in normalised or ("23" in normalised and "156" in normalised), result["transcript"]
    assert result["engine"].startswith("faster-whisper")
    assert result["mime_type"] == "audio/wav"
    assert result["name"] == "order.wav"
    assert result["segments"]
    for segment in result["segments"]:
        assert 0.0 <= segment["start"] < segment["end"] <= result["duration_s"] + 0.5
        assert segment["text"]
    assert 3.0 < result["duration_s"] < 8.0
    features = result["features"]
    assert features["duration_s"] == result["duration_s"]
    assert 60.0 < features["words_per_minute"] < 250.0
    assert -40.0 < features["loudness_dbfs"] < 0.0


ENCODINGS = [
    pytest.param("flac", id="flac"),
    pytest.param("ogg", id="ogg-vorbis"),
    pytest.param("mp3", id="mp3"),
    pytest.param("m4a", id="m4a-aac"),
    pytest.param("opus", id="ogg-opus"),
]


def _encode(kind: str, src: Path, folder: Path) -> tuple[Path, str]:
    if kind == "flac":
        return speech.sox_convert(src, folder / "order.flac"), "audio/flac"
    if kind == "ogg":
        return speech.sox_convert(src, folder / "order.ogg"), "audio/ogg"
    if kind == "mp3":  # sox here has no MP3 writer
        return speech.av_encode(src, folder / "order.mp3", "libmp3lame", "mp3"), "audio/mpeg"
    if kind == "m4a":
        return speech.av_encode(src, folder / "order.m4a", "aac", "mp4"), "audio/x-m4a"
    return speech.av_encode(src, folder / "order.opus", "libopus", "ogg"), "audio/opus"


@pytest.mark.parametrize("kind", ENCODINGS)
def test_every_supported_format_transcribes(perceiver: AudioPerceiver, spoken: Path, folder: Path, kind: str) -> None:
    path, mime = _encode(kind, spoken, folder)
    result = perceiver.perceive(path.read_bytes(), name=path.name, mime_type=mime)
    assert "status" in result["transcript"].lower(), result["transcript"]
    assert 4.5 < result["duration_s"] < 6.5


def test_silence_has_no_words(perceiver: AudioPerceiver, folder: Path) -> None:
    path = speech.silence(folder / "silence.wav", 3.0)
    result = perceiver.perceive(path.read_bytes(), name="silence.wav", mime_type="audio/wav")
    assert len(result["transcript"].split()) <= 1
    assert result["features"]["words_per_minute"] == 0.0
    assert result["features"]["loudness_dbfs"] < -60.0
    assert result["duration_s"] == pytest.approx(3.0, abs=0.05)


def test_noise_does_not_crash(perceiver: AudioPerceiver, folder: Path) -> None:
    path = speech.noise(folder / "noise.wav", 2.0)
    result = perceiver.perceive(path.read_bytes(), name="noise.wav", mime_type="audio/wav")
    assert result["features"]["loudness_dbfs"] > -40.0
    assert "status" not in result["transcript"].lower()


def _raises(perceiver: AudioPerceiver, data: bytes, name: str, mime: str, *needles: str) -> str:
    with pytest.raises(InputError) as info:
        perceiver.perceive(data, name=name, mime_type=mime)
    message = str(info.value)
    assert name in message
    for needle in needles:
        assert needle in message, message
    return message


def test_oversized_is_refused_before_decoding(spoken: Path) -> None:
    data = spoken.read_bytes()
    small = AudioPerceiver(max_bytes=1000, max_seconds=LIMIT_SECONDS)
    _raises(small, data, "big.wav", "audio/wav", str(len(data)), "1000")


def test_too_long_is_refused(spoken: Path) -> None:
    short = AudioPerceiver(max_bytes=LIMIT_BYTES, max_seconds=2)
    _raises(short, spoken.read_bytes(), "long.wav", "audio/wav", "5.3 s", "2 s")


def test_long_file_is_refused_from_its_declared_duration(folder: Path) -> None:
    path = speech.long_tone(folder / "hour.flac", 400)  # 400 s, over the 300 s limit
    perceiver = AudioPerceiver(max_bytes=LIMIT_BYTES, max_seconds=LIMIT_SECONDS)
    _raises(perceiver, path.read_bytes(), "hour.flac", "audio/flac", "400.0 s", "300 s")


def test_decoding_stops_at_the_limit_when_the_container_does_not_say(
    spoken: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(audio_module, "_declared_seconds", lambda container, stream: None)
    short = AudioPerceiver(max_bytes=LIMIT_BYTES, max_seconds=2)
    message = _raises(short, spoken.read_bytes(), "stream.wav", "audio/wav", "2 s")
    seconds = float(re.search(r"lasts ([0-9.]+) s", message).group(1))  # type: ignore[union-attr]
    assert seconds < 3.0  # stopped soon after the limit, not at the end of the file


def test_truncated_and_corrupt_audio(perceiver: AudioPerceiver, spoken: Path) -> None:
    data = spoken.read_bytes()
    _raises(perceiver, speech.truncated(data, 44), "header.wav", "audio/wav", "truncated or corrupt")
    _raises(perceiver, speech.truncated(data, 20_000), "cut.wav", "audio/wav", "truncated or corrupt")
    fake_ogg = b"OggS" + speech.random_bytes(3000)
    _raises(perceiver, fake_ogg, "fake.ogg", "audio/ogg", "truncated or corrupt")


def test_wrong_or_unknown_types(perceiver: AudioPerceiver, spoken: Path) -> None:
    _raises(perceiver, speech.random_bytes(), "noise.wav", "audio/wav", "unsupported")
    _raises(perceiver, spoken.read_bytes(), "order.mp3", "audio/mp3", "WAV")
    png = b"\x89PNG\r\n\x1a\n" + speech.random_bytes(200)
    _raises(perceiver, png, "photo.wav", "audio/wav", "PNG")


def test_pocketsphinx_fallback(spoken: Path) -> None:
    sphinx = AudioPerceiver(max_bytes=LIMIT_BYTES, max_seconds=LIMIT_SECONDS, engine="pocketsphinx")
    result = sphinx.perceive(spoken.read_bytes(), name="order.wav", mime_type="audio/wav")
    assert result["engine"] == "pocketsphinx"
    assert result["transcript"].strip()
    assert result["segments"]
    assert result["segments"][0]["start"] < result["segments"][0]["end"]
    assert result["features"]["words_per_minute"] > 0


def test_video_without_audio_is_refused(perceiver: AudioPerceiver, folder: Path) -> None:
    import av
    import numpy as np

    path = folder / "silent-film.mp4"
    with av.open(str(path), "w", format="mp4") as out:
        stream = out.add_stream("mpeg4", rate=5)
        assert isinstance(stream, av.VideoStream)
        stream.width, stream.height, stream.pix_fmt = 32, 32, "yuv420p"
        for _ in range(5):
            frame = av.VideoFrame.from_ndarray(np.zeros((32, 32, 3), dtype=np.uint8), format="rgb24")
            for packet in stream.encode(frame):
                out.mux(packet)
        for packet in stream.encode(None):
            out.mux(packet)
    _raises(perceiver, path.read_bytes(), "silent-film.mp4", "audio/mp4", "no audio stream")


def test_no_recogniser_installed_is_a_configuration_error(spoken: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from r1agent.errors import ConfigurationError

    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *args: None)
    bare = AudioPerceiver(max_bytes=LIMIT_BYTES, max_seconds=LIMIT_SECONDS)
    with pytest.raises(ConfigurationError, match=r"faster-whisper.*pocketsphinx"):
        bare.perceive(spoken.read_bytes(), name="order.wav", mime_type="audio/wav")
