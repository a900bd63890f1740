"""4-bit weights for CPU decoding: the bundled model's own Q4_1 weights, run by torch's int4 kernel.

Decoding one token reads every weight once, so on a CPU its speed is set by bytes per token. The bundled
SmolLM2 ships as a Q4_1 GGUF (groups of 32 weights, each a 4-bit step of a per-group scale above a per-group
minimum), so the fp32 weights it is converted to are exactly 4-bit values: packing them back for
``torch._weight_int4pack_mm_for_cpu`` loses nothing, and a decode step reads about a third of the bytes
(the tied fp32 output head stays as it is). The kernel's fast path takes and returns bf16 activations, so
each decoder layer's attention and MLP compute in bf16 as a whole, while the residual stream between them,
the norms and the head stay fp32 (:func:`compute_blocks_in_bf16`): that rounding, and the bf16 prefill
copy below, are the numerical changes (llama.cpp rounds its activations to 8 bits for the same weights).

Many-row products (a prompt's prefill, the teacher-forced scoring pass) are compute-bound, not
memory-bound, and the int4 kernel is slow there: they run on a bf16 copy of the weights, which oneDNN runs
on the CPU's bf16 units (a 433-token prompt: 628 against 1061 ms in fp32), or on the original weights where
the CPU has no bf16 support.

The price of bf16 is determinism across batch shapes: rounding to bf16 turns the ~1e-5 differences between
a prompt prefilled alone and in a padded batch into visible ones, so a near-tie can go the other way when
a turn shares a batch. The fp32 model decodes a batch exactly as each prompt alone (tests/integration/
test_batching_real.py); with int4, greedy answers equal fp32's on most prompts, not all (benchmarks/decode.py
prints how many).

``R1AGENT_WEIGHTS``: ``auto`` packs only when it is lossless (every group's weights are exactly 4-bit) and
the CPU has bf16 support; ``int4`` packs any model (round-to-nearest: a real approximation, opt-in);
``full`` keeps the weights as loaded. Measured in ``benchmarks/decode.py``.
"""

from __future__ import annotations

import hashlib
import logging
import os
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import torch
from torch import nn

log = logging.getLogger(__name__)

Weights = Literal["auto", "full", "int4"]
GROUP = 32
"""Weights per scale/minimum pair: Q4_1's block size."""
MAX_KERNEL_ROWS = 8
"""Products of at most this many rows use the int4 kernel: decode steps of a batch of up to 8 turns. On a
2-core Xeon (AVX-512 bf16) it beat fp32 at 1 and 4 rows (44 vs 127 us, 83 vs 250 us for 1536x576) and lost
at 64 (1.3 vs 0.8 ms)."""
LOSSLESS_STEPS = 1e-3
"""Largest reconstruction error, in quantisation steps of its group, that still counts as exact (fp32
rounding of a dequantised value is ~1e-7 of a step)."""


def kernel_available() -> bool:
    return hasattr(torch, "_weight_int4pack_mm_for_cpu") and hasattr(torch, "_convert_weight_to_int4pack_for_cpu")


def cpu_has_bf16() -> bool:
    """oneDNN runs bf16 natively here (AVX-512 BF16/AMX, or AVX-512 emulation); not on AVX2-only CPUs."""
    try:
        return bool(torch.ops.mkldnn._is_mkldnn_bf16_supported())
    except (AttributeError, RuntimeError):
        return False


def int4_product(
    x: torch.Tensor,
    packed: torch.Tensor,
    scales_zeros: torch.Tensor,
    dense: torch.Tensor,
    bias: torch.Tensor | None,
    in_features: int,
    out_features: int,
) -> torch.Tensor:
    """``x`` times a packed weight: the int4 kernel for a few rows, the dense copy for many (:class:`Int4Linear`)."""
    flat = x.reshape(-1, in_features)
    if flat.shape[0] <= MAX_KERNEL_ROWS:
        out = torch._weight_int4pack_mm_for_cpu(flat.to(torch.bfloat16), packed, GROUP, scales_zeros)
    else:
        out = nn.functional.linear(flat.to(dense.dtype), dense)
    out = out.to(x.dtype).reshape(*x.shape[:-1], out_features)
    return out if bias is None else out + bias.to(out.dtype)


