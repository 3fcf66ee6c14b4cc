"""Datasets: GSM8K from local files (and the hub call), jsonl, arithmetic, countdown."""

import functools
import json
import logging
import os
import subprocess
import sys
from fractions import Fraction
from pathlib import Path

import pytest
from config_sections import base_config, section

from rlvr_jax.config_builder import ConfigError, build
from rlvr_jax.rewards.countdown import check_equation
from rlvr_jax.tasks import DATASETS, DataConfig, load_rows
from rlvr_jax.tasks.synthetic import in_holdout

GSM8K_DIR = Path(__file__).parents[2] / "shared" / "data" / "gsm8k"
REPO = Path(__file__).parents[1]


def _data(**overrides) -> DataConfig:
    """configs/arithmetic.py's `data` group with overrides, through the strict builder."""
    return section(DataConfig, "data", **overrides)


def _write_jsonl(path: Path, records: list[dict]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in records))
    return path


# ---------------------------------------------------------------- gsm8k


def test_gsm8k_local_splits_and_ground_truth():
    config = _data(name="gsm8k", path=str(GSM8K_DIR), shuffle=False)
    train, test = load_rows(config, "train"), load_rows(config, "eval")
    assert (len(train), len(test)) == (7473, 1319)
    first = test[0]
    assert first["question"].startswith("Janet")
    assert first["answer"] == "18"
    assert first["solution"].endswith("#### 18")
    assert "<<" not in first["demo_reasoning"] and "####" not in first["demo_reasoning"]
    assert all(r["answer"].lstrip("-").isdigit() for r in train + test)
    assert "1080" in {r["answer"] for r in train}  # "#### 1,080" normalized


def test_gsm8k_path_with_split_placeholder():
    config = _data(name="gsm8k", path=str(GSM8K_DIR / "{split}.jsonl"), shuffle=False)
    assert len(load_rows(config, "eval")) == 1319


def test_gsm8k_shuffle_and_max_samples_are_deterministic():
    config = _data(name="gsm8k", path=str(GSM8K_DIR), eval_split="test", max_samples=50)
    a, b = load_rows(config, "train"), load_rows(config, "train")
    other = load_rows(_data(name="gsm8k", path=str(GSM8K_DIR), seed=1, max_samples=50), "train")
    assert len(a) == 50 and a == b
    assert [r["question"] for r in a] != [r["question"] for r in other]
    # The eval split keeps file order, whatever the seed.
    eval_config = _data(name="gsm8k", path=str(GSM8K_DIR), seed=3, eval_max_samples=5)
    assert [r["answer"] for r in load_rows(eval_config, "eval")] == [
        "18",
        "3",
        "70000",
        "540",
        "20",
    ]


def test_gsm8k_hub_id_goes_through_datasets(monkeypatch):
    import datasets

    calls = []

    class FakeDataset:
        def to_list(self):
            return [{"question": "1+1?", "answer": "1+1=2\n#### 2"}]

    def fake_load_dataset(*args, **kwargs):
        calls.append((args, kwargs))
        return FakeDataset()

    monkeypatch.setattr(datasets, "load_dataset", fake_load_dataset)
    config = _data(name="gsm8k", path="openai/gsm8k", subset="main")
    assert load_rows(config, "eval")[0]["answer"] == "2"
    assert calls == [(("openai/gsm8k", "main"), {"split": "test"})]


def test_bad_rows_are_skipped_with_one_warning(tmp_path, caplog):
    records = [
        {"question": "a", "answer": "x\n#### 5"},
        {"question": "b", "answer": "no final answer"},
        {"question": "c", "answer": "#### five"},
        {"question": "d", "answer": "#### 1,000"},
    ]
    path = _write_jsonl(tmp_path / "train.jsonl", records)
    with caplog.at_level(logging.WARNING):
        rows = load_rows(_data(name="gsm8k", path=str(path), shuffle=False), "train")
    assert [r["answer"] for r in rows] == ["5", "1000"]
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1
    assert "skipped 2 of 4" in warnings[0] and "no final answer" in warnings[0]


def test_no_usable_rows_is_an_error(tmp_path):
    path = _write_jsonl(tmp_path / "train.jsonl", [{"question": "a", "answer": "none"}])
    with pytest.raises(ValueError, match="no usable rows"):
        load_rows(_data(name="gsm8k", path=str(path)), "train")


def test_missing_split_file_names_the_key(tmp_path):
    _write_jsonl(tmp_path / "train.jsonl", [{"question": "a", "answer": "#### 1"}])
    with pytest.raises(FileNotFoundError, match="data.path: no files for split 'test'"):
        load_rows(_data(name="gsm8k", path=str(tmp_path)), "eval")
    with pytest.raises(ValueError, match="single file"):
        load_rows(_data(name="gsm8k", path=str(tmp_path / "train.jsonl")), "eval")


