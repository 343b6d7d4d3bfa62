"""The small core every package of cxr-fairbench builds on; it imports no other project package.

    errors        BenchError: a mistake the user can fix, printed without a traceback
    schema        names shared by every layer: splits, sexes, label columns, the age threshold, column prefixes
    identity      canonical JSON and digests (cache identities, run identities)
    atomic        crash-safe writes: temporary file beside the target, fsync, rename
    workdir       the working directory and its folder layout
    distributed   ranks of a torchrun job, the process group, device checks
    manifest      the canonical manifest (one row per image) and its digest
    predictions   the prediction frame every method writes
    runs          the run record (typed metadata) and prediction files on disk
    progress      how libraries report progress without knowing the console
    versions      versions of the packages that shape a result

Nothing here imports torch at module level: a cache hit must not pay for it.
"""
