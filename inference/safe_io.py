"""Model files that load without executing code.

Learned state is JSON (parameters, vocabularies, class lists) beside a compressed NumPy archive
of numeric arrays read with `allow_pickle=False`: neither can carry code, and every field is
checked before use. Older model directories
hold skops files; those load through skops restricted to an allow-list of types, so a tampered
or foreign file that asks for any other type is refused before anything in it is instantiated.
skops is imported only then: importing it builds scikit-learn's estimator list, which imports
every scikit-learn module and torch (seconds of start-up and hundreds of MB).
"""

from __future__ import annotations

import json
import zipfile
from pathlib import Path
from typing import Any

import numpy as np

ALLOWED_PREFIXES = ("sklearn.", "numpy.", "scipy.sparse.", "builtins.", "collections.")
STATE_JSON = "state.json"
STATE_ARRAYS = "state.npz"


class ModelFileError(ValueError):
    """A model file that is missing, malformed or not what it claims to be."""


class UnsafeModelFileError(ModelFileError):
    pass


def save_state(path: Path, meta: dict, arrays: dict[str, np.ndarray]) -> None:
    """Write `meta` as JSON and the numeric `arrays` as a compressed .npz into directory `path`."""
    path = Path(path)
    path.mkdir(parents=True, exist_ok=True)
    (path / STATE_JSON).write_text(json.dumps(meta, ensure_ascii=False), encoding="utf-8")
    with (path / STATE_ARRAYS).open("wb") as fh:
        np.savez_compressed(fh, **{k: np.asarray(v) for k, v in arrays.items()})


def load_state(path: Path, required: tuple[str, ...] = ()) -> tuple[dict, dict[str, np.ndarray]]:
    """Read what `save_state` wrote; a malformed file, a non-numeric or missing array is a
    ModelFileError. Object arrays (which would need pickle) are refused by NumPy itself."""
    path = Path(path)
    try:
        meta = json.loads((path / STATE_JSON).read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ModelFileError(f"{path / STATE_JSON}: not a readable JSON state file ({exc})") from exc
    if not isinstance(meta, dict):
        raise ModelFileError(f"{path / STATE_JSON}: expected a JSON object")
    try:
        with np.load(path / STATE_ARRAYS, allow_pickle=False) as archive:
            arrays = {k: archive[k] for k in archive.files}
    except (OSError, ValueError, EOFError, zipfile.BadZipFile) as exc:
        raise ModelFileError(f"{path / STATE_ARRAYS}: not a readable array archive ({exc})") from exc
    odd = [k for k, v in arrays.items() if v.dtype.kind not in "fiub"]
    if odd:
        raise ModelFileError(f"{path / STATE_ARRAYS}: arrays {odd} are not numeric")
    missing = [k for k in required if k not in arrays]
    if missing:
        raise ModelFileError(f"{path / STATE_ARRAYS}: missing arrays {missing}")
    return meta, arrays


def save_skops(obj: Any, path: Path) -> None:
    import skops.io as sio

    sio.dump(obj, path, compression=zipfile.ZIP_DEFLATED, compresslevel=9)


def load_skops(path: Path) -> Any:
    """Load a skops file whose every type is scikit-learn/numpy/scipy; refuse anything else."""
    import skops.io as sio

    path = Path(path)
    try:
        untrusted = sio.get_untrusted_types(file=path)
    except Exception as exc:  # a file that skops cannot even parse is not a model file
        raise UnsafeModelFileError(f"{path}: not a valid skops model file ({exc})") from exc
    refused = [t for t in untrusted if not t.startswith(ALLOWED_PREFIXES)]
    if refused:
        raise UnsafeModelFileError(f"{path}: refuses to load types outside scikit-learn/numpy/scipy: {refused}")
    return sio.load(path, trusted=untrusted)
