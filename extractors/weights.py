"""Find, verify and safely read encoder checkpoints. Nothing here downloads anything.

Where weights are looked for, in order:
  1. `--weights PATH` (`load_encoder(weights=PATH)`): a checkpoint file, or a folder holding the file the
     spec names;
  2. the weights folder named by the `BENCH_WEIGHTS` environment variable: `$BENCH_WEIGHTS/<encoder name>/<file>`,
     `$BENCH_WEIGHTS/<Hugging Face repo name>/<file>` (e.g. a `huggingface-cli download --local-dir` copy), or
     `$BENCH_WEIGHTS/<file>` when no other registered encoder needs a file of that name (several need
     `open_clip_model.safetensors` or `pytorch_model.bin`, which must therefore sit in a named folder);
  3. the Hugging Face cache (offline: `huggingface_hub.try_to_load_from_cache`, honouring `HF_HOME` /
     `HF_HUB_CACHE`), for sources that name a Hugging Face repository.

Reading is safe by default: safetensors, or `torch.load(weights_only=True)`. A checkpoint that needs
arbitrary unpickling (TorchScript archives such as OpenAI's original `.pt` files, Lightning checkpoints that
pickle configuration objects) is refused unless the caller passes `trust_checkpoint=True`. Known sha256
digests are verified. `strict_load` lists missing, unexpected and mis-shaped keys instead of ignoring them.
"""

from __future__ import annotations

import dataclasses
import hashlib
import os
import pickle
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from benchmark.core.errors import BenchError
from extractors.registry import EncoderSpec, WeightsSource

if TYPE_CHECKING:  # torch is imported where checkpoints are read: finding weights and their digest needs none
    import torch
    from torch import nn

WEIGHTS_ENV = "BENCH_WEIGHTS"
MAX_LISTED_KEYS = 12

_digest_cache: dict[tuple[str, int, int], str] = {}


@dataclass(frozen=True)
class FoundWeights:
    """A checkpoint file on disk and the registry source it matches (None for an unrecognised file)."""

    path: Path
    source: WeightsSource | None

    @property
    def tag(self) -> str:
        return self.source.tag if self.source else f"local:{self.path.name}"


def _hf_cached(source: WeightsSource) -> Path | None:
    if not source.hf_repo:
        return None
    try:
        from huggingface_hub import try_to_load_from_cache
    except ImportError:
        return None
    found = try_to_load_from_cache(
        source.hf_repo, source.hf_filename or source.filename, cache_dir=_hf_cache_dir()
    )
    return Path(found) if isinstance(found, str) else None


def _hf_cache_dir() -> str:
    """The hub cache folder, read at call time so `HF_HUB_CACHE` / `HF_HOME` set after import count."""
    if os.environ.get("HF_HUB_CACHE"):
        return os.environ["HF_HUB_CACHE"]
    if os.environ.get("HF_HOME"):
        return str(Path(os.environ["HF_HOME"]) / "hub")
    try:
        from huggingface_hub import constants

        return str(constants.HF_HUB_CACHE)
    except ImportError:
        return "the Hugging Face cache (huggingface_hub not installed)"


def _source_for_file(spec: EncoderSpec, path: Path) -> WeightsSource | None:
    for source in spec.weights:
        if path.name in (source.filename, source.hf_filename):
            return source
    return None


def shared_filenames() -> set[str]:
    """Checkpoint file names that more than one registered encoder needs (ambiguous at the top of a folder)."""
    from extractors.registry import REGISTRY

    owners: dict[str, set[str]] = {}
    for spec in REGISTRY.values():
        for source in spec.weights:
            owners.setdefault(source.filename, set()).add(spec.name)
    return {name for name, specs in owners.items() if len(specs) > 1}


def weights_folders(spec: EncoderSpec, source: WeightsSource, root: Path) -> list[Path]:
    """The folders under the weights folder `root` that may hold `source` for `spec`, in search order."""
    folders = [root / spec.name]
    if source.hf_repo:
        folders.append(root / source.hf_repo.split("/")[-1])
    if source.filename not in shared_filenames():
        folders.append(root)
    return folders


