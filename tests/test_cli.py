"""The `bench` command surface: every subcommand has help, and user errors print without a traceback."""

from __future__ import annotations

import pytest

from benchmark import cli
from benchmark.core.errors import BenchError
from benchmark.core.workdir import Workdir

SUBCOMMANDS = ["data", "models", "extract", "fit-heads", "runs", "finetune", "leaderboard", "run", "demo", "perf"]


@pytest.mark.parametrize("name", SUBCOMMANDS)
def test_every_subcommand_has_help(name, capsys):
    with pytest.raises(SystemExit) as stop:
        cli.main([name, "--help"])
    assert stop.value.code == 0
    assert "usage: bench" in capsys.readouterr().out


def test_bench_error_prints_message_without_traceback(monkeypatch, capsys):
    def boom(args):
        raise BenchError("the file x.csv has no column 'Patient ID'")

    parser = cli.build_parser()
    args = parser.parse_args(["models"])
    monkeypatch.setattr(cli, "build_parser", lambda: _FixedParser(args, boom))
    assert cli.main(["models"]) == 2
    err = capsys.readouterr().err
    assert "no column 'Patient ID'" in err
    assert "Traceback" not in err


class _FixedParser:
    def __init__(self, args, func):
        self.args, self.args.func = args, func

    def parse_args(self, argv):
        return self.args


def test_workdir_resolution_order(tmp_path, monkeypatch):
    monkeypatch.setenv("BENCH_HOME", str(tmp_path / "from-env"))
    assert Workdir.resolve(None).root == (tmp_path / "from-env").resolve()
    assert Workdir.resolve(tmp_path / "from-option").root == (tmp_path / "from-option").resolve()
    assert (tmp_path / "from-option").is_dir()


def test_runs_names_an_unknown_task(workdir, capsys):
    assert cli.main(["runs", "--task", "nope"]) == 2
    assert "unknown task 'nope'" in capsys.readouterr().err
    assert cli.main(["runs", "--task", "nih14"]) == 0
    assert "no prediction runs" in " ".join(capsys.readouterr().out.split())
