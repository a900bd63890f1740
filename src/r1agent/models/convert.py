"""Convert the bundled GGUF into a safetensors folder (and pack its int4 layers), in a process of its own.

    python -m r1agent.models.convert GGUF_DIR GGUF_FILE TARGET CACHE_DIR WEIGHTS

Run once, on the first start with an empty cache dir, by :func:`r1agent.models.chat.default_model_folder`.
Loading a GGUF dequantises every tensor into memory; done in the serving process, that memory (and the
packing's copies) would meet the model it then loads: the first start peaked at 1.65 GB against ~1.0 GB for
every later one, and glibc keeps freed memory, so a server would have carried it for its whole life.
"""

from __future__ import annotations

import os
import shutil
import sys
import tempfile
from pathlib import Path
from typing import cast

from r1agent.models.int4 import Weights, cache_file, pack_linears


def convert(gguf_dir: Path, gguf_file: str, target: Path, cache_dir: Path, weights: Weights) -> None:
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(gguf_dir, gguf_file=gguf_file)
    model = AutoModelForCausalLM.from_pretrained(gguf_dir, gguf_file=gguf_file)
    # The weights are dequantised fp32 now; drop the GGUF quantizer so save/load is plain safetensors.
    model.hf_quantizer = None  # type: ignore[assignment]
    if hasattr(model.config, "quantization_config"):
        del model.config.quantization_config
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=".convert-", dir=target.parent))
    try:
        model.save_pretrained(tmp)
        tokenizer.save_pretrained(tmp)
        try:
            os.replace(tmp, target)  # atomic: a concurrent converter may have won the race
        except OSError:
            if not (target / "config.json").is_file():
                raise
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    # The same weights are in memory already: pack them here, so the server's first start loads the cache.
    # (The key is the saved files' names, sizes and times, which the rename above kept.)
    pack_linears(model, weights, cache_file(cache_dir, target))


if __name__ == "__main__":
    gguf_dir, gguf_file, target, cache_dir, weights = sys.argv[1:6]
    convert(Path(gguf_dir), gguf_file, Path(target), Path(cache_dir), cast(Weights, weights))