def places_looked(spec: EncoderSpec, explicit: str | os.PathLike | None = None) -> list[str]:
    """Human-readable list of the places `find_weights` searches for this spec."""
    places = []
    if explicit:
        places.append(f"--weights {explicit}")
    env = os.environ.get(WEIGHTS_ENV)
    names = sorted({source.filename for source in spec.weights})
    if env:
        folders = sorted({str(f) for source in spec.weights for f in weights_folders(spec, source, Path(env))})
        places.append(f"${WEIGHTS_ENV}={env} (files {names} in {', '.join(folders)})")
    else:
        places.append(f"${WEIGHTS_ENV} (not set)")
    repos = [f"{s.hf_repo}/{s.hf_filename or s.filename}" for s in spec.weights if s.hf_repo]
    if repos:
        places.append(f"Hugging Face cache {_hf_cache_dir()} ({', '.join(repos)})")
    return places


def find_weights(spec: EncoderSpec, explicit: str | os.PathLike | None = None) -> FoundWeights | None:
    """The first checkpoint found for `spec` (see the module docstring for the order), or None."""
    if explicit:
        path = Path(explicit).expanduser()
        if path.is_file():
            return FoundWeights(path, _source_for_file(spec, path))
        if path.is_dir():
            for source in spec.weights:
                for name in (source.filename, source.hf_filename):
                    if name and (path / name).is_file():
                        return FoundWeights(path / name, source)
            names = sorted({s.filename for s in spec.weights}) or ["<any checkpoint file>"]
            raise BenchError(f"--weights {path}: folder holds none of {names}; pass the checkpoint file itself.")
        raise BenchError(f"--weights {path}: no such file or folder.")
    env = os.environ.get(WEIGHTS_ENV)
    if env:
        for source in spec.weights:
            for folder in weights_folders(spec, source, Path(env)):
                if (folder / source.filename).is_file():
                    return FoundWeights(folder / source.filename, source)
    for source in spec.weights:
        cached = _hf_cached(source)
        if cached is not None:
            return FoundWeights(cached, source)
    return None


def missing_weights_message(spec: EncoderSpec, explicit: str | os.PathLike | None = None) -> str:
    lines = [f"no weights found for encoder {spec.name!r}. Needed, any one of:"]
    for source in spec.weights:
        where = source.published_at
        if source.url:
            where += f" ({source.url})"
        lines.append(f"  - {source.filename}: published at {where}")
    lines.append("Looked in: " + "; ".join(places_looked(spec, explicit)) + ".")
    lines.append(
        f"Put the file in ${WEIGHTS_ENV}/{spec.name}/ or pass --weights PATH; "
        f"or use the random-init variant tiny-* for a dry run (`bench models` lists them)."
    )
    return "\n".join(lines)


def resolve_weights(spec: EncoderSpec, explicit: str | os.PathLike | None = None) -> FoundWeights:
    """Like `find_weights`, but a missing checkpoint is a BenchError naming the file and its publisher."""
    found = find_weights(spec, explicit)
    if found is None:
        raise BenchError(missing_weights_message(spec, explicit))
    return found


RANDOM_INIT_MEMBER = "random-init:"
"""`--weights random-init:SEED` (tiny variants only): a random initialisation with that seed instead of a file, e.g.
the members of a tiny ensemble."""


def random_init_member(spec: EncoderSpec, weights) -> tuple[EncoderSpec, str] | None:
    """For `weights` written "random-init:SEED": (the spec with that init seed, its weights digest: "random-init"
    for the registered seed, else "random-init:SEED"); None for any other weights. Tiny variants only."""
    if not isinstance(weights, str) or not weights.startswith(RANDOM_INIT_MEMBER):
        return None
    if spec.variant != "tiny":
        raise BenchError(f"--weights {weights}: a random initialisation stands in for tiny-* encoders only; "
                         f"{spec.name!r} needs its published checkpoint (`bench models`).")
    try:
        seed = int(weights[len(RANDOM_INIT_MEMBER):])
    except ValueError:
        raise BenchError(f"--weights {weights}: the seed after {RANDOM_INIT_MEMBER!r} must be a whole number, "
                         f"e.g. {RANDOM_INIT_MEMBER}7.") from None
    if seed == spec.init_seed:
        return spec, "random-init"
    return dataclasses.replace(spec, init_seed=seed), f"{RANDOM_INIT_MEMBER}{seed}"