# ---------------------------------------------------------------- jsonl


def test_jsonl_custom_fields_and_extra_columns(tmp_path):
    records = [
        {"problem": "2+2?", "solution": "4", "level": 1},
        {"problem": "half?", "solution": "\\frac{1}{2}", "level": 2},
        {"problem": "root?", "solution": "\\sqrt{2}", "level": 3},
        {"problem": "none?", "solution": None, "level": 4},
        {"problem": "sum?", "solution": "so 1,234.0\n#### 1,234", "level": 5},
    ]
    path = _write_jsonl(tmp_path / "data.jsonl", records)
    config = _data(
        name="jsonl", path=str(path), question_field="problem", answer_field="solution",
        shuffle=False, eval_split="",
    )  # fmt: skip
    rows = load_rows(config, "train")
    assert [r["answer"] for r in rows] == ["4", "0.5", "\\sqrt{2}", "1234"]
    assert rows[0]["question"] == "2+2?" and rows[0]["level"] == 1


def test_jsonl_reads_parquet(tmp_path):
    import datasets

    datasets.Dataset.from_list([{"question": "q", "answer": 7}]).to_parquet(
        tmp_path / "train.parquet"
    )
    rows = load_rows(_data(name="jsonl", path=str(tmp_path)), "train")
    assert rows == [{"question": "q", "answer": "7"}]


# ---------------------------------------------------------------- config


@pytest.mark.parametrize(
    "kwargs, message",
    [
        (
            {"name": "foo"},
            r"data.name: unknown dataset 'foo'; choose one of "
            r"\['arithmetic', 'countdown', 'finqa', 'gsm8k', 'jsonl', 'math'\]",
        ),
        ({"name": "gsm8k"}, r"data.path: required for dataset 'gsm8k'"),
        ({"max_samples": -1}, r"data.max_samples: must be >= 0"),
        ({"arithmetic": {"operators": ("^",)}}, r"data.arithmetic.operators"),
        ({"arithmetic": {"min_value": 5, "max_value": 1}}, r"data.arithmetic.min_value/max_value"),
        ({"countdown": {"min_count": 1}}, r"data.countdown.min_count"),
        ({"countdown": {"holdout_fraction": 1.0}}, r"data.countdown.holdout_fraction"),
        ({"arithmetic": {"num_train": 10, "typo": 1}}, r"^data\.arithmetic\.typo: unknown key"),
        ({"sead": 1}, r"^data\.sead: unknown key"),
    ],
)
def test_config_errors_name_the_key(kwargs, message):
    with pytest.raises(ConfigError, match=message):
        _data(**kwargs)


def test_from_ml_collections_config():
    data = base_config().data
    data.arithmetic.operators = ("+", "-")
    config = build(DataConfig, data, "data")
    assert config == build(DataConfig, data.to_dict(), "data")
    assert config == _data(arithmetic={"operators": ("+", "-")})  # the rest of the group kept
    assert config.arithmetic.operators == ("+", "-") and config.arithmetic.max_value == 99


def test_registry_lists_the_builtin_datasets():
    assert sorted(DATASETS) == ["arithmetic", "countdown", "finqa", "gsm8k", "jsonl", "math"]


# ---------------------------------------------------------------- arithmetic


def _arithmetic(which, **params):
    config = _data(name="arithmetic", shuffle=False, arithmetic=params)
    return load_rows(config, which)


def test_arithmetic_default_is_two_digit_addition():
    rows = _arithmetic("train", num_train=500)
    assert len(rows) == 500 and len({r["question"] for r in rows}) == 500
    for row in rows:
        a, b = (int(x) for x in row["question"].removeprefix("What is ").rstrip("?").split(" + "))
        assert 10 <= a <= 99 and 10 <= b <= 99 and row["answer"] == str(a + b)


def test_arithmetic_operators_and_exact_division():
    rows = _arithmetic("train", operators=("-", "*", "/"), min_value=0, max_value=20, num_train=300)
    ops = set()
    for row in rows:
        a, op, b = row["question"].removeprefix("What is ").rstrip("?").split(" ")
        ops.add(op)
        exact = {"-": Fraction(int(a) - int(b)), "*": Fraction(int(a) * int(b))}
        value = exact[op] if op in exact else Fraction(int(a), int(b))
        assert value.denominator == 1 and row["answer"] == str(value)
    assert ops == {"-", "*", "/"}


