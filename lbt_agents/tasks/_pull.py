"""Reference data sets: where each file comes from, its checksum, and pulling it into the cache.

A pulled set lands in ``<cache>/data`` in the layout loaders read (``math/math500.jsonl``,
``gsm8k/train.jsonl``, ...), the same as ``../shared/data``. Each file is downloaded to a temporary
file beside its target, checked (size and SHA-256) and only then renamed into place, so a file that
is present is always a verified one.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import tempfile
import urllib.error
import urllib.request
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO
from urllib.parse import urlsplit

import platformdirs

from lbt_agents.errors import ConfigError, DataError

MIRROR_ENV = "LBT_DATA_MIRROR"
"""Base URL (or local folder) laid out like a data dir; when set, every file is fetched from there."""

Progress = Callable[[str], None]
_CHUNK = 1 << 20
_TIMEOUT_S = 60.0
_WORKERS = 4


@dataclass(frozen=True)
class DataFile:
    """One published file: where it lives in a data dir, where it comes from, and how to check it."""

    path: str
    """Path inside a data dir, e.g. ``gsm8k/train.jsonl``."""
    url: str
    sha256: str
    size: int


@dataclass(frozen=True)
class DataSet:
    """A pullable reference data set."""

    name: str
    title: str
    source: str
    """Where it is published, in words (a repository or package)."""
    license: str
    files: tuple[DataFile, ...]
    requires: tuple[str, ...] = ()
    """Other sets its tasks also read; pulled with it."""

    @property
    def size(self) -> int:
        return sum(f.size for f in self.files)


_GSM8K = "https://raw.githubusercontent.com/openai/grade-school-math/3101c7d5072418e28b9008a6636bde82a006892c"
_FNEVAL = "https://raw.githubusercontent.com/ConsequentAI/fneval/a89e561466dac1d0a376aaad9d84fa366a9f8e93"
_PRM800K = "https://media.githubusercontent.com/media/openai/prm800k/main"  # a Git LFS file: the media host
_BIGBENCH = "https://raw.githubusercontent.com/google/BIG-bench/main/bigbench/benchmark_tasks"

_LMOPS = "https://raw.githubusercontent.com/microsoft/LMOps/0bdb5d71a66a44559070903c6d57604bf3d4d3d8"
"""The LMOps commit the official LbT-M3 patch applies to (its README: ``git checkout 0bdb5d7``)."""
_FALLACY = "https://raw.githubusercontent.com/causalNLP/logical-fallacy/2a3d09708122c0994279df034d867b80950700ea"

DATASETS: dict[str, DataSet] = {
    spec.name: spec
    for spec in (
        DataSet(
            name="math500",
            title="MATH-500 (the PRM800K 500-problem test split of MATH)",
            source="github openai/prm800k",
            license="MIT",
            files=(
                DataFile("math/math500.jsonl", f"{_PRM800K}/prm800k/math_splits/test.jsonl",
                         "35dc41080a3680858b27fa7e0533d2d547825316fc5dafe5d316f4ccc5a06132", 446_564),
            ),
        ),
        DataSet(
            name="math_functional",
            title="MATH() functional snapshots Oct/Nov/Dec 2023",
            source="github ConsequentAI/fneval",
            license="GPL-3.0",
            files=(
                *(
                    DataFile(f"math/functional-{month}.tar.gz", f"{_FNEVAL}/{month}.tar.gz", sha, size)
                    for month, sha, size in (
                        ("Oct-2023", "11840167a0bc05cc728dd84d039d3ec97036fb28ed5d72bf123ecaf4cfb36324", 166_623),
                        ("Nov-2023", "06b667af3759c95db161ec96a84468c6b21b69766a287bf72a1f57c60227fc9f", 166_878),
                        ("Dec-2023", "58c5cba5df0f5460f25410ffda46b4624c17bb5748f95071eac084417d422c14", 166_641),
                    )
                ),
                DataFile("math/LICENSE-functional-GPL-3.0", f"{_FNEVAL}/LICENSE",
                         "3972dc9744f6499f0f9b2dbf76696f2ae7ad8af9b23dde66d6af86c9dfb36986", 35_149),
            ),
            requires=("math500",),
        ),
        DataSet(
            name="gsm8k",
            title="GSM8K train (7473) and test (1319)",
            source="github openai/grade-school-math",
            license="MIT",
            files=(
                DataFile("gsm8k/train.jsonl", f"{_GSM8K}/grade_school_math/data/train.jsonl",
                         "17f347dc51477c50d4efb83959dbb7c56297aba886e5544ee2aaed3024813465", 4_166_206),
                DataFile("gsm8k/test.jsonl", f"{_GSM8K}/grade_school_math/data/test.jsonl",
                         "3730d312f6e3440559ace48831e51066acaca737f6eabec99bccb9e4b3c39d14", 749_738),
                DataFile("gsm8k/LICENSE", f"{_GSM8K}/LICENSE",
                         "86bbb73e855821d7c401912fd4bf82e34313e6e3b6fd6f909f2b6cc9e209a53b", 1_062),
            ),
        ),
        DataSet(
            name="bigbench",
            title="BIG-bench tasks: formal_fallacies, causal_judgment, navigate, logical_deduction 3/5/7",
            source="github google/BIG-bench (files as in the bigbench 1.0.0 package)",
            license="Apache-2.0",
            files=tuple(
                DataFile(f"bigbench/{name}.json", f"{_BIGBENCH}/{task_path}/task.json", sha, size)
                for name, task_path, sha, size in (
                    ("formal_fallacies_syllogisms_negation", "formal_fallacies_syllogisms_negation",
                     "8b1a903c4d860d07cd134df8c44d579b255653d54a83f8f3794e27313e35fa40", 9_569_470),
                    ("causal_judgment", "causal_judgment",
                     "72dea28a03226a15a6081c7bef3599569887258a90e7db923e98a8232d5d7c29", 248_520),
                    ("navigate", "navigate",
                     "e076d286bb54c9304de99c24a8d3ddd749be78c12af5d58315195b194c8efa18", 308_381),
                    ("logical_deduction_three_objects", "logical_deduction/three_objects",
                     "5e3f4a7569cb70bb1469374d3d34fb7883445a9d5743e1a81fd8dcdaf6fcb40f", 120_606),
                    ("logical_deduction_five_objects", "logical_deduction/five_objects",
                     "552dec4d5067bdbe033e78e80fdf1f5a8061d17b385379b8ec5104fa17d07918", 305_889),
                    ("logical_deduction_seven_objects", "logical_deduction/seven_objects",
                     "5e24146d600b1b2e2d8958e23851e7c958b1a7644a2540fa0de7fa3e51a68cf7", 579_048),
                )
            ),
        ),
        DataSet(
            name="paper-m3",
            title="LbT-M3 tasks: Liar (LMOps/ProTeGi files, 3681 train / 461 test) and Logical Fallacy "
            "(Logic + LogicClimate CSVs)",
            source="github microsoft/LMOps (prompt_optimization/data/liar), github causalNLP/logical-fallacy (data/)",
            license="Liar: MIT (LMOps repo; LIAR, Wang 2017); Logical Fallacy: none stated (Jin et al. 2022)",
            files=(
                DataFile("liar/train.jsonl", f"{_LMOPS}/prompt_optimization/data/liar/train.jsonl",
                         "573ac065e16609a4ab0ae72751b2d3918ec6515dbb9a3adae1f244afe54ca989", 864_567),
                DataFile("liar/test.jsonl", f"{_LMOPS}/prompt_optimization/data/liar/test.jsonl",
                         "c4400499e7d71cb57463e3f8d093962deb50a9e8f22fa377cad3c236eacfc8c3", 107_485),
                DataFile("liar/LICENSE-LMOps", f"{_LMOPS}/LICENSE",
                         "c2cfccb812fe482101a8f04597dfc5a9991a6b2748266c47ac91b6a5aae15383", 1_141),
                *(
                    DataFile(f"logical_fallacy/{name}.csv", f"{_FALLACY}/data/{name}.csv", sha, size)
                    for name, sha, size in (
                        ("edu_train", "0c6377dbf744ba85e60102eb9842cc770f385afcb2724f607e8e8a99f5d9545c", 633_843),
                        ("edu_dev", "5c567eb12e604271d0ec10e456c5c0bedcf01bd8a2f56d84a5ca88744ece36af", 101_869),
                        ("edu_test", "47f6b86ec6c5256e9db97844f86684dc1fdc72c593e14db230e532098f668534", 104_740),
                        ("climate_train", "31daeb6476f3db3b864f6f3a0a40a689ebd07310636e4b943199d3b7bc50d841", 274_475),
                        ("climate_dev", "cee102370d57d12118483bd70e4bdca9ce60de934f0668c4f037dee8ebbaf701", 96_522),
                        ("climate_test", "16f296fb38e594f92512a8f05e6b8c526a978fafe9fce8f924faaf7ad7d3082a", 62_406),
                    )
                ),
            ),
        ),
    )
}


def data_cache_dir(cache_dir: Path | None = None) -> Path:
    """``<cache>/data``: ``cache_dir``, else ``$LBT_CACHE_DIR``, else the user cache dir of lbt-agents."""
    if cache_dir is None:
        env = os.environ.get("LBT_CACHE_DIR")
        cache_dir = Path(env) if env else Path(platformdirs.user_cache_dir("lbt-agents"))
    return Path(cache_dir).expanduser() / "data"


def get_dataset(name: str) -> DataSet:
    try:
        return DATASETS[name]
    except KeyError:
        raise ConfigError(f"unknown data set {name!r}; known: {', '.join(DATASETS)} (or 'all')") from None


def dataset_for_file(relative: str) -> DataSet | None:
    """The registered set that holds ``relative`` (a path inside a data dir), if any."""
    for spec in DATASETS.values():
        if any(f.path == relative for f in spec.files):
            return spec
    return None


def dataset_present(spec: DataSet, folder: Path) -> bool:
    """Whether every file of ``spec`` is in ``folder`` with its published size (checksums are checked on pull)."""
    return all(_has_size(folder / f.path, f.size) for f in spec.files)


def source_url(file: DataFile, mirror: str | None = None) -> str:
    """Where ``file`` is fetched from: ``mirror`` (else ``$LBT_DATA_MIRROR``) + its path, else its own URL."""
    mirror = mirror if mirror is not None else os.environ.get(MIRROR_ENV) or None
    if not mirror:
        return file.url
    if not urlsplit(mirror).scheme:
        mirror = Path(mirror).expanduser().resolve().as_uri()
    return f"{mirror.rstrip('/')}/{file.path}"


def pull_data(
    name: str,
    *,
    cache_dir: Path | None = None,
    mirror: str | None = None,
    progress: Progress | None = None,
) -> Path:
    """Download, verify and store data set ``name`` (and the sets it requires); returns the data folder.

    Files already present with the right checksum are kept; nothing else in the folder is touched.
    A file whose download fails or does not match its checksum is not stored, and :class:`DataError`
    says why (the set's other files, each verified, stay).
    """
    say = progress or (lambda _msg: None)
    folder = data_cache_dir(cache_dir)
    specs = _with_requirements(get_dataset(name))
    todo = [(spec, f) for spec in specs for f in spec.files if not _verified(folder / f.path, f)]
    if not todo:
        return folder
    parents = {p for _, f in todo for p in (folder / f.path).parents}
    new_folders = sorted((p for p in parents if not p.exists()), key=lambda p: len(p.parts), reverse=True)
    with ThreadPoolExecutor(max_workers=min(_WORKERS, len(todo))) as pool:
        futures = [pool.submit(_fetch, spec, f, folder / f.path, source_url(f, mirror), say) for spec, f in todo]
    errors = [fut.exception() for fut in futures if fut.exception() is not None]
    if errors:
        for new in new_folders:  # leave no empty folders behind; kept where a file did land
            with contextlib.suppress(OSError):
                new.rmdir()
        raise errors[0]
    return folder


def _with_requirements(spec: DataSet) -> list[DataSet]:
    out: list[DataSet] = []
    for dep in spec.requires:
        out += [s for s in _with_requirements(get_dataset(dep)) if s not in out]
    return [*out, spec] if spec not in out else out


def _fetch(spec: DataSet, file: DataFile, target: Path, url: str, say: Progress) -> None:
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp_name = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=".part")
    except OSError as exc:
        raise DataError(f"data set {spec.name!r}: cannot write into {target.parent} ({_one_line(exc)})") from None
    tmp = Path(tmp_name)
    try:
        with os.fdopen(fd, "wb") as out:
            digest, size = _download(spec, file, url, out)
            out.flush()
            os.fsync(out.fileno())
        if size != file.size or digest != file.sha256:
            raise DataError(
                f"data set {spec.name!r}: {file.path} from {url} does not match its checksum "
                f"(got {size} bytes, sha256 {digest[:12]}...; expected {file.size} bytes, {file.sha256[:12]}...); "
                "nothing stored"
            )
        os.replace(tmp, target)
        say(f"{file.path}: {size / 1e6:.1f} MB, sha256 ok")
    finally:
        tmp.unlink(missing_ok=True)


def _download(spec: DataSet, file: DataFile, url: str, out: BinaryIO) -> tuple[str, int]:
    digest, size = hashlib.sha256(), 0
    request = urllib.request.Request(url, headers={"User-Agent": "lbt-agents"})
    try:
        with urllib.request.urlopen(request, timeout=_TIMEOUT_S) as response:
            while chunk := response.read(_CHUNK):
                size += len(chunk)
                if size > file.size:  # never store (or keep reading) more than the published file
                    break
                digest.update(chunk)
                out.write(chunk)
    except urllib.error.HTTPError as exc:
        raise DataError(f"data set {spec.name!r}: {url} answered HTTP {exc.code} {_one_line(exc.reason)}") from None
    except (urllib.error.URLError, OSError, ValueError) as exc:
        reason = exc.reason if isinstance(exc, urllib.error.URLError) else exc
        raise DataError(
            f"data set {spec.name!r}: cannot download {url} ({_one_line(reason)}); "
            f"`lbt data pull` needs network access, or set {MIRROR_ENV} to a folder or URL that holds the files"
        ) from None
    return digest.hexdigest(), size


def _verified(path: Path, file: DataFile) -> bool:
    if not _has_size(path, file.size):
        return False
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        while chunk := fh.read(_CHUNK):
            digest.update(chunk)
    return digest.hexdigest() == file.sha256


def _has_size(path: Path, size: int) -> bool:
    try:
        return path.is_file() and path.stat().st_size == size
    except OSError:
        return False


def _one_line(value: object) -> str:
    text = " ".join(str(value).split())
    return text or type(value).__name__