def sha256_of(path: str | os.PathLike) -> str:
    """sha256 hex of a file (memoised per process on path, size and modification time)."""
    path = Path(path)
    stat = path.stat()
    key = (str(path.resolve()), stat.st_size, stat.st_mtime_ns)
    if key not in _digest_cache:
        digest = hashlib.sha256()
        with open(path, "rb") as handle:
            for block in iter(lambda: handle.read(1 << 22), b""):
                digest.update(block)
        _digest_cache[key] = digest.hexdigest()
    return _digest_cache[key]


def verify_digest(found: FoundWeights) -> str:
    """Return the file's sha256, raising BenchError if the source lists a different one."""
    digest = sha256_of(found.path)
    expected = found.source.sha256 if found.source else None
    if expected and digest != expected.lower():
        raise BenchError(
            f"{found.path}: sha256 {digest} does not match the published {expected} for "
            f"{found.source.filename}; the file is corrupt or a different release. Download it again."
        )
    return digest


def _is_torchscript(path: Path) -> bool:
    if not zipfile.is_zipfile(path):
        return False
    with zipfile.ZipFile(path) as archive:
        names = archive.namelist()
    return any(name.endswith("constants.pkl") or "/code/" in name for name in names)


def _is_torch_zip(path: Path) -> bool:
    with zipfile.ZipFile(path) as archive:
        return any(name.endswith("data.pkl") for name in archive.namelist())


REFUSED = (
    "{path} holds objects that are not tensors (safe loading refused them: {reason}). Loading it would unpickle "
    "arbitrary objects, and unpickling can run code hidden in the file. Refused. Use a safetensors / plain "
    "state_dict release of the same weights, or pass --trust-checkpoint only if you trust where the file came from."
)
UNREADABLE = "{path} cannot be read as a checkpoint ({reason}): the file is truncated or corrupt, or not a checkpoint. Download it again."


def read_checkpoint(path: str | os.PathLike, *, trust_checkpoint: bool = False) -> Any:
    """Load a checkpoint file safely: safetensors, or torch.load(weights_only=True).

    TorchScript archives and pickles with arbitrary objects are refused with a BenchError unless
    `trust_checkpoint` is True (only for files from a source you trust: unpickling can run code). An empty,
    truncated or corrupt file is one BenchError naming it.
    """
    from safetensors import SafetensorError

    path = Path(path)
    if not path.is_file():
        raise BenchError(f"checkpoint {path} not found")
    if path.stat().st_size == 0:
        raise BenchError(f"{path} is empty (0 bytes): the download did not finish. Download it again.")
    try:
        return _read(path, trust_checkpoint)
    except (RuntimeError, EOFError, ValueError, OSError, zipfile.BadZipFile, pickle.UnpicklingError,
            SafetensorError) as error:  # what torch, zipfile and safetensors raise for a damaged file
        raise BenchError(UNREADABLE.format(path=path, reason=_first_line(error))) from None


def _unsafe_global(error: Exception) -> str:
    """The object torch's safe loader refused (e.g. "posix.system"), as it names it."""
    import re

    match = re.search(r"GLOBAL ([\w.]+)", str(error))
    return f"the pickled object {match.group(1)} is not allowed" if match else _first_line(error)


def _first_line(error: Exception) -> str:
    text = str(error).strip()
    return text.splitlines()[0][:200] if text else type(error).__name__


