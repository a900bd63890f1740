"""4-bit packing of linear layers (models/int4.py), through torch's real int4 CPU kernel."""

from __future__ import annotations

import copy
from pathlib import Path

import pytest
import torch
from torch import nn

from r1agent.models import int4
from r1agent.models.int4 import GROUP, Int4Linear, pack_linears
from tests.tiny_llama import four_bit, tiny_llama

pytestmark = pytest.mark.skipif(not int4.kernel_available(), reason="this torch has no int4 CPU kernel")


def four_bit_linear(rows: int, cols: int, *, bias: bool = False, seed: int = 0) -> nn.Linear:
    """A layer whose weights are exactly Q4_1 values: code * scale + minimum per group of 32 (like a GGUF's)."""
    gen = torch.Generator().manual_seed(seed)
    codes = torch.randint(0, 16, (rows, cols // GROUP, GROUP), generator=gen).float()
    codes[..., 0], codes[..., 1] = 0, 15  # every group spans its full range, as a Q4_1 quantiser makes it
    scale = torch.rand(rows, cols // GROUP, 1, generator=gen) * 0.02 + 0.001
    low = -torch.rand(rows, cols // GROUP, 1, generator=gen) * 0.1
    layer = nn.Linear(cols, rows, bias=bias)
    with torch.no_grad():
        layer.weight.copy_((codes * scale + low).reshape(rows, cols))
    return layer


class Tiny(nn.Module):
    def __init__(self, first: nn.Linear, second: nn.Linear) -> None:
        super().__init__()
        self.first, self.second = first, second
        self.head = nn.Linear(second.out_features, 10, bias=False)

    def get_output_embeddings(self) -> nn.Module:
        return self.head

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.second(torch.relu(self.first(x))))


def test_exact_four_bit_weights_pack_losslessly_and_compute_the_same_product() -> None:
    layer = four_bit_linear(96, 128, bias=True)
    packed, error = int4.pack(layer)
    assert error == pytest.approx(0.0, abs=int4.LOSSLESS_STEPS)
    one_row = torch.randn(1, 3, 128)  # a decode step: the int4 kernel, bf16 activations
    many_rows = torch.randn(2, 40, 128)  # a prefill: the dense copy (fp32 here)
    with torch.no_grad():
        for x, tolerance in ((one_row, 2e-2), (many_rows, 1e-5)):
            got, want = packed(x), layer(x)
            assert got.shape == want.shape and got.dtype == want.dtype
            assert torch.allclose(got, want, rtol=tolerance, atol=tolerance), (got - want).abs().max()


def test_a_bf16_prefill_copy_stays_close() -> None:
    layer = four_bit_linear(96, 128)
    packed, _ = int4.pack(layer, torch.bfloat16)
    assert packed.dense.dtype == torch.bfloat16
    x = torch.randn(2, 40, 128)
    with torch.no_grad():
        got, want = packed(x), layer(x)
    assert got.dtype == torch.float32 and torch.allclose(got, want, rtol=2e-2, atol=2e-2)


def test_auto_packs_a_four_bit_model_but_not_its_output_head() -> None:
    model = Tiny(four_bit_linear(64, 64), four_bit_linear(32, 64, seed=1))
    x = torch.randn(1, 64)
    before = model(x).detach()
    report = pack_linears(model, "auto")
    if not int4.cpu_has_bf16():
        assert report.used == "full" and "bf16" in report.reason
        return
    assert (report.used, report.layers) == ("int4", 2)
    assert isinstance(model.first, Int4Linear) and isinstance(model.second, Int4Linear)
    assert type(model.head) is nn.Linear
    assert torch.allclose(model(x), before, atol=5e-2)


def test_auto_leaves_a_model_that_is_not_four_bit_exact() -> None:
    exact = four_bit_linear(64, 64)
    model = Tiny(exact, nn.Linear(64, 32))  # the second layer has ordinary float weights
    report = pack_linears(model, "auto")
    assert report.used == "full"
    assert model.first is exact and type(model.second) is nn.Linear  # the first layer was put back
    if int4.cpu_has_bf16():
        assert "not 4-bit" in report.reason and report.max_error_steps > 0.01


def test_int4_rounds_any_model_and_reports_how_far_it_moved() -> None:
    torch.manual_seed(0)
    model = Tiny(nn.Linear(64, 64), nn.Linear(64, 32))
    x = torch.randn(4, 64)
    before = model(x).detach()
    report = pack_linears(model, "int4")
    assert (report.used, report.layers) == ("int4", 2)
    assert 0.01 < report.max_error_steps <= 0.5  # round-to-nearest: at most half a step
    moved = (model(x) - before).abs().max()
    assert 0 < moved < 0.25 * before.abs().max()  # an approximation: close, not equal


def test_full_keeps_the_weights_as_loaded() -> None:
    model = Tiny(four_bit_linear(64, 64), four_bit_linear(32, 64))
    assert pack_linears(model, "full").used == "full"
    assert type(model.first) is nn.Linear


def test_layers_whose_width_is_not_a_multiple_of_the_group_stay_as_they_are() -> None:
    model = Tiny(nn.Linear(50, 64), four_bit_linear(32, 64))
    report = pack_linears(model, "int4")
    assert report.layers == 1 and type(model.first) is nn.Linear and isinstance(model.second, Int4Linear)


def test_packed_layers_are_cached_and_loaded_without_reading_the_original_weights(tmp_path: Path) -> None:
    cache = tmp_path / "int4" / "tiny.safetensors"
    first = Tiny(four_bit_linear(64, 64), four_bit_linear(32, 64, seed=1))
    x = torch.randn(1, 64)
    assert pack_linears(first, "int4", cache).layers == 2 and cache.is_file()
    want = first(x)
    second = Tiny(four_bit_linear(64, 64), four_bit_linear(32, 64, seed=1))
    second.head.load_state_dict(first.head.state_dict())
    with torch.no_grad():  # had the cache not been used, these would poison the result
        second.first.weight.fill_(float("nan"))
        second.second.weight.fill_(float("nan"))
    report = pack_linears(second, "int4", cache)
    assert (report.used, report.layers) == ("int4", 2)
    assert torch.equal(second(x), want)


def test_a_corrupt_cache_is_packed_again(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    cache = tmp_path / "tiny.safetensors"
    cache.write_bytes(b"not a safetensors file")
    model = Tiny(four_bit_linear(64, 64), four_bit_linear(32, 64))
    assert pack_linears(model, "int4", cache).layers == 2
    assert "ignoring the packed-layer cache" in caplog.text
    assert cache.stat().st_size > 1000  # rewritten


@pytest.mark.skipif(not int4.cpu_has_bf16(), reason="without bf16, auto stops before it reads any cache")
def test_auto_does_not_take_a_lossy_cache_written_by_int4(tmp_path: Path) -> None:
    cache = tmp_path / "tiny.safetensors"
    torch.manual_seed(0)
    assert pack_linears(Tiny(nn.Linear(64, 64), nn.Linear(64, 32)), "int4", cache).used == "int4"
    torch.manual_seed(0)
    model = Tiny(nn.Linear(64, 64), nn.Linear(64, 32))
    report = pack_linears(model, "auto", cache)
    assert report.used == "full" and type(model.first) is nn.Linear


def test_the_cache_key_follows_the_weight_files(tmp_path: Path) -> None:
    folder = tmp_path / "model"
    folder.mkdir()
    (folder / "config.json").write_text("{}")
    (folder / "model.safetensors").write_bytes(b"1")
    before = int4.cache_file(tmp_path, folder)
    assert int4.cache_file(tmp_path, folder) == before
    (folder / "model.safetensors").write_bytes(b"22")
    assert int4.cache_file(tmp_path, folder) != before


# --- bf16 blocks: a real (tiny, randomly initialised) Llama -------------------------------------------------


def four_bit_llama() -> nn.Module:
    """A 2-layer Llama whose linear weights are exact 4-bit values, as the bundled model's are."""
    return four_bit(tiny_llama())


def test_packed_decoder_blocks_compute_in_bf16_between_an_fp32_residual_stream() -> None:
    model = four_bit_llama()
    reference = copy.deepcopy(model)
    # The hooks below watch the modules, which lean layers do not call (tests/unit/test_lean.py: the same logits).
    report = pack_linears(model, "auto", lean=False)
    if not int4.cpu_has_bf16():
        assert report.used == "full"
        pytest.skip("auto packs (and computes in bf16) only on CPUs with bf16 support")
    assert (report.used, report.layers, report.bf16_blocks) == ("int4", 14, 4)  # 7 linears, 2 blocks per layer
    seen: dict[str, torch.dtype] = {}

    def note(name: str, tensor: torch.Tensor) -> None:
        seen.setdefault(name, tensor.dtype)  # the first call: the prefill

    for i, layer in enumerate(model.model.layers):
        layer.self_attn.q_proj.register_forward_pre_hook(lambda m, a, i=i: note(f"q{i}", a[0]))
        layer.mlp.down_proj.register_forward_pre_hook(lambda m, a, i=i: note(f"down{i}", a[0]))
        layer.register_forward_hook(lambda m, a, out, i=i: note(f"layer{i}", out))
    ids = torch.randint(0, 128, (2, 20), generator=torch.Generator().manual_seed(1))
    with torch.inference_mode():
        out = model(ids, use_cache=True)  # a prefill: 40 rows, the dense bf16 copies
        step = model(ids[:, :1], cache=out.past_key_values, use_cache=True)  # 2 rows: the int4 kernel
        want = reference(ids).logits
    assert {seen[f"q{i}"] for i in range(2)} | {seen[f"down{i}"] for i in range(2)} == {torch.bfloat16}
    assert {seen["layer0"], seen["layer1"]} == {torch.float32}  # the residual stream stays fp32
    assert out.logits.dtype == step.logits.dtype == torch.float32
    assert out.past_key_values.layers[0].keys.dtype == torch.bfloat16  # half the KV cache's memory
    # The same model, but for bf16 rounding inside the blocks.
    assert torch.allclose(out.logits, want, atol=0.05), (out.logits - want).abs().max()
    assert (out.logits.argmax(-1) == want.argmax(-1)).float().mean() >= 0.9


def test_a_model_without_decoder_blocks_keeps_its_activations() -> None:
    model = Tiny(four_bit_linear(64, 64), four_bit_linear(32, 64))
    assert pack_linears(model, "int4").bf16_blocks == 0
    assert model(torch.randn(1, 64)).dtype == torch.float32


def screened_llama(penalty: float = 1.0) -> tuple[nn.Module, nn.Linear]:
    """A tiny Llama whose head is screened (its original fp32 head returned beside it), or a skip."""
    torch.manual_seed(0)
    model = four_bit_llama()
    head = model.lm_head
    if not int4.prepack_head(model, penalty):
        pytest.skip("this torch's oneDNN cannot reorder a linear weight")
    assert isinstance(model.lm_head, int4.PrepackedHead)
    return model, head


def test_the_screened_head_gives_the_fp32_logits_of_the_tokens_that_can_win_and_stays_tied() -> None:
    model, head = screened_llama()
    assert model.lm_head.weight is model.model.embed_tokens.weight  # still tied: no second fp32 copy
    x = torch.randn(3, 5, 64)[:, -1:, :]  # the last position of each row: a strided view, as generate passes it
    with torch.no_grad():
        for rows in (x, x[:1], torch.randn(8, 1, 64) * 30):
            got, want = model.lm_head(rows), head(rows)
            assert got.dtype == torch.float32 and got.shape == (*rows.shape[:-1], 128)
            top = want.topk(int4.CANDIDATES, dim=-1).indices[..., :8]
            assert torch.allclose(got.gather(-1, top), want.gather(-1, top), atol=1e-5)  # the best ones: exact
            assert torch.equal(got.argmax(-1), want.argmax(-1))
            # Every other logit within the bf16 bound of the fp32 one (the winners above are exact, not bounded).
            bound = int4.BF16_ERROR * rows.norm(dim=-1, keepdim=True) * model.lm_head.row_norms
            assert ((got - want).abs() <= bound).all()
        many = torch.randn(2, 40, 64)  # a teacher-forced pass: more rows than decode steps have, all exact
        assert torch.allclose(model.lm_head(many), head(many), atol=1e-5)
    assert model.lm_head.rescreened == 0


def test_the_screened_head_keeps_the_greedy_token_under_a_repetition_penalty() -> None:
    """A penalty can push every candidate below a token the screen ranked lower: those rows are redone in fp32."""
    model, head = screened_llama(penalty=50.0)
    x = torch.randn(4, 1, 64)
    with torch.no_grad():
        got, want = model.lm_head(x), head(x)
    assert model.lm_head.rescreened == 4  # no margin survives a penalty of 50: every row exact throughout
    assert torch.allclose(got, want, atol=1e-5)
    model, _ = screened_llama(penalty=1.0)
    with torch.no_grad():
        model.lm_head(x)
    assert model.lm_head.rescreened == 0


def test_auto_prepacks_the_head_where_it_computes_the_blocks_in_bf16() -> None:
    model = four_bit_llama()
    report = pack_linears(model, "auto")
    if not int4.cpu_has_bf16():
        assert report.used == "full" and type(model.lm_head) is nn.Linear
        pytest.skip("auto packs (and prepacks the head) only on CPUs with bf16 support")
    assert report.prepacked_head and report.bf16_blocks == 4
    assert isinstance(model.lm_head, int4.PrepackedHead)
