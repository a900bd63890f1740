"""Images and voice notes through the whole graph on the real stack (Whisper, Tesseract, the tools)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from io import BytesIO
from pathlib import Path

import pytest
from PIL import Image, ImageDraw, ImageFont

from r1agent import Agent, Context, open_agent
from r1agent.deps import Deps
from tests.conftest import run_cli
from tests.speech import speak

pytestmark = pytest.mark.slow
OPEN = Context(quality_threshold=0.0, max_new_tokens=24)
OWNER = "yusuf_rossi_9620"  # owns #W2378156 in the retail data


@pytest.fixture(scope="module")
def agent(real_deps: Deps) -> Iterator[Agent]:
    with open_agent(deps=real_deps) as agent:
        yield agent


def invoice(path: Path) -> Path:
    image = Image.new("RGB", (900, 400), "white")
    draw = ImageDraw.Draw(image)
    try:
        font: ImageFont.FreeTypeFont | ImageFont.ImageFont = ImageFont.truetype(
            "/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf", 36
        )
    except OSError:
        font = ImageFont.load_default(36)
    for i, line in enumerate(["INVOICE", "Order #W2378156", "Total $129.99"]):
        draw.text((40, 40 + i * 90), line, fill="black", font=font)
    out = BytesIO()
    image.save(out, format="PNG")
    path.write_bytes(out.getvalue())
    return path


def test_a_voice_note_reaches_the_order_tool_with_the_right_id(agent: Agent, tmp_path: Path) -> None:
    note = speak("What is the status of my order? The number is W 2 3 7 8 1 5 6.", tmp_path / "note.wav")
    turn = agent.ask("", customer_id=OWNER, attachments=[note], context=OPEN)
    assert turn.perception is not None
    (heard,) = turn.perception["audio"]
    assert "status" in heard["transcript"].lower()
    assert turn.intent is not None and turn.intent["label"] == "order_status"
    assert turn.intent["entities"]["order_id"] == ["#W2378156"]
    (call,) = turn.tool_calls
    assert call["name"] == "get_order_details"
    assert call["args"]["order_id"] == "#W2378156"
    assert "delivered" in (call["result"] or "")


def test_an_order_id_in_a_screenshot_reaches_the_tool(agent: Agent, tmp_path: Path) -> None:
    turn = agent.ask(
        "Where is this order?", customer_id=OWNER, attachments=[invoice(tmp_path / "inv.png")], context=OPEN
    )
    assert turn.perception is not None
    (seen,) = turn.perception["images"]
    assert "W2378156" in seen["text"]
    assert len(seen["tags"]) == 3
    (call,) = turn.tool_calls
    assert call["args"]["order_id"] == "#W2378156"


def test_a_bad_file_is_named_and_the_question_is_still_answered(agent: Agent, tmp_path: Path) -> None:
    broken = tmp_path / "photo.png"
    broken.write_bytes(b"\x89PNG\r\n\x1a\n" + b"\x00" * 40)  # a PNG signature and nothing readable
    turn = agent.ask("hello there!", attachments=[broken], context=OPEN)
    assert [e["message"] for e in turn.errors if "photo.png" in e["message"]]
    assert "photo.png" in turn.answer  # the customer is told which file could not be read
    assert turn.intent is not None and turn.intent["label"] == "small_talk"


def test_the_cli_takes_audio_and_prints_perception(
    tmp_path: Path, r1agent_cli: list[str], cli_env: dict[str, str], tmp_path_factory: pytest.TempPathFactory
) -> None:
    env = {**cli_env, "R1AGENT_DATA_DIR": str(tmp_path_factory.mktemp("cli-mm"))}  # own Qdrant folder
    note = speak("What is your return policy?", tmp_path / "q.wav")
    done = run_cli(r1agent_cli, env, "ask", "--audio", str(note), "--json")
    assert done.returncode == 0, done.stderr
    out = json.loads(done.stdout)
    assert "return policy" in out["perception"]["audio"][0]["transcript"].lower()
    assert out["intent"]["label"] == "after_sales"
    missing = run_cli(r1agent_cli, env, "ask", "hi", "--image", str(tmp_path / "nope.png"), timeout=60)
    assert missing.returncode == 3
    assert "no such file" in missing.stderr
