"""One runner for every teaching graph: ``run_graph(builder, cfg)``; ``lbt run MODULE:BUILDER``.

A run gets a folder (``<output_dir>/<run_id>/``), its config saved, the data
loaded and checked before any server starts, embedded vLLM servers where agents
ask for them, an endpoint check, the call cache, a :class:`Classroom` as the
graph's runtime context, a checkpointer (``--resume RUN_ID`` continues from the
last checkpoint), progress, and the final state.

A builder is ``builder(cfg: RunConfig) -> CompiledStateGraph`` (or a
``"module:attribute"`` string naming one).  Its inputs are ``inputs(cfg)`` when
given, else the module's own ``inputs(cfg)`` function, else
``{"items": load_task(cfg.task)}``.
"""

from __future__ import annotations

import asyncio
import contextlib
import importlib
import json
import warnings
from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from langchain_core.language_models import BaseChatModel

from lbt_agents.agents import Examiner
from lbt_agents.budget import Budget, BudgetExhausted, Spent, UsageFile, stop_message, write_stop_summary
from lbt_agents.classroom import Classroom
from lbt_agents.config import RunConfig
from lbt_agents.errors import ConfigError
from lbt_agents.runs import (
    RunDir,
    Stopwatch,
    call_cache,
    check_checkpointer,
    checkpointer,
    embedded_endpoints,
    open_run,
    write_atomic,
)

# When a run stops (a budget, a failed task, Ctrl-C) LangGraph drops the step's tasks that never started;
# Python then warns about each one's coroutine.  Nothing was lost (they run on resume), so no warning.
warnings.filterwarnings("ignore", message="coroutine 'arun_with_retry' was never awaited", category=RuntimeWarning)

Builder = Callable[[RunConfig], Any]
Inputs = Callable[[RunConfig], dict[str, Any]]
UpdateHook = Callable[[dict[str, Any], Path], None]
"""Called with each top-level node update and the run's folder."""


@dataclass(frozen=True)
class GraphRun:
    """A finished run: its folder, config, graph, final state and classroom (with its usage meter)."""

    run_dir: Path
    cfg: RunConfig
    graph: Any
    state: dict[str, Any]
    classroom: Classroom
    inputs: dict[str, Any]
    wall_s: float


def resolve_builder(target: str | Builder) -> tuple[Builder, Any]:
    """``"module:attribute"`` (or a callable) → the builder and its module."""
    if callable(target):
        return target, importlib.import_module(target.__module__)
    module_name, sep, attr = str(target).partition(":")
    if not sep or not module_name or not attr:
        raise ConfigError(f"graph {target!r} is not MODULE:BUILDER (for example lbt_agents.graphs.m1_scoring:from_config)")
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        raise ConfigError(f"cannot import graph module {module_name!r}: {exc}") from None
    builder = getattr(module, attr, None)
    if not callable(builder):
        raise ConfigError(f"graph module {module_name!r} has no builder {attr!r}")
    return builder, module


def examiner_for(cfg: RunConfig) -> Examiner:
    """The examiner a run config asks for (its math grading rules and bound)."""
    from lbt_agents.grading.math import MathGrader
    from lbt_agents.grading.paper import PaperMathGrader

    math = PaperMathGrader() if cfg.grading.math == "paper" else MathGrader(timeout_s=cfg.grading.timeout_s)
    return Examiner(graders={"math": math})


def needs_prefill(cfg: RunConfig) -> bool:
    """Whether the run's prompts end with an assistant turn for the endpoints to continue."""
    from lbt_agents.agents._layouts import layout
    from lbt_agents.tasks import _TASKS  # importing the package registers the built-in tasks

    kind = getattr(_TASKS.get(cfg.task.name), "kind", None)
    return kind is not None and layout(cfg.classroom.prompts, kind).prefill


def default_inputs(cfg: RunConfig) -> dict[str, Any]:
    """The task's teaching items: ``{"items": load_task(cfg.task)}``."""
    from lbt_agents.tasks import load_task

    return {"items": load_task(cfg.task)}


