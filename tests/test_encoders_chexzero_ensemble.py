"""CheXzero's ensemble on the tiny variant: several --weights, one store per member, every member checked before
anything is written, heads whose probabilities are the mean of the members' (zero-shot as the authors do it)."""

from __future__ import annotations

import shutil

import numpy as np
import pytest
import torch

from benchmark.cli import main
from benchmark.core.runs import list_runs, read_predictions
from cache.embeddings import EmbeddingStore
from cache.ensemble import ensemble_digest
from test_reliability_extract import tree

MODEL = "tiny-chexzero"
MEMBERS = ("random-init:1", "random-init:2")
TASK = "nih14"


def extract(workdir, root, *weights) -> int:
    return main(["--workdir", str(workdir), "extract", "--model", MODEL, "--root", str(root), "--weights", *weights])


def fit(workdir, heads, *weights) -> int:
    return main(["--workdir", str(workdir), "fit-heads", "--model", MODEL, "--task", TASK, "--heads", heads,
                 "--weights", *weights])


def stores(workdir) -> dict[str, EmbeddingStore]:
    """Weights digest -> store, of every store of the tiny encoder in the workdir."""
    found = [EmbeddingStore.open(path) for path in (workdir / "stores" / MODEL).glob("*.h5")]
    return {store.attrs["weights_digest"]: store for store in found}


def member_file(path, seed: int):
    """A checkpoint in CheXzero's layout (a plain OpenAI-key state_dict) of the tiny variant with another seed."""
    from extractors import load_encoder

    torch.save(load_encoder(MODEL, weights=f"random-init:{seed}").model.state_dict(), path)
    return path


def runs_of(workdir, method: str, *weights: str) -> list:
    """The runs of `method` made with that checkpoint (one weights digest) or that ensemble (several)."""
    wanted = weights[0] if len(weights) == 1 else ensemble_digest(weights)
    return [run for run in list_runs(workdir, TASK)
            if run.record.method == method and run.record.weights_digest == wanted]


def probabilities(run) -> np.ndarray:
    frame, _ = read_predictions(run.path)
    return frame.sort("image_id").select([c for c in frame.columns if c.startswith("p_")]).to_numpy()


@pytest.fixture(scope="module")
def extracted(synthetic_nih, tmp_path_factory):
    """A workdir holding the synthetic dataset and one store per member of a two-member tiny ensemble."""
    workdir = tmp_path_factory.mktemp("ensemble") / "work"
    assert extract(workdir, synthetic_nih, *MEMBERS) == 0
    return workdir


@pytest.fixture
def workdir(extracted, tmp_path):
    copy = tmp_path / "work"
    shutil.copytree(extracted, copy)
    return copy


def test_each_member_gets_its_own_store_and_a_rerun_is_a_cache_hit(extracted, synthetic_nih, monkeypatch, capsys):
    by_weights = stores(extracted)
    assert set(by_weights) == {"random-init:1", "random-init:2"}
    first, second = by_weights.values()
    assert first.identity_digest != second.identity_digest and first.path != second.path
    assert first.weights_tag == second.weights_tag == "random-init"
    assert not np.allclose(first.image_embeddings(), second.image_embeddings()), "the seeds make different members"
    before = tree(extracted)

    import extractors

    monkeypatch.setattr(extractors, "load_encoder", _must_not_build)
    capsys.readouterr()
    assert extract(extracted, synthetic_nih, *reversed(MEMBERS)) == 0  # any order names the same ensemble
    assert capsys.readouterr().out.count("cache hit: this extraction was done") == 2
    assert tree(extracted) == before


def _must_not_build(*args, **kwargs):
    raise AssertionError("a member was built although its store was complete")


@pytest.mark.parametrize("bad", ["wrong architecture", "missing", "corrupt", "the first again"])
def test_a_bad_member_stops_the_ensemble_before_anything_is_written(bad, synthetic_nih, tmp_path, capsys):
    good = member_file(tmp_path / "a.pt", seed=1)
    second = tmp_path / "b.pt"
    if bad == "wrong architecture":
        from extractors import load_encoder

        torch.save(load_encoder("tiny-clip").model.state_dict(), second)  # same keys, other shapes
    elif bad == "corrupt":
        second.write_bytes(good.read_bytes()[:1000])
    elif bad == "the first again":
        shutil.copy(good, second)
    workdir = tmp_path / "work"
    workdir.mkdir()
    capsys.readouterr()
    assert extract(workdir, synthetic_nih, str(good), str(second)) == 2
    error = capsys.readouterr().err
    assert str(second) in error.replace("\n", "")
    assert tree(workdir) == {}, "nothing may be written when a member is bad"


