"""Out-of-distribution runs in `bench run`: `test_on = [...]` in a task's table (issue 15)."""

from __future__ import annotations

import json

import pytest

from benchmark.cli import main
from benchmark.core.errors import BenchError
from benchmark.experiments.parse import load_experiment
from benchmark.experiments.plan import expand

TASK = '[tasks.common]\ndataset = "chexpert"\ntest_on = ["chexpert", "nih"]\n'


def experiment(tmp_path, task: str = TASK, *, chexpert_root: str = "/data/chexpert", methods: str = "[methods.linear]\n",
               name: str = "ood.toml"):
    text = f"""[experiment]
name = "ood"

[datasets.chexpert]
adapter = "chexpert"
root = "{chexpert_root}"
uncertain = "ignore"

[datasets.nih]
adapter = "nih-synthetic"
root = "nihdata"
n = 300
size = 16

{task}
[encoders.tiny-clip]
[encoders.tiny-gloria]
{methods}
[seeds]
repeats = 2
[leaderboard]
n_boot = 20
n_perm = 0
[report]
formats = ["svg"]
"""
    path = tmp_path / name
    path.write_text(text)
    return path


def test_test_on_is_read_as_the_task_s_test_datasets(tmp_path):
    loaded = load_experiment(experiment(tmp_path))
    assert loaded.tasks["common"].test_on == ("chexpert", "nih") and loaded.tasks["common"].dataset == "chexpert"
    plain = load_experiment(experiment(tmp_path, '[tasks.common]\ndataset = "chexpert"\n', name="plain.toml"))
    assert plain.tasks["common"].test_on == ()


@pytest.mark.parametrize("task, words", [
    ('[tasks.common]\ndataset = "chexpert"\ntest_on = ["chexpert", "mimic"]\n',
     "'mimic' is not a dataset of this file (it has chexpert, nih)"),
    ('[tasks.chexpert14]\ndataset = "chexpert"\ntest_on = ["nih"]\n',
     "task chexpert14 cannot be tested on 'nih' (adapter nih-synthetic): it reads chexpert or mimic labels"),
    ('[tasks.common]\ndataset = "chexpert"\ntest_on = ["nih", "nih"]\n', "each once"),
])
def test_a_test_dataset_the_file_lacks_or_the_task_cannot_use_is_refused_in_one_line(tmp_path, task, words):
    path = experiment(tmp_path, task)
    line = next(n for n, text in enumerate(path.read_text().splitlines(), start=1) if text.startswith("test_on"))
    with pytest.raises(BenchError) as raised:
        load_experiment(path)
    message = str(raised.value)
    assert "\n" not in message and words in message
    assert message.startswith(f"{path}:{line}: tasks.") and ".test_on: " in message


def test_the_plan_extracts_every_test_dataset_and_heads_jobs_need_their_stores(tmp_path):
    plan = expand(load_experiment(experiment(tmp_path, methods="[methods.linear]\n[methods.lora]\nepochs = 1\n")))
    ids = [job.id for job in plan.jobs]
    for encoder in ("tiny-clip", "tiny-gloria"):
        for dataset in ("chexpert", "nih"):
            assert f"extract/{encoder}/{dataset}" in ids
            assert plan.by_id[f"extract/{encoder}/{dataset}"].deps == (f"dataset/{dataset}",)
        for seed in (0, 1):
            heads = plan.by_id[f"heads/{encoder}/common/seed{seed}"]
            assert heads.deps == (f"extract/{encoder}/chexpert", f"extract/{encoder}/nih")
            assert heads.payload["test_on"] == ["chexpert", "nih"] and heads.payload["dataset"] == "chexpert"
            finetune = plan.by_id[f"finetune/{encoder}/common/lora/seed{seed}"]  # in distribution only (docs/run.md)
            assert finetune.deps == ("dataset/chexpert",) and "test_on" not in finetune.payload
    leaderboard = plan.by_id["leaderboard/common"]
    assert {dep for dep in leaderboard.deps if dep.startswith("heads/")} == {
        f"heads/{e}/common/seed{s}" for e in ("tiny-clip", "tiny-gloria") for s in (0, 1)}
    for position, job in enumerate(plan.jobs):
        assert all(ids.index(dep) < position for dep in job.deps)


