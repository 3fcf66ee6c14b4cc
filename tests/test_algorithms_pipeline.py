"""PPO and online DPO through the training loop on configs/tiny.py: exact resume (the
critic included), no recompiles after the first step, their metrics and exports."""

from __future__ import annotations

import json

import numpy as np
import pytest
from test_pipeline import checkpoint_state, read_jsonl, tiny_config, train_rows

from rlvr_jax.observers.compilations import COMPILE_COUNT
from rlvr_jax.train import train_and_evaluate

ALGORITHMS = {
    # A critic with its own LoRA: the train state holds both critic trees.
    "ppo": {"rl.algorithm": "ppo", "rl.ppo.critic": "separate", "rl.loss_type": "dapo"},
    "dpo": {"rl.algorithm": "dpo", "rl.beta": 0.1},
}
METRICS = {
    "ppo": ("value/loss", "value/explained_variance", "critic/grad_norm", "kl/mean", "loss"),
    "dpo": ("dpo/pairs", "dpo/skipped", "dpo/margin", "dpo/accuracy", "loss"),
}


def config(algorithm: str, max_steps: int):
    # Pairs need both verdicts in a group, which the random model's answers rarely give:
    # DPO here mostly counts skipped prompts (and skips the update exactly).
    return tiny_config(max_steps=max_steps, **ALGORITHMS[algorithm])


@pytest.fixture(scope="module", params=sorted(ALGORITHMS))
def straight(request, tmp_path_factory):
    workdir = tmp_path_factory.mktemp(f"straight_{request.param}")
    train_and_evaluate(config(request.param, 4), workdir)
    return request.param, workdir


def test_resume_is_exact_with_the_algorithm_state(straight, tmp_path):
    algorithm, reference = straight
    train_and_evaluate(config(algorithm, 2), tmp_path)
    train_and_evaluate(config(algorithm, 4), tmp_path)  # resumes from step 2
    assert train_rows(tmp_path) == train_rows(reference)
    a, b = checkpoint_state(reference, 4), checkpoint_state(tmp_path, 4)
    assert a.keys() == b.keys()
    if algorithm == "ppo":
        assert "['critic']['value_head']['kernel']" in a, sorted(a)[:8]
        assert any(k.startswith("['critic']['lora']") for k in a)
        assert any(k.startswith("['critic_opt_state']") for k in a)
    for key in a:
        np.testing.assert_array_equal(a[key], b[key], err_msg=key)


def test_metrics_and_no_recompiles(straight):
    algorithm, workdir = straight
    train = [r for r in read_jsonl(workdir / "metrics.jsonl") if "loss" in r]
    for key in METRICS[algorithm]:
        assert key in train[-1], f"{algorithm}: metrics.jsonl lacks {key}"
    counts = {r["step"]: r[COMPILE_COUNT] for r in train}
    assert {step: n for step, n in counts.items() if step > 1} == {2: 0, 3: 0, 4: 0}


def test_ppo_exports_its_critic(straight):
    algorithm, workdir = straight
    if algorithm != "ppo":
        assert not (workdir / "export" / "critic").exists()
        return
    from safetensors.numpy import load_file

    critic = workdir / "export" / "critic"
    head = load_file(str(critic / "value_head.safetensors"))
    state = checkpoint_state(workdir, 4)
    np.testing.assert_array_equal(
        head["value_head.weight"], state["['critic']['value_head']['kernel']"]
    )
    assert json.loads((critic / "critic_config.json").read_text())["critic"] == "separate"
    assert (critic / "adapter" / "adapter_model.safetensors").is_file()
    assert (workdir / "export" / "adapter" / "adapter_model.safetensors").is_file()
