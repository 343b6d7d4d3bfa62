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


def installed_versions() -> dict[str, str]:
    """Every installed distribution's exact version (name -> version), with Python's and the platform's."""
    found = {"python": platform.python_version(), "platform": platform.platform()}
    for distribution in metadata.distributions():
        name = distribution.metadata["Name"]
        if name:
            found.setdefault(name, distribution.version)
    return dict(sorted(found.items()))