def test_arithmetic_eval_split_is_disjoint_and_seed_independent():
    train = _arithmetic("train", num_train=2000, num_eval=300)
    evals = _arithmetic("eval", num_train=2000, num_eval=300)
    assert len(evals) == 300
    assert not {r["question"] for r in train} & {r["question"] for r in evals}
    for row in evals:
        key = row["question"].removeprefix("What is ").rstrip("?").replace(" ", "")
        assert in_holdout(key, 0.1)
    other_seed = load_rows(_data(name="arithmetic", seed=7), "eval")
    assert other_seed == load_rows(_data(name="arithmetic"), "eval")


def test_arithmetic_too_many_problems_fails_clearly():
    with pytest.raises(ValueError, match="data.arithmetic.num_train: found only"):
        _arithmetic("train", min_value=1, max_value=3, num_train=100)


# ---------------------------------------------------------------- countdown


@functools.cache
def _reachable(values: tuple[Fraction, ...]) -> frozenset[Fraction]:
    """Every value an expression using each of `values` exactly once can take."""
    if len(values) == 1:
        return frozenset(values)
    results = set()
    n = len(values)
    for mask in range(1, 2**n - 1):  # split into two non-empty groups
        left = tuple(sorted(values[i] for i in range(n) if mask >> i & 1))
        right = tuple(sorted(values[i] for i in range(n) if not mask >> i & 1))
        for x in _reachable(left):
            for y in _reachable(right):
                results.update((x + y, x - y, x * y))
                if y:
                    results.add(x / y)
    return frozenset(results)


def _solvable(numbers: list[int], target: int) -> bool:
    """Brute force: some expression over a subset of `numbers` (each at most once) hits target."""
    values = [Fraction(n) for n in numbers]
    for mask in range(1, 2 ** len(values)):
        subset = tuple(sorted(v for i, v in enumerate(values) if mask >> i & 1))
        if target in _reachable(subset):
            return True
    return False


def test_brute_force_solver_sanity():
    assert _solvable([25, 5, 4], 80)
    assert not _solvable([1, 1], 7)


@pytest.mark.parametrize("which", ["train", "eval"])
def test_every_countdown_instance_is_solvable(which):
    config = _data(name="countdown", countdown={"num_train": 300, "num_eval": 100})
    rows = load_rows(config, which)
    assert len(rows) == (300 if which == "train" else 100)
    for row in rows:
        numbers, target = row["numbers"], row["target"]
        assert all(type(n) is int and 1 <= n <= 99 for n in numbers) and 3 <= len(numbers) <= 4
        assert type(target) is int and 1 <= target <= 100 and row["answer"] == str(target)
        assert _solvable(numbers, target), row
        assert check_equation(row["demo_answer"], numbers, target, use_all=True) == "correct"


def test_countdown_eval_split_is_disjoint():
    config = _data(name="countdown", countdown={"num_train": 1000, "num_eval": 100})
    key = lambda row: (tuple(sorted(row["numbers"])), row["target"])
    train = {key(r) for r in load_rows(config, "train")}
    assert not train & {key(r) for r in load_rows(config, "eval")}


# ---------------------------------------------------------------- determinism

_FINGERPRINT = """
import hashlib, json, sys
sys.path.insert(0, sys.argv[2])  # tests/, for config_sections
from config_sections import section
from rlvr_jax.tasks import DataConfig, RowIterator, load_rows
out = {}
for name, extra in [("arithmetic", {"arithmetic": {"num_train": 300, "num_eval": 50}}),
                    ("countdown", {"countdown": {"num_train": 200, "num_eval": 50}}),
                    ("gsm8k", {"path": sys.argv[1], "max_samples": 300})]:
    config = section(DataConfig, "data", name=name, seed=11, **extra)
    rows = load_rows(config, "train")
    batches = RowIterator(rows, batch_size=64, seed=11)
    order = [[r["question"] for r in next(batches)] for _ in range(6)]
    evals = load_rows(config, "eval")[:50]
    blob = json.dumps([rows, order, evals], sort_keys=True).encode()
    out[name] = hashlib.sha256(blob).hexdigest()
print(json.dumps(out))
"""


def test_same_seed_same_data_in_two_processes():
    results = []
    for hash_seed in ("1", "2"):
        proc = subprocess.run(
            [sys.executable, "-c", _FINGERPRINT, str(GSM8K_DIR), str(Path(__file__).parent)],
            capture_output=True, text=True, cwd=REPO, timeout=120, check=True,
            env={**os.environ, "PYTHONHASHSEED": hash_seed},
        )  # fmt: skip
        results.append(json.loads(proc.stdout.strip().splitlines()[-1]))
    assert results[0] == results[1]
    assert set(results[0]) == {"arithmetic", "countdown", "gsm8k"}