def test_a_plan_without_test_on_keeps_its_heads_jobs_as_they_were(tmp_path):
    plan = expand(load_experiment(experiment(tmp_path, '[tasks.common]\ndataset = "chexpert"\n')))
    assert [job.id for job in plan.jobs if job.stage == "extract"] == ["extract/tiny-clip/chexpert",
                                                                      "extract/tiny-gloria/chexpert"]
    assert "test_on" not in plan.by_id["heads/tiny-clip/common/seed0"].payload


def test_a_resumed_heads_job_fits_each_head_only_on_the_test_datasets_it_lacks():
    from types import SimpleNamespace

    from benchmark.experiments.stages.heads import _missing

    request = SimpleNamespace(heads=("linear", "mlp", "zeroshot"))
    found = {(head, test): [] for head in request.heads for test in (None, "nih", "mimic")}
    outputs = {("linear", None): 1, ("linear", "nih"): 1, ("linear", "mimic"): 1, ("mlp", None): 1,
               ("zeroshot", None): 1}
    assert _missing(request, found, outputs) == [(("mlp", "zeroshot"), ("nih", "mimic"))]
    outputs.pop(("zeroshot", None))
    assert _missing(request, found, outputs) == [(("mlp",), ("nih", "mimic")), (("zeroshot",), (None, "nih", "mimic"))]


def test_bench_run_writes_in_and_out_of_distribution_runs_and_ranks_them_side_by_side(tmp_path, capsys):
    from benchmark.datasets.synth_chexpert import write_chexpert_synthetic

    root = write_chexpert_synthetic(tmp_path / "cx", n=160, size=16, seed=8)
    path = experiment(tmp_path, chexpert_root=str(root)).read_text().replace("[encoders.tiny-gloria]\n", "")
    (tmp_path / "ood.toml").write_text(path.replace("repeats = 2", "list = [0]"))
    workdir = tmp_path / "w"
    assert main(["--workdir", str(workdir), "run", str(tmp_path / "ood.toml"), "--no-live"]) == 0
    folder = workdir / "experiments" / "ood"
    runs = json.loads((folder / "leaderboard" / "common.json").read_text())["runs"]
    assert sorted((run["dataset"], run["test_dataset"]) for run in runs) == [("chexpert", "chexpert"),
                                                                              ("chexpert", "nih")]
    table = (folder / "leaderboard" / "common.md").read_text()
    assert "| tiny-clip | chexpert->nih | 0 |" in table and "| tiny-clip | chexpert->chexpert | 0 |" in table
    from benchmark.leaderboard import load_task_runs
    from benchmark.leaderboard.cells import short_label

    ranked = load_task_runs(workdir, "common", experiment="ood")
    labels = sorted(short_label(run, shifted=True) for run in ranked)
    assert [label[:label.index(" (")] for label in labels] == ["tiny-clip linear chexpert->chexpert s0",
                                                              "tiny-clip linear chexpert->nih s0"]
    page = (folder / "report" / "common" / "report.html").read_text()
    assert "tiny-clip linear chexpert-&gt;chexpert s0" in page and "tiny-clip linear chexpert-&gt;nih s0" in page
    outputs = json.loads((folder / "jobs" / "heads" / "tiny-clip" / "common" / "seed0.json").read_text())["outputs"]
    assert set(outputs["runs"]) == {"linear", "linear->nih"}
    listed = {run["run_id"] for run in json.loads((folder / "runs" / "common.json").read_text())["runs"]}
    assert listed == {run["run_id"] for run in outputs["runs"].values()}
    capsys.readouterr()
    assert main(["--workdir", str(workdir), "run", str(tmp_path / "ood.toml"), "--no-live"]) == 0
    again = json.loads((folder / "jobs" / "heads" / "tiny-clip" / "common" / "seed0.json").read_text())
    assert again["state"] == "cached" and again["outputs"] == outputs
