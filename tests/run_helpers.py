"""Helpers for the `bench run` tests: small experiment files over a small synthetic dataset, and `bench run` in
a subprocess (to kill it)."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
SMALL_N, SMALL_SIZE, PER_CLASS = 400, 32, 8
"""400 synthetic images of 32 px give nih6x200 with 8 images per class (48 images, 12 in test)."""


def experiment_text(root: Path | None, *, name: str = "small", encoders: str = '[encoders.tiny-clip]',
                    methods: str = "[methods.linear]\n[methods.zeroshot]\n", seeds: str = "list = [0]",
                    extra: str = "") -> str:
    dataset = (f'[datasets.nih]\nroot = "{root}"\n' if root is not None else
               f'[datasets.nih]\nadapter = "nih-synthetic"\nroot = "data"\nn = {SMALL_N}\nsize = {SMALL_SIZE}\n')
    return f"""[experiment]
name = "{name}"

{dataset}
[tasks.nih6x200]
params = {{ per_class = {PER_CLASS} }}

{encoders}

{methods}
[seeds]
{seeds}

[leaderboard]
n_boot = 20
n_perm = 0

[report]
formats = ["svg"]
{extra}"""


def write_experiment(folder: Path, text: str, name: str = "experiment.toml") -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / name
    path.write_text(text)
    return path


def environment(workdir: Path) -> dict:
    return {**os.environ, "BENCH_HOME": str(workdir), "PYTHONPATH": str(REPO), "OMP_NUM_THREADS": "1"}


def bench(args: list[str], workdir: Path, *, timeout: float = 600) -> subprocess.CompletedProcess:
    """`bench ARGS` in a subprocess with BENCH_HOME=workdir."""
    return subprocess.run([sys.executable, "-m", "benchmark.cli", *args], env=environment(workdir), capture_output=True,
                          text=True, timeout=timeout)


def start_bench(args: list[str], workdir: Path) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "benchmark.cli", *args], env=environment(workdir),
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def kill_when(process: subprocess.Popen, condition, *, timeout: float = 600) -> bool:
    """SIGKILL `process` as soon as `condition()` holds; False when it ended (or timed out) first."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and process.poll() is None:
        if condition():
            process.kill()
            process.wait()
            return True
        time.sleep(0.02)
    if process.poll() is None:
        process.kill()
        process.wait()
    return False


def wait_until_dead(pid: int, timeout: float = 120) -> bool:
    from benchmark.core.atomic import pid_alive

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not pid_alive(pid):
            return True
        time.sleep(0.1)
    return False
