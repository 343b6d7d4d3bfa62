"""Versions of the packages that shape a result (recorded in every store and run)."""

from __future__ import annotations

import contextlib
import platform
from importlib import metadata

PACKAGES = ("cxr-fairbench", "torch", "numpy", "scikit-learn", "polars", "pyarrow", "open_clip_torch", "transformers",
            "timm", "h5py")


def package_versions(packages=PACKAGES) -> dict[str, str]:
    """{"python": ..., package: version} for the installed ones among `packages`."""
    found = {"python": platform.python_version()}
    for name in packages:
        with contextlib.suppress(metadata.PackageNotFoundError):
            found[name] = metadata.version(name)
    return found
