"""launch/*.sh: the commands each recipe prints with --dry-run, and its argument errors.

Nothing is launched for real: the recipes only print (--dry-run), or, for local.sh's
process handling, run a fake `python` ($PYTHON) that records its arguments and environment.
"""

import os
import shlex
import subprocess
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
# Passed through verbatim: spaces, a quote, an empty argument, shell syntax.
TRICKY_ARGS = ["--config.prompt.system=You're a b", "two words", "", "$(echo hi);&|*"]
TRAIN_ARGS = ["--config=configs/tiny.py", "--config.mesh.fsdp=-1", *TRICKY_ARGS]


GUARD = """#!/usr/bin/env bash
echo "test_launch: $0 must not run in these tests" >&2
exit 99
"""


@pytest.fixture(autouse=True)
def no_real_launch(tmp_path_factory, monkeypatch):
    """`gcloud`, `sbatch`, `srun` and `python` fail loudly: nothing is launched for real."""
    guards = tmp_path_factory.mktemp("guards")
    for name in ("gcloud", "sbatch", "srun", "python"):
        (guards / name).write_text(GUARD)
        (guards / name).chmod(0o755)
    monkeypatch.setenv("PATH", f"{guards}{os.pathsep}{os.environ['PATH']}")
    monkeypatch.delenv("PYTHON", raising=False)  # local.sh's default, `python`, is the guard
    monkeypatch.delenv("XLA_FLAGS", raising=False)


def run_recipe(name, *args, env=None, timeout=60):
    environ = {**os.environ, **(env or {})}
    return subprocess.run(
        ["bash", str(ROOT / "launch" / name), *args],
        capture_output=True,
        text=True,
        env=environ,
        timeout=timeout,
        check=False,
    )


def dry_run(name, *args):
    result = run_recipe(name, "--dry-run", *args)
    assert result.returncode == 0, result.stderr
    # The output is a valid shell script.
    syntax = subprocess.run(["bash", "-n"], input=result.stdout, capture_output=True, text=True)
    assert syntax.returncode == 0, syntax.stderr
    return result.stdout


def split_env(words):
    """`env K=V ... cmd args` -> ({K: V}, [cmd, args...])."""
    assert words[0] == "env"
    environ, i = {}, 1
    while "=" in words[i] and not words[i].startswith("-"):
        key, value = words[i].split("=", 1)
        environ[key] = value
        i += 1
    return environ, words[i:]


def test_local_prints_one_command_per_process(tmp_path):
    workdir = tmp_path / "w"
    out = dry_run(
        "local.sh",
        "--num_processes=3",
        "--devices_per_process=2",
        "--port=23456",
        "--",
        *TRAIN_ARGS,
        f"--workdir={workdir}",
    )
    lines = out.splitlines()
    assert f"cd {shlex.quote(str(ROOT))}" in lines
    assert f"mkdir -p {workdir}/launch_logs" in lines
    commands = [shlex.split(line) for line in lines if line.startswith("env ")]
    assert len(commands) == 3
    for i, words in enumerate(commands):
        assert words[-4:] == [">", f"{workdir}/launch_logs/process_{i}.log", "2>&1", "&"]
        environ, argv = split_env(words[:-4])
        assert environ == {
            "XLA_FLAGS": "--xla_force_host_platform_device_count=2",
            "JAX_PLATFORMS": "cpu",
            "JAX_COORDINATOR_ADDRESS": "127.0.0.1:23456",
            "JAX_NUM_PROCESSES": "3",
            "JAX_PROCESS_ID": str(i),
        }
        assert argv == ["python", "scripts/train.py", *TRAIN_ARGS, f"--workdir={workdir}"]
    assert lines[-1] == "wait"
    assert not workdir.exists()  # a dry run creates nothing


def test_local_defaults_eval_script_and_logs_dir(tmp_path):
    out = dry_run("local.sh", "--num_processes=2", "--devices_per_process=1", "--", "--x=1")
    commands = [shlex.split(line) for line in out.splitlines() if line.startswith("env ")]
    assert [split_env(c[:-4])[0]["JAX_COORDINATOR_ADDRESS"] for c in commands] == [
        "127.0.0.1:12355"
    ] * 2
    assert commands[1][-3] == "./launch_logs/process_1.log"  # no --workdir: ./launch_logs

    out = dry_run(
        "local.sh",
        "--num_processes=1",
        "--devices_per_process=4",
        "--script=eval",
        f"--logs_dir={tmp_path}/logs",
        "--",
        "--out=elsewhere",
    )
    (words,) = [shlex.split(line) for line in out.splitlines() if line.startswith("env ")]
    _, argv = split_env(words[:-4])
    assert argv == ["python", "scripts/eval.py", "--out=elsewhere"]
    assert words[-3] == f"{tmp_path}/logs/process_0.log"


