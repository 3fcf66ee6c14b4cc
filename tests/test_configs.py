"""Every shipped config runs: one RL step plus its evaluations, on the tiny random model.

Each file in configs/ is loaded as a user would (`--config=configs/<name>.py`) and only
the model, the sizes and (for file datasets) the data path are overridden, so its task,
prompt, rewards, verifier and evaluation are the ones it ships with. A config that crashes
at its first evaluation (countdown did, with a verifier that needs row fields) fails here.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from tiny_rl import fast_compile

from rlvr_jax.config_builder import sibling_config
from rlvr_jax.train import train_and_evaluate

REPO = Path(__file__).resolve().parents[1]
CONFIGS = sorted((REPO / "configs").glob("*.py"))

SIZES = {
    "model.checkpoint": "tiny-random-llama",
    "max_steps": 1,
    "sampling.num_samples": 2,
    "sampling.max_new_tokens": 6,
    "rl.prompts_per_step": 2,
    "rl.num_microbatches": 2,  # a config's own count may not divide 2 x 2 rows (gsm8k: 8)
    "eval.every_steps": 1,
    "eval.train_max_samples": 2,
    "eval.batch_size": 2,
    "eval.max_new_tokens": 6,
    "eval.num_samples": 2,
    "eval.ks": (1, 2),
    "eval.num_resamples": 200,
    "checkpoint.every_steps": 1,
    "observers.tensorboard": False,
    "compile_cache.enabled": False,  # per process in JAX: see test_pipeline.tiny_config
    "model.quantization.block_size": 32,  # divides the tiny model's 64 and 96 rows (nf4)
}
# Synthetic datasets: a few instances instead of thousands.
SYNTHETIC = {"num_train": 16, "num_eval": 4}

GSM8K_ROWS = [
    {"question": "Tom has 3 apples and buys 4 more. How many apples?", "answer": "3+4=7\n#### 7"},
    {"question": "A box holds 6 eggs. How many eggs in 2 boxes?", "answer": "6*2=12\n#### 12"},
    {"question": "Sam had 10 coins and lost 3. How many are left?", "answer": "10-3=7\n#### 7"},
]


def _set(config, dotted: str, value) -> None:
    *parents, leaf = dotted.split(".")
    node = config
    for key in parents:
        node = node[key]
    node[leaf] = value


def _gsm8k_dir(tmp_path: Path) -> Path:
    """A local copy in GSM8K's schema (question, answer with '#### n'): no hub access."""
    data = tmp_path / "gsm8k"
    data.mkdir()
    for split in ("train", "test"):
        lines = [json.dumps(row) for row in GSM8K_ROWS]
        (data / f"{split}.jsonl").write_text("\n".join(lines) + "\n")
    return data


@pytest.mark.parametrize("path", CONFIGS, ids=[p.stem for p in CONFIGS])
def test_shipped_config_trains_and_evaluates(path, tmp_path):
    config = sibling_config(str(path), path.stem)
    for key, value in SIZES.items():
        _set(config, key, value)
    mixture = config.data.mixture  # a mixture's tasks of positive weight run here too
    tasks = [task for task in sorted(mixture) if mixture[task].weight > 0]
    names = {config.data.name} | {mixture[task].data.name for task in tasks}
    for name in sorted(names):
        if name in ("arithmetic", "countdown"):
            for key, value in SYNTHETIC.items():
                _set(config, f"data.{name}.{key}", value)
        else:
            assert name == "gsm8k", f"{path.name}: add a local fixture for data.name={name!r}"
            _set(config, "data.path", str(_gsm8k_dir(tmp_path)))
            _set(config, "data.subset", "")

    with fast_compile():
        last = train_and_evaluate(config, tmp_path / "run")

    assert "loss" in last and "reward/total/mean" in last
    rows = [json.loads(line) for line in (tmp_path / "run" / "metrics.jsonl").open()]
    evals = [row for row in rows if "eval/accuracy" in row]
    assert [row["step"] for row in evals] == [0, 1], "evaluation at step 0 and at the end"
    prefixes = [f"eval/{task}/" for task in tasks] or ["eval/"]  # a mixture reports per task
    for row in evals:
        assert 0.0 <= row["eval/accuracy"] <= 1.0
        for prefix in prefixes:
            assert 0.0 <= row[f"{prefix}accuracy"] <= 1.0
            assert 0.0 <= row[f"{prefix}sampled/maj@2_strict"] <= 1.0
            assert row[f"{prefix}greedy/length_mean"] > 0
    assert (tmp_path / "run" / "export" / "merged" / "config.json").is_file()
