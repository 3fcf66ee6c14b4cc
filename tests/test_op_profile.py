"""rlvr_jax/op_profile.py (HLO + trace -> op table) and scripts/profile_step.py on the tiny
config: each matmul's FLOPs come from its shapes, and the scorer's traced matmuls add up to
one forward's model FLOPs (`rlvr_jax.flops`), the train step's to about three (forward,
rematerialized forward, backward)."""

import json

import pytest
from repo_scripts import REPO, run_script

from rlvr_jax import op_profile
from rlvr_jax.flops import forward_flops
from rlvr_jax.models import load_decoder_config, resolve_checkpoint

HLO = "\n".join(
    [
        "HloModule jit_f, entry_computation_layout={(f32[8,4]{1,0})->f32[8,3]{1,0}}",
        "",
        "%fused_computation.1 (param_0.1: f32[8,4], param_1.2: f32[3,4]) -> f32[8,3] {",
        "  %param_0.1 = f32[8,4]{1,0} parameter(0)",
        "  %param_1.2 = f32[3,4]{1,0} parameter(1)",
        "  ROOT %dot.5 = f32[8,3]{1,0} dot(%param_0.1, %param_1.2), "
        "lhs_contracting_dims={1}, rhs_contracting_dims={1}",
        "}",
        "",
        "ENTRY %main.9 (Arg_0.1: f32[8,4], Arg_1.2: f32[3,4], Arg_2.3: f32[2,5,6,7]) -> f32[8,3] {",
        "  %Arg_0.1 = f32[8,4]{1,0} parameter(0)",
        "  %Arg_1.2 = f32[3,4]{1,0} parameter(1)",
        "  %Arg_2.3 = f32[2,5,6,7]{3,2,1,0} parameter(2)",
        "  %dot.7 = f32[2,5,6,6]{3,2,1,0} dot(%Arg_2.3, %Arg_2.3), lhs_batch_dims={0,1}, "
        "lhs_contracting_dims={3}, rhs_batch_dims={0,1}, rhs_contracting_dims={3}",
        "  %ynn_fusion.1 = f32[8,3]{1,0} fusion(%Arg_0.1, %Arg_1.2), kind=kCustom, "
        "calls=%fused_computation.1",
        "  ROOT %exponential.2 = f32[8,3]{1,0} exponential(%ynn_fusion.1)",
        "}",
    ]
)


def test_parse_hlo_counts_the_dots_of_fusions_and_bare_dots():
    ops = op_profile.parse_hlo(HLO)
    assert ops["ynn_fusion.1"].flops == 2 * 8 * 3 * 4  # [8, 4] x [3, 4]^T
    assert ops["dot.7"].flops == 2 * (2 * 5 * 6 * 6) * 7  # batched over [2, 5], k = 7
    assert ops["exponential.2"].flops == 0
    assert ops["ynn_fusion.1"].shape == (8, 3)


def test_op_table_keeps_instructions_and_sums_their_calls():
    ops = op_profile.parse_hlo(HLO)
    events = [
        {"ph": "X", "name": "ynn_fusion.1", "dur": 2_000_000},
        {"ph": "X", "name": "ynn_fusion.1", "dur": 1_000_000},
        {"ph": "X", "name": "exponential.2", "dur": 500_000},
        {"ph": "X", "name": "ThunkExecutor::Execute", "dur": 9_000_000},  # runtime, not an op
    ]
    table = op_profile.op_table(events, ops)
    assert [op.name for op in table] == ["ynn_fusion.1", "exponential.2"]
    assert table[0].calls == 2 and table[0].seconds == pytest.approx(3.0)
    assert table[0].gflops_per_second == pytest.approx(2 * 2 * 8 * 3 * 4 / 3.0 / 1e9)
    stats = op_profile.summary(table, wall_seconds=4.0)
    assert stats["matmul_s"] == pytest.approx(3.0) and stats["other_s"] == pytest.approx(0.5)
    assert stats["coverage"] == pytest.approx(3.5 / 4.0)
    assert stats["matmul_tflop"] == pytest.approx(2 * 2 * 8 * 3 * 4 / 1e12)


def test_profile_step_on_the_tiny_config_counts_the_model_flops(tmp_path):
    out = tmp_path / "profile.json"
    stdout = run_script(
        "profile_step.py",
        f"--config={REPO / 'configs' / 'tiny.py'}",
        "--prompt_len=16",
        "--repeats=1",
        "--top=5",
        f"--out={out}",
        timeout=600,
    )
    assert "== train (train_step)" in stdout and "GFLOP/s" in stdout
    result = json.loads(out.read_text())
    cfg = load_decoder_config(resolve_checkpoint("tiny-random-llama", None))
    rows, P, L = result["rows"], result["prompt_len"], result["completion_len"]
    prompts = rows // 4  # configs/tiny.py: 4 samples per prompt, each prompt run once
    forward = forward_flops(cfg, prompts * P + rows * L, rows * L, 0)
    for phase in ("sample", "score", "train"):
        assert result[phase]["ops"] and result[phase]["steady_s"] > 0
    # The scorer is one forward (its attention adds a little). The train step runs the
    # blocks 4 times (forward, full remat's replay, backward) and the LM head twice: its
    # forward and the input gradient formed there (rl/head_logprobs.py; the frozen head
    # needs no replay and no weight gradient).
    assert 1.0 <= result["score"]["matmul_tflop"] * 1e12 / forward < 1.1
    blocks = forward_flops(cfg, prompts * P + rows * L, 0, 0)
    train = 4 * blocks + 2 * (forward - blocks)
    assert 0.95 < result["train"]["matmul_tflop"] * 1e12 / train < 1.15
