"""The console: quiet third-party logging, live bars on a terminal, lines elsewhere, summaries.

The last test runs scripts/train.py on configs/tiny.py with its console captured to a
file, as an operator would (`... 2>&1 | tee log`), and reads the file.
"""

from __future__ import annotations

import io
import json
import logging
import re
import subprocess
import sys
from pathlib import Path

import orbax.checkpoint
from absl import logging as absl_logging

from rlvr_jax.log_filter import (
    ThirdPartyInfoFilter,
    quiet_third_party_logging,
    third_party_held_back,
)
from rlvr_jax.observers import ObserverGroup
from rlvr_jax.observers.console import ConsoleObserver
from rlvr_jax.observers.progress import is_terminal
from rlvr_jax.observers.summaries import (
    EvalPoint,
    RunFiles,
    eval_points,
    eval_summary_line,
    run_summary,
)

REPO = Path(__file__).resolve().parents[1]
ORBAX_FILE = str(Path(orbax.checkpoint.__file__).parent / "checkpoint_manager.py")
EVAL = {
    "eval/accuracy": 0.375,
    "eval/accuracy/ci_low": 0.25,
    "eval/accuracy/ci_high": 0.5,
    "eval/greedy/format_rate": 0.9,
    "eval/greedy/truncation_rate": 0.125,
    "eval/greedy/length_mean": 31.0,
    "eval/time_s": 57.06,
}


def _record(pathname: str, level: int = logging.INFO) -> logging.LogRecord:
    return logging.LogRecord("absl", level, pathname, 1, "message", None, None)


# --- third-party logging -----------------------------------------------------------------


def test_filter_drops_third_party_info_and_keeps_ours_and_warnings():
    f = ThirdPartyInfoFilter()
    assert not f.filter(_record(ORBAX_FILE))
    assert not f.filter(_record(logging.__file__))  # the standard library counts too
    assert f.filter(_record(ORBAX_FILE, logging.WARNING))
    assert f.filter(_record(str(REPO / "rlvr_jax" / "train.py")))
    assert f.filter(_record(str(REPO / "scripts" / "train.py")))
    assert f.filter(_record(__file__))


def test_quiet_third_party_logging_is_a_switch_on_the_handlers():
    handler = absl_logging.get_absl_handler()
    try:
        quiet_third_party_logging(True)
        quiet_third_party_logging(True)  # idempotent: one filter
        filters = [f for f in handler.filters if isinstance(f, ThirdPartyInfoFilter)]
        assert len(filters) == 1
        with third_party_held_back():
            assert not filters[0].filter(_record(ORBAX_FILE, logging.ERROR))
        assert filters[0].filter(_record(ORBAX_FILE, logging.ERROR))
        quiet_third_party_logging(False)  # observers.third_party_logging = True
        assert not [f for f in handler.filters if isinstance(f, ThirdPartyInfoFilter)]
    finally:
        quiet_third_party_logging(False)


# --- summaries ---------------------------------------------------------------------------


def test_eval_summary_line_is_compact():
    line = eval_summary_line(12, EVAL)
    assert line == (
        "eval @ step 12: accuracy 0.375 [0.250, 0.500] | format 0.900 | truncated 0.125 | 57.1 s"
    )
    assert "length" not in line  # the full table stays in metrics.jsonl / TensorBoard


def test_run_summary_names_best_final_and_the_files(tmp_path):
    points = [
        EvalPoint(0, 0.1, 0.0, 0.2),
        EvalPoint(12, 0.5, 0.4, 0.6),
        EvalPoint(36, 0.4, 0.3, 0.5),
    ]
    files = RunFiles(
        tmp_path / "checkpoints" / "36", tmp_path / "export", tmp_path / "m.jsonl", None
    )
    text = run_summary(36, 36, "21m05s", "reward 0.412 | acc 0.375", points, files)
    lines = text.splitlines()
    assert lines[0] == "run end @ step 36/36 after 21m05s"
    assert "last step: reward 0.412 | acc 0.375" in text
    assert "eval accuracy: final 0.400 [0.300, 0.500] @ step 36 | best 0.500 @ step 12" in text
    for label, path in (("checkpoint", "checkpoints/36"), ("exports", "export")):
        assert re.search(rf"{label}:\s+{re.escape(str(tmp_path / path))}$", text, re.M), text
    assert f"plot:        python scripts/plot_metrics.py --metrics={tmp_path / 'm.jsonl'}" in text
    assert "tensorboard" not in text


def test_eval_points_of_a_resumed_run_come_from_metrics_rows():
    rows = [{"step": 0, **EVAL}, {"step": 1, "loss": 0.1}, {"step": 12, "eval/accuracy": 0.5}]
    assert [p.step for p in eval_points(rows, up_to_step=11)] == [0]
    assert [p.accuracy for p in eval_points(rows, up_to_step=12)] == [0.375, 0.5]


# --- console sink ------------------------------------------------------------------------


