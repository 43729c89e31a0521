"""The LbT-M3 tasks (liar, logical_fallacy) on small fixtures in their sources' file formats; `lbt data pull paper-m3`."""

from __future__ import annotations

import csv
import hashlib
import io
import json
from pathlib import Path

import pytest

from lbt_agents.cli import main
from lbt_agents.config import RunConfig, TaskConfig
from lbt_agents.errors import ConfigError, DataError
from lbt_agents.graphs.m3_refinement import inputs
from lbt_agents.tasks import DATASETS, DataFile, DataSet, load_problems, load_task
from lbt_agents.tasks.classify import FALLACY_INSTRUCTION, LIAR_INSTRUCTION

LIAR_ROWS = [
    {"label": i % 2, "text": f"Statement: claim {i}.\nJob title: Senator\nState: Texas\nParty: republican\nContext: a debate"}
    for i in range(10)
]
LONG = "A " + "very " * 200 + "long article."


def liar_jsonl(rows) -> bytes:
    return "".join(json.dumps(r) + "\n" for r in rows).encode()


def edu_csv(rows: list[tuple[str, str]]) -> bytes:
    """The Logic CSVs: an index column, pandas' 'Unnamed' columns, source_article, updated_label, masked_articles."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(["", "Unnamed: 0", "Unnamed: 0.1", "source_article", "updated_label", "masked_articles"])
    for i, (text, label) in enumerate(rows):
        writer.writerow([i, i, i, text, label, text.replace("claim", "MSK<0>")])
    return out.getvalue().encode()


def climate_csv(rows: list[tuple[str, str]]) -> bytes:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(["", "original_url", "source_article", "logical_fallacies"])
    for i, (text, label) in enumerate(rows):
        writer.writerow([i, f"https://example.org/{i}", text, label])
    return out.getvalue().encode()


FALLACY_FILES = {
    "edu_train": edu_csv([("All cats are mean: mine scratched me.", "faulty generalization"),
                          ('He said "expect more,\npay less".', "appeal to emotion"), (LONG, "faulty generalization")]),
    "edu_dev": edu_csv([("Dev one.", "ad populum")]),
    "edu_test": edu_csv([("Test one, about everyone.", "faulty generalization")]),
    "climate_train": climate_csv([("Winter was cold, so no warming.", "faulty generalization, intentional")]),
    "climate_dev": climate_csv([("Climate dev.", "fallacy of credibility")]),
    "climate_test": climate_csv([("Climate test.", "intentional")]),
}


def fixture_files() -> dict[str, bytes]:
    files = {"liar/train.jsonl": liar_jsonl(LIAR_ROWS), "liar/test.jsonl": liar_jsonl(LIAR_ROWS[:4]),
             "liar/LICENSE-LMOps": b"MIT License\n"}
    files.update({f"logical_fallacy/{name}.csv": data for name, data in FALLACY_FILES.items()})
    return files


@pytest.fixture
def data_dir(tmp_path: Path) -> Path:
    for rel, data in fixture_files().items():
        (tmp_path / "data" / rel).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / "data" / rel).write_bytes(data)
    return tmp_path / "data"


@pytest.fixture
def clean_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A private cache, no data dir set, a working dir with no ../shared beside it."""
    (tmp_path / "work").mkdir()
    monkeypatch.chdir(tmp_path / "work")
    monkeypatch.setenv("LBT_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.delenv("LBT_DATA_DIR", raising=False)
    monkeypatch.delenv("LBT_DATA_MIRROR", raising=False)
    return tmp_path / "cache"


def test_liar_reads_the_lmops_files(data_dir: Path) -> None:
    train = load_problems(TaskConfig(name="liar", split="train", data_dir=data_dir))
    assert [p["answer"] for p in train] == ["Yes" if r["label"] else "No" for r in LIAR_ROWS]
    first = train[0]
    assert first["id"] == "liar/train/0" and first["kind"] == "label"
    assert first["meta"] == {"choices": ["Yes", "No"], "instruction": LIAR_INSTRUCTION, "text": LIAR_ROWS[0]["text"]}
    assert first["question"] == f"{LIAR_INSTRUCTION}\n\nText: {LIAR_ROWS[0]['text']}\nOptions: Yes, No"
    assert len(load_problems(TaskConfig(name="liar", split="test", data_dir=data_dir))) == 4
    items = load_task(TaskConfig(name="liar", split="test", data_dir=data_dir, eps_per_tp=2))
    assert all(len(it["eps"]) == 2 and it["tp"] not in it["eps"] for it in items)


def test_logical_fallacy_reads_the_causalnlp_csvs_as_the_patch_does(data_dir: Path) -> None:
    train = load_problems(TaskConfig(name="logical_fallacy", split="train", data_dir=data_dir))
    assert [p["answer"] for p in train] == ["Yes", "No", "Yes", "Yes"]  # edu then climate; 'faulty generalization' in label
    assert train[1]["meta"]["text"] == 'He said "expect more,\npay less".'  # quoted newline kept
    assert train[2]["meta"]["text"] == LONG[:700] and len(LONG) > 700
    assert train[0]["meta"]["instruction"] == FALLACY_INSTRUCTION
    test = load_problems(TaskConfig(name="logical_fallacy", split="test", data_dir=data_dir))
    assert [p["meta"]["text"] for p in test] == ["Test one, about everyone.", "Climate test.", "Dev one.", "Climate dev."]
    edu = load_problems(TaskConfig(name="logical_fallacy", split="test", data_dir=data_dir, options={"subset": "edu"}))
    assert [p["meta"]["text"] for p in edu] == ["Test one, about everyone.", "Dev one."]
    with pytest.raises(ConfigError, match="option subset must be one of all, edu, climate"):
        load_task(TaskConfig(name="logical_fallacy", data_dir=data_dir, options={"subset": "nope"}))


def test_bad_files_are_one_clear_error(data_dir: Path, clean_env: Path) -> None:
    (data_dir / "liar" / "train.jsonl").write_text('{"label": 2, "text": "x"}\n')
    with pytest.raises(DataError, match=r"train.jsonl:1: not a Liar row"):
        load_task(TaskConfig(name="liar", split="train", data_dir=data_dir))
    (data_dir / "logical_fallacy" / "edu_train.csv").write_text("a,b\n1,2\n")
    with pytest.raises(DataError, match="not a Logical Fallacy CSV"):
        load_task(TaskConfig(name="logical_fallacy", split="train", data_dir=data_dir))
    with pytest.raises(DataError, match=r"data file not found: .*liar/test.jsonl \(run `lbt data pull paper-m3`"):
        load_task(TaskConfig(name="liar"))


def test_paper_m3_inputs_check_the_task(data_dir: Path) -> None:
    cfg = RunConfig(profile="paper", task=TaskConfig(name="liar", data_dir=data_dir))
    out = inputs(cfg)
    assert len(out["train"]) == 10 and len(out["test"]) == 4  # test_limit null: the whole test split
    with pytest.raises(ConfigError, match=r"m3.init=balanced: 1 \+ 2 exemplars need more training problems "
                                          r"\(the split has 3 'Yes' and 1 others\)"):
        inputs(RunConfig(profile="paper", task=TaskConfig(name="logical_fallacy", data_dir=data_dir), m3={"k": 3}))


def test_a_task_the_paper_prompts_cannot_pose_is_refused_before_any_call(data_dir: Path) -> None:
    bigbench = {"examples": [{"input": f"Argument {i}.", "target_scores": {"valid": i % 2, "invalid": 1 - i % 2}}
                             for i in range(40)]}
    (data_dir / "bigbench").mkdir()
    (data_dir / "bigbench" / "causal_judgment.json").write_text(json.dumps(bigbench))
    cfg = RunConfig(profile="paper", task=TaskConfig(name="causal_judgment", data_dir=data_dir))
    with pytest.raises(ConfigError, match=r"m3.prompt_set=paper needs a Yes/No label task .* choices \['valid', "
                                          r"'invalid'\] and no instruction"):
        inputs(cfg)


def _run(capsys, *argv: str) -> tuple[int, str, str]:
    code = 0
    try:
        main(list(argv))
    except SystemExit as exc:
        code = int(exc.code or 0)
    out = capsys.readouterr()
    return code, out.out, out.err


def test_pull_paper_m3_from_a_mirror_then_load_from_the_cache(capsys, tmp_path: Path, data_dir: Path,
                                                              clean_env: Path, monkeypatch) -> None:
    real = DATASETS["paper-m3"]
    files = fixture_files()
    assert sorted(f.path for f in real.files) == sorted(files)  # the fixtures stand for every published file
    fixture = DataSet(real.name, real.title, real.source, real.license, tuple(
        DataFile(f.path, f.url, hashlib.sha256(files[f.path]).hexdigest(), len(files[f.path])) for f in real.files))
    monkeypatch.setitem(DATASETS, "paper-m3", fixture)
    code, out, err = _run(capsys, "data", "pull", "paper-m3", "--mirror", str(data_dir))
    assert code == 0, err
    assert out.strip() == f"paper-m3: {clean_env / 'data'}"
    assert len(load_problems(TaskConfig(name="liar", split="train"))) == 10  # no data dir given: the cache
    assert len(load_problems(TaskConfig(name="logical_fallacy", split="test"))) == 4


def test_a_checksum_mismatch_is_one_line_and_stores_nothing(capsys, data_dir: Path, clean_env: Path) -> None:
    code, out, err = _run(capsys, "data", "pull", "paper-m3", "--mirror", str(data_dir))  # fixtures != the real files
    assert code == 2 and out == ""
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: data set 'paper-m3': ") and "checksum" in lines[0]
    assert not any(p.is_file() for p in (clean_env / "data").rglob("*")) if (clean_env / "data").exists() else True
