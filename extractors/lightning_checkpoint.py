"""Read a PyTorch Lightning checkpoint's tensors safely, without the libraries its pickled config needs.

A Lightning checkpoint such as GLoRIA's `chexpert_resnet50.ckpt` (pytorch-lightning 1.1, omegaconf 2.0)
pickles, next to its `state_dict`, the training config (`hyper_parameters`, an OmegaConf `DictConfig`, and
`hparams_type`, its class) and callback states keyed by callback classes. `torch.load(weights_only=True)`
refuses those globals; `weights_only=False` would run arbitrary code and needs omegaconf and
pytorch_lightning installed.

`load_with_inert_configs` loads the file with `torch.load(weights_only=True)` after allow-listing each such
global under its own name as an inert placeholder class: the placeholder records what it is given and runs
nothing from the file. Only globals from configuration and training-loop libraries (`CONFIG_MODULES`) are
replaced this way, plus the plain containers omegaconf 2.0 pickles inside every config node
(`SAFE_CONTAINERS`: `collections.defaultdict`, allowed as itself); any other global (e.g. `os.system`) still
refuses the file, naming it.

`load_trusted` is the `--trust-checkpoint` path: a full unpickling (it can run code from the file), in which a
class from a configuration library that is not installed (pytorch_lightning, omegaconf) becomes an inert
placeholder instead of failing, so reading the tensors never needs those libraries.
"""

from __future__ import annotations

import collections
import importlib
import os
import pickle
from pathlib import Path

import torch

CONFIG_MODULES = ("omegaconf", "pytorch_lightning", "lightning", "lightning_fabric", "typing", "argparse", "builtins")
"""Top-level modules whose pickled objects may be replaced by inert placeholders (configs, callbacks)."""


SAFE_CONTAINERS = {"collections.defaultdict": collections.defaultdict, "collections.OrderedDict": collections.OrderedDict}
"""Standard containers a config pickle holds (omegaconf 2.0's `resolver_cache` is a defaultdict), kept as-is."""


class InertPickledObject:
    """Placeholder for a pickled configuration object: keeps its arguments and state, does nothing else."""

    pickled_name = "?"

    def __new__(cls, *args, **kwargs):
        return object.__new__(cls)

    def __init__(self, *args, **kwargs):
        self.args = args

    def __setstate__(self, state):
        self.state = state

    def __repr__(self) -> str:
        return f"<inert placeholder for {self.pickled_name}>"


def placeholder_for(name: str) -> type:
    """A distinct placeholder class for the pickled global `name` (distinct so classes used as keys stay apart)."""
    return type(f"Inert[{name}]", (InertPickledObject,), {"pickled_name": name})


def unsafe_globals(path: str | os.PathLike) -> list[str]:
    """The globals in a checkpoint that `torch.load(weights_only=True)` does not allow by default."""
    return list(torch.serialization.get_unsafe_globals_in_checkpoint(str(path)))


def load_with_inert_configs(path: str | os.PathLike):
    """`torch.load(weights_only=True)` of `path` with configuration globals replaced by inert placeholders.

    Returns (content, replaced global names). Raises `pickle.UnpicklingError` naming the globals that are not
    from `CONFIG_MODULES` (those are never replaced: the caller asks the user for the trust flag).
    """
    path = Path(path)
    names = unsafe_globals(path)
    others = [name for name in names if name.split(".")[0] not in CONFIG_MODULES and name not in SAFE_CONTAINERS]
    if others:
        raise pickle.UnpicklingError(f"globals outside configuration libraries: {others}")
    allowed = [
        (SAFE_CONTAINERS[name], name) if name in SAFE_CONTAINERS else (placeholder_for(name), name) for name in names
    ]
    with torch.serialization.safe_globals(allowed):
        content = torch.load(path, map_location="cpu", weights_only=True)
    return content, names


class _TolerantUnpickler(pickle.Unpickler):
    """A full unpickler in which a missing configuration-library class becomes an inert placeholder."""

    def find_class(self, module: str, name: str):
        try:
            return super().find_class(module, name)
        except (ImportError, AttributeError):
            if module.split(".")[0] not in CONFIG_MODULES:
                raise
            return placeholder_for(f"{module}.{name}")


class _TolerantPickleModule:
    """What `torch.load(pickle_module=...)` needs: pickle with a tolerant `Unpickler`."""

    Unpickler = _TolerantUnpickler
    load = staticmethod(pickle.load)
    __name__ = "pickle"

    def __getattr__(self, name):
        return getattr(pickle, name)


def load_trusted(path: str | os.PathLike):
    """`torch.load(weights_only=False)` of a trusted file, without needing pytorch_lightning or omegaconf."""
    importlib.invalidate_caches()
    return torch.load(Path(path), map_location="cpu", weights_only=False, pickle_module=_TolerantPickleModule())