def test_a_bad_member_leaves_an_existing_workdir_as_it_was(workdir, synthetic_nih, tmp_path, capsys):
    before = tree(workdir)
    bad = tmp_path / "bad.pt"
    bad.write_bytes(b"not a checkpoint")
    assert extract(workdir, synthetic_nih, *MEMBERS, "random-init:3", str(bad)) == 2
    assert "ensemble member 4 of 4" in capsys.readouterr().err
    assert tree(workdir) == before


def test_changing_one_member_file_rebuilds_only_that_member(synthetic_nih, tmp_path, monkeypatch):
    import extractors

    a, b = member_file(tmp_path / "a.pt", seed=1), member_file(tmp_path / "b.pt", seed=2)
    workdir = tmp_path / "work"
    assert extract(workdir, synthetic_nih, str(a), str(b)) == 0
    before = {path.name: path.stat().st_mtime_ns for path in (workdir / "stores" / MODEL).glob("*.h5")}
    assert len(before) == 2

    member_file(b, seed=3)  # the second member's file now holds other weights
    built, real = [], extractors.load_encoder
    monkeypatch.setattr(extractors, "load_encoder", lambda name, **kw: built.append(kw["weights"]) or real(name, **kw))
    assert extract(workdir, synthetic_nih, str(a), str(b)) == 0
    after = {path.name: path.stat().st_mtime_ns for path in (workdir / "stores" / MODEL).glob("*.h5")}
    assert set(built) == {str(b)}, "only the changed member is loaded again"
    assert len(after) == 3 and all(after[name] == mtime for name, mtime in before.items())


def test_ensemble_zero_shot_is_the_mean_of_the_members_zero_shot(workdir):
    assert fit(workdir, "zeroshot", *MEMBERS) == 0
    [ensemble] = runs_of(workdir, "zeroshot", *MEMBERS)
    singles = []
    for member in MEMBERS:
        assert fit(workdir, "zeroshot", member) == 0
        singles.append(probabilities(*runs_of(workdir, "zeroshot", member)))
    mean = probabilities(ensemble)
    np.testing.assert_allclose(mean, (singles[0] + singles[1]) / 2, atol=1e-6)
    assert not np.allclose(mean, singles[0], atol=1e-3), "the members must differ for this test to mean anything"

    record = ensemble.record
    assert [member["weights_digest"] for member in record.ensemble] == sorted(MEMBERS)
    assert record.weights_digest == ensemble_digest(MEMBERS) and record.random_init is True
    by_weights = stores(workdir)
    assert [m["store_identity"] for m in record.ensemble] == [by_weights[d].identity_digest for d in sorted(MEMBERS)]
    assert record.hyperparameters["member_average"] == 2 and len(record.chosen["members"]) == 2

    assert fit(workdir, "zeroshot", *reversed(MEMBERS)) == 0  # the members' order changes nothing
    first, again = runs_of(workdir, "zeroshot", *MEMBERS)
    np.testing.assert_array_equal(probabilities(again), mean)


def test_ensemble_zero_shot_follows_the_authors_pair_softmax(workdir):
    """Per member: softmax over the cosines of the image with the "{}" and "no {}" prompts (no logit scale);
    then the mean over members (rajpurkarlab/CheXzero, ensemble_models), computed here from the stores."""
    assert fit(workdir, "zeroshot", *MEMBERS) == 0
    [run] = runs_of(workdir, "zeroshot", *MEMBERS)
    frame, record = read_predictions(run.path)
    frame = frame.sort("image_id")
    expected = np.zeros((frame.height, len(record.classes)))
    for store in stores(workdir).values():
        rows = [list(store.image_ids).index(image_id) for image_id in frame["image_id"]]
        image = store.image_embeddings()[rows].astype(np.float64)
        image /= np.linalg.norm(image, axis=1, keepdims=True)
        text = store.text("default")
        vectors = text["embedding"] / np.linalg.norm(text["embedding"], axis=1, keepdims=True)
        for k, name in enumerate(record.classes):
            pos, neg = (vectors[(text["class_name"] == name) & (text["polarity"] == side)][0]
                        for side in ("pos", "neg"))
            expected[:, k] += np.exp(image @ pos) / (np.exp(image @ pos) + np.exp(image @ neg)) / 2
    got = frame.select([f"p_{name}" for name in record.classes]).to_numpy()
    np.testing.assert_allclose(got, expected, atol=1e-4)


