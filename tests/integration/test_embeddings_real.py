"""The bundled MiniLM through transformers alone gives sentence-transformers' vectors, and a folder that
needs more than a transformer and a pooling layer still goes through sentence-transformers."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from langchain_huggingface import HuggingFaceEmbeddings

from r1agent.models.embeddings import (
    Layout,
    MemoEmbeddings,
    TransformerEmbeddings,
    default_embedding_folder,
    load_embeddings,
    memo_embeddings,
    plain_layout,
)

pytestmark = pytest.mark.slow

TEXTS = [
    "How long do I have to return an item?",
    "Hi",
    "Wo ist meine Bestellung #W2611340? Ich warte seit zwei Wochen.",
    "refund " * 400,  # past the model's 256-token limit: truncated the same way
]


def test_the_default_folder_runs_without_sentence_transformers_and_matches_it() -> None:
    fast = load_embeddings()
    assert isinstance(fast, TransformerEmbeddings)
    assert fast.layout == Layout("mean", max_seq_length=256)
    reference = HuggingFaceEmbeddings(
        model_name=str(default_embedding_folder()),
        model_kwargs={"device": "cpu", "local_files_only": True},
        encode_kwargs={"normalize_embeddings": True},
    )
    ours, theirs = fast.embed_documents(TEXTS), reference.embed_documents(TEXTS)
    for mine, ref in zip(ours, theirs, strict=True):
        assert len(mine) == len(ref) == 384
        assert max(abs(a - b) for a, b in zip(mine, ref, strict=True)) < 1e-5
    assert fast.embed_query(TEXTS[0]) == pytest.approx(ours[0], abs=1e-5)  # alone vs padded in a batch
    assert fast.model_name == reference.model_name  # the intent classifier's fit cache key is unchanged
    memo = memo_embeddings(fast)
    assert isinstance(memo, MemoEmbeddings) and memo.model_name == fast.model_name


def test_a_folder_with_other_layers_goes_through_sentence_transformers(tmp_path: Path) -> None:
    folder = tmp_path / "minilm-dense"
    shutil.copytree(default_embedding_folder(), folder)
    modules = json.loads((folder / "modules.json").read_text())
    modules.insert(2, {"idx": 2, "name": "2", "path": "2_Dense", "type": "sentence_transformers.models.Dense"})
    (folder / "modules.json").write_text(json.dumps(modules))
    assert plain_layout(folder) is None
    pooling = json.loads((folder / "1_Pooling" / "config.json").read_text())
    pooling.update(pooling_mode_mean_tokens=False, pooling_mode_cls_token=True)
    (folder / "1_Pooling" / "config.json").write_text(json.dumps(pooling))
    modules.pop(2)
    (folder / "modules.json").write_text(json.dumps(modules))
    assert plain_layout(folder) == Layout("cls", max_seq_length=256)
    assert isinstance(load_embeddings(folder), TransformerEmbeddings)
    (folder / "modules.json").unlink()  # a bare transformers folder: sentence-transformers decides
    assert plain_layout(folder) is None
    assert isinstance(load_embeddings(folder), HuggingFaceEmbeddings)