def _read(path: Path, trust_checkpoint: bool) -> Any:
    import torch

    if path.suffix == ".safetensors":
        from safetensors.torch import load_file

        return load_file(str(path), device="cpu")
    if _is_torchscript(path):
        if not trust_checkpoint:
            raise BenchError(
                f"{path} is a TorchScript archive; loading it runs code from the file. Refused. "
                "Use a safetensors / plain state_dict release of the same weights, or pass "
                "--trust-checkpoint if you trust where the file came from."
            )
        return torch.jit.load(str(path), map_location="cpu").state_dict()
    if zipfile.is_zipfile(path) and not _is_torch_zip(path):
        raise BenchError(f"{path} is a zip archive, not a checkpoint; extract it and pass the checkpoint inside.")
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as error:
        from extractors.lightning_checkpoint import load_trusted, load_with_inert_configs

        if trust_checkpoint:
            return load_trusted(path)  # full unpickling; Lightning / omegaconf classes need not be installed
        try:  # Lightning checkpoints (GLoRIA): pickled configs become inert placeholders, nothing runs
            return load_with_inert_configs(path)[0]
        except (pickle.UnpicklingError, ValueError, RuntimeError, EOFError):
            pass
        raise BenchError(REFUSED.format(path=path, reason=_unsafe_global(error))) from None


def unwrap_state_dict(checkpoint: Any, *, path: str | os.PathLike, keys: tuple[str, ...] = ("state_dict",)) -> dict:
    """The tensor dict inside a checkpoint (looking under `keys`, e.g. Lightning's "state_dict")."""
    import torch

    state = checkpoint
    for key in keys:
        if isinstance(state, dict) and key in state and isinstance(state[key], dict):
            state = state[key]
    if not isinstance(state, dict):
        raise BenchError(f"{path}: expected a dict of tensors, found {type(state).__name__}.")
    not_tensors = [key for key, value in state.items() if not isinstance(value, torch.Tensor)]
    if not_tensors:
        raise BenchError(
            f"{path}: entries that are not tensors: {not_tensors[:MAX_LISTED_KEYS]}; "
            "this does not look like a state_dict for this encoder (objects that could run code are never "
            "unpickled without --trust-checkpoint, so what is left of them here is inert)."
        )
    return state


def _listed(keys: list[str]) -> str:
    shown = ", ".join(keys[:MAX_LISTED_KEYS])
    more = len(keys) - MAX_LISTED_KEYS
    return shown + (f", ... (+{more} more)" if more > 0 else "")


def strict_load(module: nn.Module, state_dict: dict[str, torch.Tensor], *, source: str) -> None:
    """Load `state_dict` into `module`, failing with every missing / unexpected / mis-shaped key listed."""
    expected = module.state_dict()
    missing = sorted(set(expected) - set(state_dict))
    unexpected = sorted(set(state_dict) - set(expected))
    mismatched = [
        f"{key} (checkpoint {tuple(state_dict[key].shape)}, model {tuple(expected[key].shape)})"
        for key in sorted(set(expected) & set(state_dict))
        if tuple(state_dict[key].shape) != tuple(expected[key].shape)
    ]
    if missing or unexpected or mismatched:
        parts = [f"{source}: the checkpoint does not match the {type(module).__name__} architecture."]
        if missing:
            parts.append(f"missing keys ({len(missing)}): {_listed(missing)}")
        if unexpected:
            parts.append(f"unexpected keys ({len(unexpected)}): {_listed(unexpected)}")
        if mismatched:
            parts.append(f"shape mismatches ({len(mismatched)}): {_listed(mismatched)}")
        parts.append("Check that the file is the one this encoder names (`bench models`).")
        raise BenchError("\n".join(parts))
    module.load_state_dict(state_dict, strict=True)


def strip_prefix(state_dict: dict[str, torch.Tensor], prefix: str) -> dict[str, torch.Tensor]:
    """Keys starting with `prefix`, with it removed (others dropped: callers pick one sub-model)."""
    return {key[len(prefix):]: value for key, value in state_dict.items() if key.startswith(prefix)}
