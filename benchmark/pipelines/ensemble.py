"""Ensembles of checkpoints of one encoder: CheXzero's authors average the zero-shot probabilities of several.

    bench extract   --model chexzero --dataset nih --root DIR --weights ckpts/*.pt   # one store per member
    bench fit-heads --model chexzero --task nih14 --weights ckpts/*.pt               # one run per head

Extraction checks every member before anything is written (each found, its digest read, none named twice,
each that has no complete store yet loaded strictly), then builds one embedding store per member, its
identity holding that member's weights digest: a re-run is a cache hit, and a changed member's file rebuilds
that member's store only. Heads read the members' stores side by side (`cache.ensemble.StoreEnsemble`) and
every head (zero-shot and trained) is fitted on each member's embeddings, its probabilities the mean of the
members' (`heads.member_average.MemberAverage`): one run per head, recording the members.
"""

from __future__ import annotations

from pathlib import Path

from benchmark.core.errors import BenchError
from benchmark.core.progress import SILENT, Progress


def weights_members(weights) -> tuple:
    """The checkpoints `weights` names: (None,) for the default place, one for a file or folder, several for the
    members of an ensemble (a list or tuple)."""
    if weights is None:
        return (None,)
    if isinstance(weights, (str, Path)):
        return (str(weights),)
    members = tuple(str(member) for member in weights)
    return members or (None,)


def is_ensemble(weights) -> bool:
    return len(weights_members(weights)) > 1


def member_digests(model: str, weights) -> tuple[str, ...]:
    """The weights digest of each member (BenchError naming a member that is not found, or one named twice)."""
    from benchmark.pipelines.extract import weights_digest_of

    members = weights_members(weights)
    digests: dict[str, str] = {}
    for index, member in enumerate(members, 1):
        try:
            found = weights_digest_of(model, member)
        except BenchError as error:
            raise member_error(index, members, error) from None
        if found in digests:
            raise BenchError(f"--weights {member} is the same checkpoint as --weights {digests[found]} (digest "
                             f"{found[:16]}); name each member of an ensemble once")
        digests[found] = member
    return tuple(digests)


def check_members(model: str, members: tuple, *, trust_checkpoint: bool = False, cached=(),
                  progress: Progress = SILENT) -> None:
    """Load every member strictly on the CPU (and let it go), except those whose store is complete (`cached`:
    one flag per member): a bad member stops the ensemble before anything is written."""
    from extractors import load_encoder

    member_digests(model, members)
    cached = tuple(cached) or (False,) * len(members)
    for index, (member, done) in enumerate(zip(members, cached), 1):
        if done:
            continue
        progress.note(f"checking ensemble member {index} of {len(members)}: {member}")
        try:
            load_encoder(model, weights=member, trust_checkpoint=trust_checkpoint, device="cpu")
        except BenchError as error:
            raise member_error(index, members, error) from None


def member_error(index: int, members: tuple, error: BenchError) -> BenchError:
    """`error`, saying which member of an ensemble it is about (as it is for a single checkpoint)."""
    if len(members) < 2:
        return error
    return BenchError(f"ensemble member {index} of {len(members)} (--weights {members[index - 1]}): {error}")


def extract_members(model: str, manifest, root, *, workdir, weights=None, trust_checkpoint: bool = False,
                    verify_content: bool = False, classes=None, progress: Progress = SILENT, **options) -> list[Path]:
    """One complete store per member of `weights` (`weights_members`), in that order; an ensemble's members are
    all checked first (`check_members`). `options` go to `benchmark.pipelines.extract.extract`."""
    from benchmark.core.distributed import environment_rank
    from benchmark.pipelines.extract import cached_store, extract

    members = weights_members(weights)
    notes = progress if environment_rank() == 0 else SILENT  # under torchrun, rank 0 speaks for all
    hits = [cached_store(model, manifest, root, workdir=workdir, weights=member, verify_content=verify_content,
                         classes=classes, keep_degenerate=options.get("keep_degenerate", False)) for member in members]
    if len(members) > 1:
        check_members(model, members, trust_checkpoint=trust_checkpoint, cached=[hit is not None for hit in hits],
                      progress=notes)
    paths = []
    for index, (member, hit) in enumerate(zip(members, hits), 1):
        if len(members) > 1:
            notes.note(f"ensemble member {index} of {len(members)}: {member}" + (" (cache hit)" if hit else ""))
        paths.append(hit or extract(model, manifest, root, workdir=workdir, weights=member,
                                    trust_checkpoint=trust_checkpoint, verify_content=verify_content,
                                    classes=classes, progress=progress, **options))
    return paths


def cached_members(model: str, manifest, root, *, workdir, weights=None, classes=None) -> list[Path] | None:
    """The complete store of every member of `weights`, or None when one is missing (reads only)."""
    from benchmark.pipelines.extract import cached_store

    paths = [cached_store(model, manifest, root, workdir=workdir, weights=member, classes=classes)
             for member in weights_members(weights)]
    return None if any(path is None for path in paths) else paths