FAKE_PYTHON = """#!/usr/bin/env bash
out="$FAKE_OUT/process_$JAX_PROCESS_ID"
printf '%s\\n' "$@" > "$out.argv"
env > "$out.env"
echo $$ > "$out.pid"
echo "process $JAX_PROCESS_ID says hi"
if [[ $JAX_PROCESS_ID == "$FAKE_FAIL" ]]; then sleep 1; exit 3; fi
[[ -n $FAKE_FAIL ]] && exec sleep 60
exit 0
"""


@pytest.fixture
def fake_python(tmp_path):
    path = tmp_path / "python"
    path.write_text(FAKE_PYTHON)
    path.chmod(0o755)
    return path


def test_local_runs_every_process_with_its_environment(tmp_path, fake_python):
    args = ["--config=configs/tiny.py", *TRICKY_ARGS, f"--workdir={tmp_path / 'w'}"]
    result = run_recipe(
        "local.sh",
        "--num_processes=2",
        "--devices_per_process=3",
        "--",
        *args,
        env={"PYTHON": str(fake_python), "FAKE_OUT": str(tmp_path), "FAKE_FAIL": ""},
    )
    assert result.returncode == 0, result.stderr
    assert "process 0 says hi" in result.stdout  # process 0's log is followed
    for i in range(2):
        argv = (tmp_path / f"process_{i}.argv").read_text().split("\n")[:-1]
        assert argv == ["scripts/train.py", *args]
        environ = dict(
            line.split("=", 1)
            for line in (tmp_path / f"process_{i}.env").read_text().splitlines()
            if "=" in line
        )
        assert environ["JAX_PROCESS_ID"] == str(i)
        assert environ["JAX_NUM_PROCESSES"] == "2"
        assert environ["XLA_FLAGS"] == "--xla_force_host_platform_device_count=3"
        assert (tmp_path / "w" / "launch_logs" / f"process_{i}.log").read_text() == (
            f"process {i} says hi\n"
        )


def test_local_stops_the_others_when_one_fails(tmp_path, fake_python):
    start = time.monotonic()
    result = run_recipe(
        "local.sh",
        "--num_processes=3",
        "--devices_per_process=1",
        f"--logs_dir={tmp_path}/logs",
        env={"PYTHON": str(fake_python), "FAKE_OUT": str(tmp_path), "FAKE_FAIL": "1"},
    )
    assert result.returncode == 3
    assert time.monotonic() - start < 30  # the others (sleeping 60 s) were stopped
    assert "process 1 failed (exit 3)" in result.stderr
    for i in (0, 2):
        pid = int((tmp_path / f"process_{i}.pid").read_text())
        with pytest.raises(ProcessLookupError):
            os.kill(pid, 0)


def test_tpu_pod_prints_the_gcloud_ssh_to_all_workers():
    out = dry_run(
        "tpu_pod.sh", "--tpu=my-pod", "--zone=us-central2-b", "--project=proj", "--", *TRAIN_ARGS
    )
    (line,) = [line for line in out.splitlines() if not line.startswith("#")]
    words = shlex.split(line)
    assert words[:6] == ["gcloud", "compute", "tpus", "tpu-vm", "ssh", "my-pod"]
    assert set(words[6:-1]) == {"--zone=us-central2-b", "--project=proj", "--worker=all"}
    assert words[-1].startswith("--command=")
    inner = shlex.split(words[-1].removeprefix("--command="))
    assert inner == [
        "cd",
        "~/rlvr_jax",  # unquoted in the remote command: the worker's shell expands it
        "&&",
        "python3",
        "scripts/train.py",
        "--distributed=on",
        *TRAIN_ARGS,
    ]
    assert "--command=cd ~/rlvr_jax && " in words[-1]


def test_tpu_pod_eval_repo_dir_and_setup():
    out = dry_run(
        "tpu_pod.sh",
        "--tpu=t",
        "--zone=z",
        "--repo_dir=/opt/my repo",
        "--python=/venv/bin/python",
        "--script=eval",
        "--",
        "--out=gs://b/e",
    )
    words = shlex.split(out.splitlines()[-1])
    assert "--project" not in " ".join(words)
    inner = shlex.split(words[-1].removeprefix("--command="))
    assert inner == [
        "cd",
        "/opt/my repo",
        "&&",
        "/venv/bin/python",
        "scripts/eval.py",
        "--distributed=on",
        "--out=gs://b/e",
    ]

    out = dry_run("tpu_pod.sh", "--tpu=t", "--zone=z", "--setup")
    words = shlex.split(out.splitlines()[-1])
    assert "--worker=all" in words
    inner = shlex.split(words[-1].removeprefix("--command="))
    assert inner == ["cd", "~/rlvr_jax", "&&", "python3", "-m", "pip", "install", "-e", ".[tpu]"]


