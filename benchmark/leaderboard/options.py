"""The leaderboard's evaluation options (`benchmark.core.schema.EVALUATION_DEFAULTS`: the names the command line
and experiment files use) translated into `build` keywords, for `bench leaderboard`, `bench report` and the
leaderboard job of `bench run` alike."""

from __future__ import annotations

from benchmark.core.schema import EVALUATION_DEFAULTS


def evaluation_options(values: dict) -> dict:
    """`benchmark.leaderboard.build` keywords from option values (the keys of EVALUATION_DEFAULTS; missing ones
    take their defaults)."""
    from benchmark.leaderboard.board import DEFAULT_RANK

    unknown = set(values) - set(EVALUATION_DEFAULTS)
    if unknown:
        raise KeyError(f"not a leaderboard option: {', '.join(sorted(unknown))}")
    values = {**EVALUATION_DEFAULTS, **values}
    return dict(rank_by=values["rank_by"] or DEFAULT_RANK, correction=values["correction"],
                alpha=values["alpha"], attributes=values["groups"], age_bins=values["age_bins"],
                n_boot=values["n_boot"], n_perm=values["n_perm"], seed=values["seed"],
                threshold_rule=values["threshold"], min_group_size=values["min_group_size"],
                min_positives=values["min_positives"], seed_exact=values["seed_exact"],
                reweight_prevalence=values["reweight_prevalence"])
