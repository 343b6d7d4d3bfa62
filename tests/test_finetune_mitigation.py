"""Group-aware fine-tuning: `bench finetune --protect ATTR --balance groups --loss groupdro`."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from benchmark.cli import main
from benchmark.core.distributed import SINGLE
from benchmark.core.runs import list_runs
from benchmark.finetune.config import FineTuneConfig, make_config
from benchmark.finetune.groups import GroupDRO, balanced_order

sys.path.insert(0, str(Path(__file__).parent))
from finetune_fakes import write_registered_dataset  # noqa: E402


def test_the_balanced_order_draws_every_group_about_equally_and_is_planned():
    groups = np.r_[np.zeros(800, dtype=np.int64), np.ones(200, dtype=np.int64)]
    order = balanced_order(groups, seed=3, epoch=1)
    assert order.size == groups.size
    assert abs(groups[order].mean() - 0.5) < 0.05  # the 20% group fills half of the epoch
    np.testing.assert_array_equal(order, balanced_order(groups, seed=3, epoch=1))  # a resumed run reads the same
    assert not np.array_equal(order, balanced_order(groups, seed=3, epoch=2))


def test_group_dro_splits_the_batch_loss_exactly_and_upweights_the_worse_group():
    losses = torch.tensor([1.0, 3.0, 2.0, 4.0, 0.5, 0.5])
    groups = torch.tensor([0, 1, 0, 1, 0, 0])
    dro = GroupDRO(2, step_size=0.5, device="cpu", weights=torch.tensor([0.3, 0.7]))
    dro.start_batch(groups.numpy())
    total = 0.0
    for part in (slice(0, 3), slice(3, 6)):  # two micro-batches of one global batch
        total += float(dro.micro_loss(losses[part], groups[part], world_size=1))
        dro.accumulate(losses[part], groups[part])
    means = torch.tensor([losses[groups == 0].mean(), losses[groups == 1].mean()])
    assert total == pytest.approx(float(0.3 * means[0] + 0.7 * means[1]))
    dro.end_batch(SINGLE)
    expected = torch.tensor([0.3, 0.7]) * torch.exp(0.5 * means)
    torch.testing.assert_close(dro.q, expected / expected.sum())
    assert dro.q[1] > 0.7


def test_configs_without_mitigation_keep_their_old_ids_and_bad_combinations_are_refused():
    assert not {"balance", "loss", "protect", "dro_step"} & set(make_config().to_dict())
    recorded = make_config(protect="sex", loss="groupdro").to_dict()
    assert recorded["loss"] == "groupdro" and recorded["dro_step"] == 0.01
    assert FineTuneConfig.from_dict(recorded) == make_config(protect="sex", loss="groupdro")
    from benchmark.core.errors import BenchError

    with pytest.raises(BenchError, match="give --protect"):
        make_config(balance="groups")
    with pytest.raises(BenchError, match="is used by --balance groups or --loss groupdro"):
        make_config(protect="sex")


@pytest.fixture
def registered(workdir, tmp_path):
    write_registered_dataset(workdir, tmp_path / "data", per_class=10)
    return workdir


COMMAND = ["finetune", "--model", "tiny-clip", "--task", "nofinding", "--method", "lora", "--epochs", "2",
           "--batch-size", "8", "--lora-rank", "2", "--no-augment", "--no-progress"]


def test_group_aware_lora_records_its_groups_and_pairs_with_the_plain_run(registered, capsys):
    assert main(COMMAND + ["--protect", "sex", "--balance", "groups", "--loss", "groupdro", "--dro-step", "0.5"]) == 0
    (run,) = list_runs(registered, task="nofinding")
    record = run.record
    assert record.hyperparameters["protect"] == "sex" and record.hyperparameters["loss"] == "groupdro"
    mitigation = record.details["mitigation"]
    assert mitigation["levels"] == ["F", "M"] and mitigation["plain_method"] == "lora"
    assert "GroupDRO" in mitigation["source"] and "balanced" in mitigation["source"]
    history = record.details["history"]
    assert all("val_worst_group_loss" in epoch and len(epoch["group_weights"]) == 2 for epoch in history)
    assert sum(history[-1]["group_weights"]) == pytest.approx(1.0, abs=1e-5)
    (folder,) = (registered / "finetune").iterdir()
    from benchmark.finetune.checkpoint import LAST, TrainingState

    assert TrainingState.load(folder / LAST).dro_weights.shape == (2,)  # a resumed run continues with its weights

    assert main(COMMAND) == 0  # the plain run of the same settings
    capsys.readouterr()
    assert main(["tradeoff", "--task", "nofinding", "--n-boot", "20", "--format", "json"]) == 0
    (comparison,) = json.loads(capsys.readouterr().out)["comparisons"]
    assert comparison["method"] == comparison["plain_method"] == "lora" and comparison["gap"] == "auc_gap_sex"


@pytest.mark.parametrize("extra, message", [
    (["--balance", "groups"], "give --protect"),
    (["--loss", "groupdro", "--protect", "race"], "has no race values"),
])
def test_group_aware_fine_tuning_that_cannot_work_is_refused_in_one_line(registered, capsys, extra, message):
    assert main(COMMAND + extra) == 2
    error = capsys.readouterr().err
    assert message in error and len(error.strip().splitlines()) <= 2
    assert not (registered / "runs").exists() or not list((registered / "runs").rglob("*.parquet"))