def test_slurm_prints_the_sbatch_script():
    out = dry_run(
        "slurm.sh",
        "--nodes=4",
        "--gpus_per_node=8",
        "--partition=gpu",
        "--time=12:00:00",
        "--sbatch_option=--account=abc",
        "--",
        *TRAIN_ARGS,
    )
    lines = out.splitlines()
    assert lines[0] == "#!/usr/bin/env bash"
    sbatch = [line for line in lines if line.startswith("#SBATCH ")]
    assert sbatch == [
        "#SBATCH --job-name=rlvr_jax",
        "#SBATCH --nodes=4",
        "#SBATCH --ntasks-per-node=1",
        "#SBATCH --gpus-per-node=8",
        "#SBATCH --partition=gpu",
        "#SBATCH --time=12:00:00",
        "#SBATCH --account=abc",
    ]
    assert f"cd {shlex.quote(str(ROOT))}" in lines
    (srun,) = [line for line in lines if line.startswith("srun ")]
    assert shlex.split(srun) == ["srun", "python", "scripts/train.py", *TRAIN_ARGS]


def test_slurm_optional_lines_and_eval():
    out = dry_run("slurm.sh", "--nodes=1", "--script=eval", "--", "--out=/shared/e")
    sbatch = [line for line in out.splitlines() if line.startswith("#SBATCH ")]
    assert sbatch == [
        "#SBATCH --job-name=rlvr_jax",
        "#SBATCH --nodes=1",
        "#SBATCH --ntasks-per-node=1",
    ]
    assert "srun python scripts/eval.py --out=/shared/e" in out.splitlines()


@pytest.mark.parametrize(
    "name, args, flag",
    [
        ("local.sh", ["--devices_per_process=2"], "--num_processes"),
        ("local.sh", ["--num_processes=2"], "--devices_per_process"),
        ("tpu_pod.sh", ["--zone=z"], "--tpu"),
        ("tpu_pod.sh", ["--tpu=t"], "--zone"),
        ("slurm.sh", [], "--nodes"),
    ],
)
def test_missing_required_flag_is_named(name, args, flag):
    result = run_recipe(name, *args, "--dry-run", "--", "--config=configs/tiny.py")
    assert result.returncode != 0
    assert f"missing required flag {flag}" in result.stderr
    assert result.stdout == ""


@pytest.mark.parametrize(
    "name, args, message",
    [
        ("local.sh", ["--num_processes=0", "--devices_per_process=1"], "positive integer"),
        ("local.sh", ["--num_processes=2", "--devices_per_process=x"], "positive integer"),
        ("local.sh", ["--num_processes=1", "--devices_per_process=1", "--port=70000"], "65535"),
        ("local.sh", ["--num_processes=1", "--devices_per_process=1", "--script=x"], "--script"),
        ("local.sh", ["--num_processes", "2"], "needs a value"),
        ("tpu_pod.sh", ["--tpu=t", "--zone=z", "--bogus"], "unknown option '--bogus'"),
        ("slurm.sh", ["--nodes=2", "--time=noon"], "--time"),
        ("slurm.sh", ["--nodes=2", "--gpus_per_node=-1"], "positive integer"),
    ],
)
def test_bad_arguments_are_reported(name, args, message):
    result = run_recipe(name, *args, "--dry-run")
    assert result.returncode != 0
    assert message in result.stderr


def test_tpu_setup_takes_no_script_arguments():
    result = run_recipe("tpu_pod.sh", "--tpu=t", "--zone=z", "--setup", "--dry-run", "--", "--x")
    assert result.returncode != 0
    assert "--setup" in result.stderr


@pytest.mark.parametrize("name", ["local.sh", "tpu_pod.sh", "slurm.sh"])
def test_help_shows_the_usage_header(name):
    result = run_recipe(name, "--help")
    assert result.returncode == 0
    assert result.stdout.startswith(f"Usage: launch/{name} ")
    assert "--dry-run" in result.stdout


def test_recipes_are_executable():
    for name in ("local.sh", "tpu_pod.sh", "slurm.sh"):
        assert os.access(ROOT / "launch" / name, os.X_OK), name