def plan_graph(builder: str | Builder, cfg: RunConfig, *, inputs: Inputs | None = None) -> Any:
    """What a run of ``builder`` over ``cfg`` would ask of its models: the graph module's
    ``plan(cfg, inputs)`` (a :class:`lbt_agents.plan.Plan`), or None when it declares none.
    Loads the task's data; calls no model, starts no server, writes nothing."""
    _, module = resolve_builder(builder)
    planner = getattr(module, "plan", None)
    if not callable(planner):
        return None
    load = inputs or getattr(module, "inputs", None) or default_inputs
    return planner(cfg, load(cfg))


def run_graph(builder: str | Builder, cfg: RunConfig, **kwargs: Any) -> GraphRun:
    """Run (or resume) a graph to the end; see :func:`arun_graph`."""
    return asyncio.run(arun_graph(builder, cfg, **kwargs))


@dataclass
class Session:
    """An open run: its folder, live config (embedded endpoints resolved), inputs and classroom."""

    cfg: RunConfig
    run: RunDir
    data: dict[str, Any]
    classroom: Classroom
    resumed: bool
    clock: Stopwatch
    budget: Budget
    usage: UsageFile


@contextlib.asynccontextmanager
async def open_session(
    cfg: RunConfig,
    *,
    load: Inputs,
    resume: str | None = None,
    models: Mapping[str, BaseChatModel | Sequence[BaseChatModel]] | None = None,
    prefix: str = "run",
    preflight: Callable[[RunConfig], Any] | None = None,
) -> AsyncIterator[Session]:
    """A run's folder (locked), data, embedded servers, endpoint check, call cache and classroom,
    all closed on exit.  ``preflight(cfg)`` (and the checkpointer's own check) runs before any
    server starts or any model is asked."""
    from lbt_agents.sandbox import set_default_isolation

    clock = Stopwatch()
    set_default_isolation(cfg.sandbox.isolation)  # a code task checks its sandbox when it loads
    with contextlib.ExitStack() as held:  # the run's lock (runs.lock_run): one process per run directory
        if resume is None:
            data = load(cfg)  # bad data or sizes fail before anything is written
            cfg, run = held.enter_context(open_run(cfg, prefix=prefix))
        else:
            cfg, run = held.enter_context(open_run(cfg, resume=resume, prefix=prefix))
            data = load(cfg)
        await check_checkpointer(cfg.checkpoint)
        if preflight is not None:
            preflight(cfg)
        with embedded_endpoints(cfg, run.logs) if not models else contextlib.nullcontext(cfg) as live:
            if not models:
                from lbt_agents.llm import check_endpoints, check_prefill

                await check_endpoints(live.classroom.agents())
                if needs_prefill(live):
                    await check_prefill(live.classroom.agents())
            cache = call_cache(live, run)
            budget = Budget(live.budget.max_requests, live.budget.max_tokens, Spent.load(run.path))
            usage = UsageFile(budget, run.path)
            classroom = None
            try:
                classroom = Classroom.from_config(live, models=models, cache=cache, budget=budget)
                yield Session(live, run, data, classroom, resume is not None, clock, budget, usage)
            finally:
                usage.save()  # finished or not: what was spent counts on resume
                if classroom is not None:  # failed or not: this loop's HTTP connections close
                    await classroom.aclose()
                if cache is not None:
                    cache.close()