def test_a_trained_head_on_an_ensemble_averages_the_members_probes(workdir):
    assert fit(workdir, "linear", *MEMBERS) == 0
    ensemble = probabilities(*runs_of(workdir, "linear", *MEMBERS))
    singles = []
    for member in MEMBERS:
        assert fit(workdir, "linear", member) == 0
        singles.append(probabilities(*runs_of(workdir, "linear", member)))
    np.testing.assert_allclose(ensemble, (singles[0] + singles[1]) / 2, atol=1e-6)


def test_the_leaderboard_shows_the_ensemble_as_one_entry(workdir, capsys):
    import json

    assert fit(workdir, "zeroshot", *MEMBERS) == 0 and fit(workdir, "zeroshot", MEMBERS[0]) == 0
    capsys.readouterr()
    assert main(["--workdir", str(workdir), "leaderboard", "--task", TASK, "--format", "json", "--n-boot", "20",
                 "--n-perm", "0"]) == 0
    runs = json.loads(capsys.readouterr().out)["runs"]
    assert sorted(bool(run["ensemble"]) for run in runs) == [False, True]
    assert next(run["ensemble"] for run in runs if run["ensemble"]) == sorted(MEMBERS)
    assert main(["--workdir", str(workdir), "leaderboard", "--task", TASK, "--n-boot", "20", "--n-perm", "0",
                 "--format", "md"]) == 0
    assert capsys.readouterr().out.count(f"| {MODEL} ensemble of 2 |") == 1


def test_without_weights_several_stores_ask_which(workdir, capsys):
    assert main(["--workdir", str(workdir), "fit-heads", "--model", MODEL, "--task", TASK, "--heads", "zeroshot"]) == 2
    assert "several for their ensemble" in capsys.readouterr().err.replace("\n", " ")


def test_random_init_members_are_tiny_only_and_the_registered_seed_is_the_default():
    from benchmark.core.errors import BenchError
    from benchmark.pipelines.extract import expected_weights_digest, weights_digest_of

    from extractors.registry import get_spec

    seed = get_spec(MODEL).init_seed
    assert weights_digest_of(MODEL, f"random-init:{seed}") == weights_digest_of(MODEL, None) == "random-init"
    assert expected_weights_digest(MODEL, ["random-init:2", "random-init:1"]) == ensemble_digest(MEMBERS)
    with pytest.raises(BenchError, match="tiny-\\* encoders only"):
        weights_digest_of("chexzero", "random-init:1")
    with pytest.raises(BenchError, match="whole number"):
        weights_digest_of(MODEL, "random-init:one")


def test_member_average_splits_the_columns_and_averages_the_probabilities():
    from heads.member_average import MemberAverage
    from heads.registry import get_head

    rng = np.random.default_rng(0)
    X, y = rng.standard_normal((60, 5)).astype(np.float32), rng.integers(0, 2, (60, 3))
    members = [get_head("linear").create(random_state=0, n_classes=3, Cs=(1.0,)) for _ in range(2)]
    head = MemberAverage(members, widths=(2, 3)).fit(X[:40], y[:40], X[40:], y[40:])
    alone = [get_head("linear").create(random_state=0, n_classes=3, Cs=(1.0,)) for _ in range(2)]
    for probe, cols in zip(alone, (slice(0, 2), slice(2, 5))):
        probe.fit(X[:40, cols], y[:40], X[40:, cols], y[40:])
    expected = (alone[0].predict_proba(X[:, :2]) + alone[1].predict_proba(X[:, 2:])) / 2
    np.testing.assert_allclose(head.predict_proba(X), expected, atol=1e-6)
    assert head.recorded_params()["member_average"] == 2
    with pytest.raises(ValueError, match="4 features, but the members' embeddings have 5"):
        head.predict_proba(X[:, :4])
