"""Model files that load without executing code: skops restricted to an allow-list of types.

A tampered or foreign file that asks for any other type is refused with a clear error before
anything in it is instantiated.
"""

from __future__ import annotations

import zipfile
from pathlib import Path
from typing import Any

import skops.io as sio

ALLOWED_PREFIXES = ("sklearn.", "numpy.", "scipy.sparse.", "builtins.", "collections.")


class UnsafeModelFileError(ValueError):
    pass


def save_skops(obj: Any, path: Path) -> None:
    sio.dump(obj, path, compression=zipfile.ZIP_DEFLATED, compresslevel=9)


def load_skops(path: Path) -> Any:
    """Load a skops file whose every type is scikit-learn/numpy/scipy; refuse anything else."""
    path = Path(path)
    try:
        untrusted = sio.get_untrusted_types(file=path)
    except Exception as exc:  # a file that skops cannot even parse is not a model file
        raise UnsafeModelFileError(f"{path}: not a valid skops model file ({exc})") from exc
    refused = [t for t in untrusted if not t.startswith(ALLOWED_PREFIXES)]
    if refused:
        raise UnsafeModelFileError(f"{path}: refuses to load types outside scikit-learn/numpy/scipy: {refused}")
    return sio.load(path, trusted=untrusted)