async def arun_graph(
    builder: str | Builder,
    cfg: RunConfig,
    *,
    inputs: Inputs | None = None,
    resume: str | None = None,
    models: Mapping[str, BaseChatModel | Sequence[BaseChatModel]] | None = None,
    prefix: str = "run",
    progress: Callable[[RunConfig, dict[str, Any]], Any] | None = None,
    on_update: UpdateHook | None = None,
    recursion_limit: int = 10_000,
) -> GraphRun:
    """Run the graph that ``builder(cfg)`` returns over ``cfg``'s classroom.

    ``models`` maps agent names to chat models (offline runs, custom providers);
    other agents talk to their endpoints, and ``base_url: embedded`` agents to an
    embedded vLLM classroom started (and stopped) here.  ``resume=RUN_ID``
    continues a stopped run: finished work is not requested again.
    ``progress(cfg, inputs)`` makes a display (a context manager with
    ``update(updates)``); it and ``on_update`` see every node's update as it lands.
    """
    build, module = resolve_builder(builder)
    load = inputs or getattr(module, "inputs", None) or default_inputs
    async with open_session(cfg, load=load, resume=resume, models=models, prefix=prefix) as session:
        live, run, data, budget = session.cfg, session.run, session.data, session.budget
        graph = build(live)
        tracker = progress(live, data) if progress is not None else None
        if tracker is not None and hasattr(tracker, "watch"):
            tracker.watch(budget)  # requests against the plan: the ETA
        async with checkpointer(live.checkpoint, run) as saver:
            runnable = graph.copy(update={"checkpointer": saver}) if saver is not None else graph
            config = {"configurable": {"thread_id": run.run_id}, "max_concurrency": live.max_concurrency,
                      "recursion_limit": recursion_limit}
            started = saver is not None and bool((await runnable.aget_state(config)).values)
            hook = (lambda update: on_update(update, run.path)) if on_update is not None else None
            try:
                with tracker if tracker is not None else contextlib.nullcontext():
                    final = await drive(runnable, None if (resume and started) else data, config, session.classroom,
                                        tracker.update if tracker is not None else None, hook, session.usage.save_soon)
            except BudgetExhausted:
                finished = await finished_tasks(runnable, config) if saver is not None else {}
                session.usage.save()
                write_stop_summary(run.path, getattr(graph, "name", None), budget, session.classroom.meter.as_dict(),
                                   finished, session.clock.seconds)
                raise BudgetExhausted(stop_message(run.run_id, budget)) from None
            if saver is not None:
                final = (await runnable.aget_state(config)).values
    return GraphRun(run.path, live, graph, dict(final), session.classroom, data, session.clock.seconds)


async def drive(graph: Any, inputs: Any, config: dict[str, Any], classroom: Classroom,
                on_updates: Callable[[dict[str, Any]], None] | None = None,
                on_update: Callable[[dict[str, Any]], None] | None = None,
                each_update: Callable[[], None] = lambda: None) -> dict[str, Any]:
    """Stream ``graph`` to its end and return its final values; ``on_updates`` sees every node update
    (subgraphs included), ``on_update`` the top-level ones, ``each_update()`` is called on every chunk."""
    # durability="sync": a step's checkpoint is saved before the next step starts, so the writes of the
    # next step's finished tasks (saved as each finishes, see runs.checkpointer) always hang on a saved
    # checkpoint.  aclosing: whatever stops the loop (a failed task, a failing hook, Ctrl-C), the graph's
    # tasks are stopped and its writes land before the error reaches the checkpointer's exit.
    final: dict[str, Any] = {}
    durable = {"durability": "sync"} if getattr(graph, "checkpointer", None) else {}
    stream = graph.astream(inputs, config, context=classroom, stream_mode=["updates", "values"], subgraphs=True,
                           **durable)
    async with contextlib.aclosing(stream):
        async for namespace, mode, data in stream:
            each_update()
            if mode == "updates":
                if on_updates is not None:
                    on_updates(data)
                if on_update is not None and not namespace:
                    on_update(data)
            elif mode == "values" and not namespace:
                final = data
    return final


async def finished_tasks(graph: Any, config: dict[str, Any]) -> dict[str, int]:
    """Finished tasks of the step that stopped, by node (their writes are saved: resume skips them)."""
    snapshot = await graph.aget_state(config)
    done: dict[str, int] = {}
    for task in snapshot.tasks:
        if task.result is not None and not task.error:
            done[task.name] = done.get(task.name, 0) + 1
    return done


def output_keys(graph: Any) -> list[str]:
    """The keys of a compiled graph's output schema."""
    return list((graph.get_output_jsonschema().get("properties") or {}).keys())


def write_generic_outputs(result: GraphRun) -> Path:
    """``outputs.json`` (the output schema's keys of the final state) and ``summary.json`` (usage)."""
    graph = result.graph
    keys = output_keys(graph) or list(result.state)
    outputs = {k: result.state.get(k) for k in keys}
    path = result.run_dir / "outputs.json"
    write_atomic(path, json.dumps(outputs, indent=1, default=str))
    summary = {"run_id": result.cfg.run_id, "graph": getattr(graph, "name", None), "wall_s": round(result.wall_s, 1),
               "usage": result.classroom.meter.as_dict()}
    write_atomic(result.run_dir / "summary.json", json.dumps(summary, indent=2))
    return path