def _drive(console: ConsoleObserver, workdir: Path) -> None:
    group = ObserverGroup([console], sample_every=0, num_samples_to_log=1)
    with group:
        group.on_run_start({}, {"num_steps": 4, "resumed_from_step": 0, "provenance": {"x": 1}})
        for step in (1, 2):
            metrics = {"reward/total/mean": 0.25 * step, "reward/correct_frac": 0.125 * step}
            group.on_step_end(step, {**metrics, "throughput/tokens_per_s": 300.0}, None)
        group.on_eval_progress(2, 4, 8, 1)
        group.on_eval_progress(2, 8, 8, 3)
        group.on_eval_end(2, EVAL, None)
        (workdir / "checkpoints" / "2").mkdir(parents=True)
        group.on_run_end(2, {"reward/total/mean": 0.5})


def test_console_lines_when_not_a_terminal(tmp_path, caplog):
    caplog.set_level(logging.INFO)
    _drive(ConsoleObserver(1, tmp_path, (True, False), live_stream=None), tmp_path)
    lines = [r.getMessage() for r in caplog.records]
    assert lines[0] == "run starting, 4 steps planned"  # provenance goes to runs.jsonl only
    assert lines[1].startswith("step 1/4 [###---------] | reward 0.250 | acc 0.125 | ")
    assert "300 tok/s" in lines[2] and "eta " in lines[2]
    # One progress line per evaluation batch but the last, then the summary.
    assert lines[3] == "eval @ step 2: 4/8 questions | accuracy so far 0.250"
    assert lines[4] == eval_summary_line(2, EVAL)
    assert lines[5].startswith("run end @ step 2/4 after ")
    assert "eval accuracy: final 0.375 [0.250, 0.500] @ step 2" in lines[5]
    assert f"checkpoint:  {tmp_path / 'checkpoints' / '2'}" in lines[5]
    assert f"metrics:     {tmp_path / 'metrics.jsonl'}" in lines[5]


class _Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_console_live_bars_on_a_terminal(tmp_path, caplog):
    caplog.set_level(logging.INFO)
    screen = _Terminal()
    _drive(ConsoleObserver(1, tmp_path, (True, False), live_stream=screen), tmp_path)
    drawn = screen.getvalue()
    assert re.search(
        r"train .* 2/4 \| reward 0\.500 \| acc 0\.250 \| .* s/step \| 300 tok/s", drawn
    )
    assert re.search(r"eval @ step 2 .* 4/8 \| acc 0\.250", drawn)
    lines = [r.getMessage() for r in caplog.records]
    assert not any(line.startswith(("step ", "eval @ step 2: 4/8")) for line in lines)
    assert eval_summary_line(2, EVAL) in lines and lines[-1].startswith("run end @ step 2/4")


def test_only_a_sized_terminal_gets_bars():
    assert not is_terminal(io.StringIO())
    assert not is_terminal(_Terminal())  # no file descriptor: no size, no bars


# --- the console of a real run -----------------------------------------------------------


def test_train_console_captured_to_a_file_is_ours_and_readable(tmp_path):
    """The quickstart's console on configs/tiny.py: no Orbax/JAX INFO records, a progress
    line per step, eval summaries and the run-end summary; provenance in runs.jsonl."""
    workdir, log = tmp_path / "run", tmp_path / "console.log"
    cmd = [
        sys.executable,
        str(REPO / "scripts" / "train.py"),
        f"--config={REPO / 'configs' / 'tiny.py'}",
        f"--workdir={workdir}",
        "--config.max_steps=2",
        "--config.observers.sample_every=0",
        "--config.observers.tensorboard=False",
    ]
    with open(log, "w") as out:
        proc = subprocess.run(cmd, cwd=REPO, stdout=out, stderr=subprocess.STDOUT, timeout=600)
    text = log.read_text()
    assert proc.returncode == 0, text[-3000:]
    ours = {p.name for p in (REPO / "rlvr_jax").rglob("*.py")} | {"train.py"}
    sources = re.findall(r"^[IWEF]\d{4} [\d:.]+ +\d+ ([\w.]+):\d+\]", text, re.M)
    info_sources = re.findall(r"^I\d{4} [\d:.]+ +\d+ ([\w.]+):\d+\]", text, re.M)
    assert sources, text
    assert set(info_sources) <= ours, f"third-party INFO records: {set(info_sources) - ours}"
    assert "orbax" not in text.lower() and "checkpoint_manager.py" not in text
    assert "Unable to initialize backend" not in text
    assert re.search(r"step 1/2 \[#+-*\] \| reward [\d.]+ \| acc [\d.]+ \| [\d.]+ s/step", text)
    assert re.search(r"eval @ step 0: accuracy [\d.]+ \[[\d.]+, [\d.]+\] \| format", text)
    assert "eval/greedy/length_mean" not in text  # no full metrics table
    assert re.search(r"run end @ step 2/2 after \d+s\n  last step: ", text)
    assert f"checkpoint:  {workdir / 'checkpoints' / '2'}" in text
    assert f"exports:     {workdir / 'export'}" in text
    assert "plot:        python scripts/plot_metrics.py" in text
    assert len(text.splitlines()) < 40, text
    (start,) = [json.loads(line) for line in (workdir / "runs.jsonl").read_text().splitlines()]
    provenance = start["meta"]["provenance"]
    for name in ("jax", "jaxlib", "flax", "optax", "orbax-checkpoint", "transformers"):
        assert provenance["versions"][name], name
    if (REPO / ".git").exists():  # a checkout (a worktree has a .git file)
        assert re.fullmatch(r"[0-9a-f]{40}", provenance["git_commit"] or ""), provenance
