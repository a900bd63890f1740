"""Perception latency: OCR + tags per image, and the speech-to-text real-time factor.

    make bench            # or: .venv/bin/python benchmarks/perception.py --runs 5

Inputs are made here (Pillow renders an invoice; espeak-ng speaks a request), so anyone can rerun it.
Medians over --runs after one warm-up (which also loads the models, reported separately as cold start).
The real-time factor is processing time / audio duration: below 1 is faster than real time.
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import tempfile
import time
from collections.abc import Callable
from io import BytesIO
from pathlib import Path

from PIL import Image, ImageDraw, ImageFont

from r1agent.perception.audio import AudioPerceiver
from r1agent.perception.images import ImagePerceiver

FONT = "/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf"
SPEECH = "Hello, I want to check the status of order W two three seven eight one five six, please."


def invoice_png(width: int) -> bytes:
    image = Image.new("RGB", (width, width * 3 // 4), "white")
    draw = ImageDraw.Draw(image)
    size = max(12, width // 30)
    try:
        font: ImageFont.FreeTypeFont | ImageFont.ImageFont = ImageFont.truetype(FONT, size)
    except OSError:
        font = ImageFont.load_default(size)
    for i, line in enumerate(["INVOICE", "Order #W2378156", "Blue kettle x1   $49.99", "Total   $54.49"]):
        draw.text((size, size + i * size * 2), line, fill="black", font=font)
    out = BytesIO()
    image.save(out, format="PNG")
    return out.getvalue()


def speech_wav() -> bytes:
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "note.wav"
        subprocess.run(["espeak-ng", "-s", "150", "-w", str(path), SPEECH], check=True, capture_output=True)
        return path.read_bytes()


def timed(call: Callable[[], object], runs: int) -> tuple[float, list[float]]:
    """The first call's time (models load then), and ``runs`` warm times."""
    start = time.perf_counter()
    call()
    cold = time.perf_counter() - start
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        call()
        times.append(time.perf_counter() - start)
    return cold, times


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()

    images = ImagePerceiver(max_bytes=10_000_000)
    for width in (800, 1600, 3200):
        data = invoice_png(width)
        cold, times = timed(lambda d=data: images.perceive(d, name="invoice.png", mime_type="image/png"), args.runs)
        print(f"image {width}px wide: median {statistics.median(times) * 1000:.0f} ms (first call {cold:.2f} s)")

    audio = AudioPerceiver(max_bytes=25_000_000, max_seconds=300)
    wav = speech_wav()
    result = audio.perceive(wav, name="note.wav", mime_type="audio/wav")
    cold, times = timed(lambda: audio.perceive(wav, name="note.wav", mime_type="audio/wav"), args.runs)
    rtf = statistics.median(times) / result["duration_s"]
    print(
        f"voice note {result['duration_s']:.1f} s ({result['engine']}): median {statistics.median(times):.2f} s, "
        f"real-time factor {rtf:.2f} (first call {cold:.2f} s)"
    )
    print(f"  transcript: {result['transcript']!r}")


if __name__ == "__main__":
    main()