class Int4Linear(nn.Module):
    """A linear layer that decodes from its weight packed as 4-bit groups and prefills from a dense copy."""

    packed: torch.Tensor
    scales_zeros: torch.Tensor
    dense: torch.Tensor

    def __init__(
        self, packed: torch.Tensor, scales_zeros: torch.Tensor, dense: torch.Tensor, bias: torch.Tensor | None
    ) -> None:
        super().__init__()
        self.out_features, self.in_features = dense.shape
        self.register_buffer("packed", packed, persistent=False)
        self.register_buffer("scales_zeros", scales_zeros, persistent=False)
        self.register_buffer("dense", dense, persistent=False)
        self.bias = None if bias is None else nn.Parameter(bias.detach(), requires_grad=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return int4_product(
            x, self.packed, self.scales_zeros, self.dense, self.bias, self.in_features, self.out_features
        )

    def extra_repr(self) -> str:
        return f"in_features={self.in_features}, out_features={self.out_features}, int4 groups of {GROUP}"


def quantize(weight: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, float]:
    """Round-to-nearest 4-bit groups: (codes 0..15, scales, minimums, worst error in steps)."""
    w = weight.detach().float()
    rows, cols = w.shape
    groups = w.reshape(rows, cols // GROUP, GROUP)
    low = groups.amin(-1)
    step = ((groups.amax(-1) - low) / 15).clamp(min=torch.finfo(torch.float32).tiny)
    codes = torch.round((groups - low[..., None]) / step[..., None]).clamp(0, 15)
    error = ((codes * step[..., None] + low[..., None] - groups).abs() / step[..., None]).max()
    return codes.reshape(rows, cols).to(torch.int32), step, low, float(error)


def pack(linear: nn.Linear, dense_dtype: torch.dtype | None = None) -> tuple[Int4Linear, float]:
    """``linear`` as an :class:`Int4Linear`, and how far its weights were from 4-bit values (in steps)."""
    codes, step, low, error = quantize(linear.weight)
    packed = torch._convert_weight_to_int4pack_for_cpu(codes, 1)
    # The kernel computes (code - 8) * scale + zero, so zero = minimum + 8 steps; layout [groups, rows, 2].
    scales_zeros = torch.stack([step, low + 8 * step], dim=-1).transpose(0, 1).contiguous().to(torch.bfloat16)
    dense = linear.weight.detach()
    return Int4Linear(packed, scales_zeros, dense if dense_dtype is None else dense.to(dense_dtype), linear.bias), error


@dataclass(frozen=True)
class PackReport:
    used: Literal["full", "int4"]
    reason: str
    layers: int = 0
    max_error_steps: float = 0.0
    """Worst distance of a packed weight from its original, in quantisation steps (0: lossless)."""
    bf16_blocks: int = 0
    """Attention and MLP blocks that compute in bf16 (:func:`compute_blocks_in_bf16`)."""
    prepacked_head: bool = False
    """The output head screens the vocabulary with a bf16 copy reordered for oneDNN (:class:`PrepackedHead`)."""
    lean_layers: int = 0
    """Decoder layers that run as one function each (models/lean.py)."""


BLOCKS = ("self_attn", "mlp")
"""The sub-blocks of a decoder layer (Llama, Qwen2, Mistral... name them alike) that run in bf16."""


def _bf16(value: Any) -> Any:
    if isinstance(value, torch.Tensor) and value.is_floating_point():
        return value.to(torch.bfloat16)
    if isinstance(value, tuple):  # position_embeddings: (cos, sin)
        return tuple(_bf16(v) for v in value)
    return value


def _block_inputs(_module: nn.Module, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
    # Not the attention mask: an additive fp32 mask stays as the attention implementation built it.
    cast = {k: _bf16(v) if k in ("hidden_states", "position_embeddings") else v for k, v in kwargs.items()}
    return tuple(_bf16(a) for a in args), cast


def _block_output(_module: nn.Module, _args: Any, output: Any) -> Any:
    if isinstance(output, tuple):  # attention: (output, weights)
        return (output[0].float(), *output[1:])
    return output.float()


HEAD_ROWS_HINT = 4
"""The row count oneDNN lays the head's weight out for: the default batch (measured for the fp32 copy, as fast
at 1 and 8 rows; the bf16 screen kept the same hint, 5.3 / 6.0 / 6.7 ms for 1 / 4 / 8 rows)."""
CANDIDATES = 64
"""Tokens per row whose logits the screened head recomputes exactly in fp32."""
SCREEN_ROWS = MAX_KERNEL_ROWS
"""Rows (decode steps of a batch) screened in bf16; more (a teacher-forced pass) get the exact head throughout."""
BF16_ERROR = 2.0**-8 * 1.01
"""Bound on |bf16(x)·bf16(w) - x·w| / (|x| |w|): each operand rounds by at most 2^-9 of itself, and oneDNN
accumulates in fp32 (the 1 % covers its sums)."""


class PrepackedHead(nn.Module):
    """The output head: a bf16 copy screens the vocabulary, and the logits that can win are recomputed in fp32.

    A decode step's logits are a few rows times the whole 49k-word head: in fp32 that reads 113 MB every
    step, the largest single read of a step after the int4 layers (8-9 ms of a 29 ms step, one row). The screen
    reads a bf16 copy reordered once for oneDNN (half the bytes), takes each row's :data:`CANDIDATES` best
    tokens and recomputes their logits exactly from the fp32 weight (a 64-row gather). Every other token keeps
    its screened logit, within ``BF16_ERROR * |x| * |w_token|`` of the true one, and could only matter if
    that reach came up to the best candidate's logit as a repetition penalty up to ``penalty`` may leave it
    (divided by ``penalty``): in a row where it does, every token that reaches that far is recomputed too. So
    the greedy token is the fp32 head's, penalised or not; ``rescreened`` counts the rows that needed more. The
    rest of the distribution (what the quality score's mean log-probability reads) moves by ~0.1 logit at most.
    ``weight`` stays the original Parameter, still tied to the embedding; the bf16 copy (57 MB) costs half
    the memory of the fp32 reordered copy this head used before.
    """

    packed: torch.Tensor
    row_norms: torch.Tensor

    def __init__(self, head: nn.Linear, packed: torch.Tensor, penalty: float = 1.0) -> None:
        super().__init__()
        self.in_features, self.out_features = head.in_features, head.out_features
        self.weight = head.weight
        self.bias = head.bias
        self.penalty = max(1.0, penalty)
        self.rescreened = 0
        self._count = threading.Lock()  # the batcher's workers share one head: no increment may be lost
        self.register_buffer("packed", packed, persistent=False)
        self.register_buffer("row_norms", head.weight.detach().float().norm(dim=1), persistent=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        flat = x.reshape(-1, self.in_features).float()
        if flat.shape[0] > SCREEN_ROWS or self.out_features <= CANDIDATES:
            exact = nn.functional.linear(flat, self.weight, self.bias)
            return exact.reshape(*x.shape[:-1], self.out_features)
        screened = torch.ops.mkldnn._linear_pointwise(flat.to(torch.bfloat16), self.packed, None, "none", [], "")
        logits: torch.Tensor = screened.float()
        if self.bias is not None:
            logits += self.bias
        top = logits.topk(CANDIDATES, dim=-1).indices
        exact = torch.bmm(self.weight[top], flat.unsqueeze(-1)).squeeze(-1)
        if self.bias is not None:
            exact += self.bias[top]
        # How high any other token's true logit can reach, against what a penalty can leave of the best one.
        reach = logits + (BF16_ERROR * flat.norm(dim=-1, keepdim=True)) * self.row_norms
        reach.scatter_(1, top, float("-inf"))
        best = exact.amax(dim=-1)
        floor = best - best.abs() * (self.penalty - 1)
        unsure = reach.amax(dim=-1) >= floor
        logits.scatter_(1, top, exact)
        rows = unsure.nonzero().flatten().tolist()  # rare: a flat distribution, or a large penalty
        if rows:
            with self._count:
                self.rescreened += len(rows)
        for row in rows:
            more = (reach[row] >= floor[row]).nonzero().flatten()
            logits[row, more] = self.weight[more] @ flat[row] + (0 if self.bias is None else self.bias[more])
        return logits.reshape(*x.shape[:-1], self.out_features)


def prepack_head(model: Any, penalty: float = 1.0) -> bool:
    """Swap an fp32 CPU output head for a :class:`PrepackedHead` (in place); False where oneDNN cannot.

    ``penalty``: the largest repetition penalty generation uses, which the head keeps greedy tokens exact under.
    """
    head = model.get_output_embeddings() if hasattr(model, "get_output_embeddings") else None
    if type(head) is not nn.Linear or head.weight.dtype != torch.float32 or head.weight.device.type != "cpu":
        return False
    if not hasattr(model, "set_output_embeddings"):
        return False
    try:
        packed = torch.ops.mkldnn._reorder_linear_weight(head.weight.detach().to(torch.bfloat16), HEAD_ROWS_HINT)
    except (AttributeError, RuntimeError) as exc:  # a torch built without oneDNN
        log.info("int4: the output head stays as it is (%s)", exc)
        return False
    model.set_output_embeddings(PrepackedHead(head, packed, penalty))
    return True


def compute_blocks_in_bf16(model: nn.Module) -> int:
    """Run every decoder layer's attention and MLP in bf16; the residual stream, norms and head stay fp32.

    Each packed linear otherwise converts its input to bf16 and its output back (a prompt's prefill spent a
    sixth of its time in those copies), and the attention and SwiGLU between them ran in fp32. Casting once
    at each block's edges halves a prompt's prefill (benchmarks/decode.py) and leaves the additions that
    carry the residual, where bf16 rounding would accumulate over 30 layers, in fp32: the whole model in bf16
    changed greedy answers far more often (2 of 12 equal to fp32's, against 7 of 12 this way). The KV cache
    then holds bf16 keys and values: half the memory. Returns how many blocks now compute in bf16.
    """
    count = 0
    for layer in model.modules():
        blocks = [getattr(layer, name, None) for name in BLOCKS]
        if not all(isinstance(b, nn.Module) for b in blocks):
            continue
        for block in blocks:
            assert block is not None
            block.register_forward_pre_hook(_block_inputs, with_kwargs=True)
            block.register_forward_hook(_block_output)
            count += 1
    return count


def pack_linears(
    model: Any, mode: Weights, cache: Path | None = None, *, penalty: float = 1.0, lean: bool = True
) -> PackReport:
    """Swap ``model``'s linear layers for :class:`Int4Linear` where ``mode`` allows it (in place).

    The output head is left alone: it is tied to the embedding, which is 8-bit in the GGUF, not 4-bit.
    ``cache`` (see :func:`cache_file`): the packed layers are saved there once and loaded from there after,
    so a start neither packs (~1 s) nor reads the original linear weights at all (a memory-mapped model's
    pages stay on disk: peak memory is the packed model's, not both). ``penalty``: the largest repetition
    penalty generation uses (see :class:`PrepackedHead`). ``lean``: run the packed decoder layers as one
    function each where that computes the same logits (models/lean.py).
    """
    if mode == "full":
        return PackReport("full", "R1AGENT_WEIGHTS=full")
    if any(p.device.type != "cpu" for p in model.parameters()):
        return PackReport("full", "not on the CPU (the int4 kernel here is the CPU one)")
    if not kernel_available():
        return PackReport("full", "this torch has no int4 CPU kernel")
    bf16 = cpu_has_bf16()
    if mode == "auto" and not bf16:
        return PackReport("full", "this CPU has no bf16 support, which the int4 kernel's fast path needs")
    head = model.get_output_embeddings() if hasattr(model, "get_output_embeddings") else None
    targets = {
        f"{prefix}.{name}" if prefix else name: (parent, name)
        for prefix, parent in model.named_modules()
        for name, child in parent.named_children()
        if type(child) is nn.Linear
        and child is not head
        and child.in_features % GROUP == 0
        and child.weight.dtype in (torch.float32, torch.bfloat16)
    }
    if not targets:
        return PackReport("full", "no linear layer fits 4-bit groups")
    dense_dtype = torch.bfloat16 if bf16 else None
    saved = _load(cache, targets) if cache is not None else None
    if saved is not None:
        modules, worst = saved
        if mode == "auto" and worst > LOSSLESS_STEPS:
            return PackReport("full", f"the weights are not 4-bit values (off by {worst:.2f} steps)", 0, worst)
        for key, (parent, name) in targets.items():
            setattr(parent, name, modules[key])
    else:
        packed = _pack_all(targets, mode, dense_dtype)
        if isinstance(packed, PackReport):
            return packed
        worst = max((error for _, error in packed.values()), default=0.0)
        if cache is not None:
            _save(cache, {key: module for key, (module, _) in packed.items()}, worst)
    if dense_dtype is not None:
        # The weights left (embedding, norms) may still be views of the safetensors file's memory map, which
        # keeps every page of it read so far resident (0.4 GB of the bundled model's). Copies let the map go;
        # the tied output head is the same Parameter as the embedding, so it stays tied.
        for param in model.parameters():
            param.data = param.data.clone()
    blocks = compute_blocks_in_bf16(model) if dense_dtype is not None else 0
    prepacked = prepack_head(model, penalty) if dense_dtype is not None else False
    lean_layers = 0
    if lean and blocks:
        from r1agent.models import lean as lean_module  # here: lean.py builds on this module's Int4Linear

        lean_layers = lean_module.install(model)
    report = PackReport("int4", f"R1AGENT_WEIGHTS={mode}", len(targets), worst, blocks, prepacked, lean_layers)
    log.info(
        "int4: %d linear layers (worst error %.3g steps), %d blocks in bf16, head prepacked: %s, lean layers: %d",
        report.layers,
        worst,
        blocks,
        prepacked,
        lean_layers,
    )
    return report


def _pack_all(
    targets: dict[str, tuple[nn.Module, str]], mode: Weights, dense_dtype: torch.dtype | None
) -> dict[str, tuple[Int4Linear, float]] | PackReport:
    done: dict[str, tuple[Int4Linear, float]] = {}
    originals: list[tuple[nn.Module, str, nn.Module]] = []
    for key, (parent, name) in targets.items():
        original = getattr(parent, name)
        module, error = pack(original, dense_dtype)
        if mode == "auto" and error > LOSSLESS_STEPS:
            # Not a 4-bit model: rounding it would change its answers, so auto leaves it exact.
            for done_parent, done_name, done_layer in originals:
                setattr(done_parent, done_name, done_layer)
            return PackReport("full", f"the weights are not 4-bit values (off by {error:.2f} steps)", 0, error)
        # Kept until every layer has passed (auto); memory-mapped weights cost nothing while they wait.
        originals.append((parent, name, original))
        setattr(parent, name, module)
        done[key] = (module, error)
    return done


def cache_file(cache_dir: Path, model_folder: Path) -> Path:
    """Where the packed layers of ``model_folder`` live: keyed by its weight files and by this torch and
    CPU (the packed layout is the kernel's, which may change between them)."""
    digest = hashlib.sha256()
    weights = [*model_folder.glob("*.safetensors"), *model_folder.glob("*.bin")]
    for path in [*sorted(weights), model_folder / "config.json"]:
        stat = path.stat()
        digest.update(f"{path.name}:{stat.st_size}:{stat.st_mtime_ns};".encode())
    digest.update(f"{torch.__version__};{torch.backends.cpu.get_cpu_capability()};{GROUP};{cpu_has_bf16()}".encode())
    return cache_dir / "int4" / f"{model_folder.name}-{digest.hexdigest()[:16]}.safetensors"


def _save(path: Path, modules: dict[str, Int4Linear], worst: float) -> None:
    from safetensors.torch import save_file

    tensors = {}
    for key, module in modules.items():
        tensors[f"{key}.packed"] = module.packed
        tensors[f"{key}.scales_zeros"] = module.scales_zeros
        tensors[f"{key}.dense"] = module.dense
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(f".tmp-{os.getpid()}")
        save_file(tensors, str(tmp), metadata={"max_error_steps": repr(worst), "layers": str(len(modules))})
        os.replace(tmp, path)  # atomic: a reader never sees half a file
    except OSError as exc:  # a read-only cache dir costs the next start a repack, nothing else
        log.warning("int4: could not cache the packed layers in %s: %s", path, exc)


def _load(path: Path, targets: dict[str, tuple[nn.Module, str]]) -> tuple[dict[str, Int4Linear], float] | None:
    if not path.is_file():
        return None
    from safetensors import SafetensorError, safe_open

    try:
        with safe_open(str(path), framework="pt") as f:
            worst = float((f.metadata() or {})["max_error_steps"])
            modules = {}
            for key, (parent, name) in targets.items():
                bias = getattr(parent, name).bias
                modules[key] = Int4Linear(
                    f.get_tensor(f"{key}.packed"),
                    f.get_tensor(f"{key}.scales_zeros"),
                    f.get_tensor(f"{key}.dense"),
                    bias,
                )
    except (OSError, KeyError, ValueError, SafetensorError) as exc:
        log.warning("int4: ignoring the packed-layer cache %s (%s); packing again", path, exc)
        return None
    return modules, worst
