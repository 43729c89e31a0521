"""``write_report``: one or more run folders -> ``report.html`` (self-contained), its PNGs and ``report.json``."""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from lbt_agents.errors import DataError
from lbt_agents.report import _m1, _plots
from lbt_agents.report._html import ci, details, esc, image, note, page, pct, pre, table
from lbt_agents.report._load import RunData, expand, load_run
from lbt_agents.report._stats import mean_ci
from lbt_agents.runs import write_atomic


@dataclass(frozen=True)
class Report:
    """A written report: the page, its numbers, and what it says about its runs (unfinished, unpaired)."""

    path: Path
    stats: dict[str, Any]
    notes: list[str]


def _tag(run: RunData, i: int) -> str:
    return f"{i}-" + re.sub(r"[^A-Za-z0-9_.-]+", "_", run.run_id)[:60]


def default_out(run_dirs: Sequence[Path]) -> Path:
    """``RUN/report`` for one run; ``<first run's parent>/report-<id>-<id>...`` for several."""
    if len(run_dirs) == 1:
        return Path(run_dirs[0]) / "report"
    name = "-".join(Path(p).resolve().name for p in run_dirs)[:100]
    return Path(run_dirs[0]).resolve().parent / f"report-{name}"


def write_report(run_dirs: Sequence[str | Path], out: str | Path | None = None, *, seed: int = 0,
                 draws: int = 200) -> Report:
    """Read the runs' folders and write ``report.html``, its PNGs and ``report.json`` into ``out``
    (default :func:`default_out`).  A folder that is not a run is a DataError, raised before
    anything is written; an unfinished run is reported with what it saved, and says so."""
    if not run_dirs:
        raise DataError("give at least one run folder")
    run_dirs = list(dict.fromkeys(Path(p).resolve() for p in run_dirs))  # the same folder twice is one run
    runs = [load_run(p) for d in run_dirs for p in expand(d)]
    seen: dict[str, int] = {}
    for run in runs:  # runs of the same name from different folders keep apart
        if (run.path.parent / "repeats.json").is_file() and run.path.parent not in (r.path for r in runs):
            run.run_id = f"{run.path.parent.name}/{run.run_id}"
        seen[run.run_id] = seen.get(run.run_id, 0) + 1
        if seen[run.run_id] > 1:
            run.run_id = f"{run.run_id}#{seen[run.run_id]}"
    out = Path(out) if out is not None else default_out(run_dirs)
    _clear(out)
    notes = [n for r in runs for n in r.notes]
    stats: dict[str, Any] = {"runs": {}}
    sections = []
    for i, run in enumerate(runs):
        tag = _tag(run, i)
        html, numbers = _run_section(run, out, tag, seed=seed, draws=draws)
        stats["runs"][run.run_id] = {"kind": run.kind, "task": run.task, "finished": run.finished, **numbers}
        sections.append(f'<section class="run" id="run-{esc(tag)}"><h2>{esc(run.run_id)} '
                        f'<span class="muted">({esc(run.kind)}, {esc(run.task)})</span></h2>{html}</section>')
    compare_html, compare, compare_notes = _compare(runs, stats, out, seed=seed)
    notes += compare_notes
    stats["compare"] = compare
    stats["notes"] = notes
    body = [f"<h1>lbt report: {esc(', '.join(r.run_id for r in runs))}</h1>"]
    body += [note(n) for n in notes]
    body.append(_summary(runs, stats))
    for d in run_dirs:
        if (d / "repeats.json").is_file():
            html, agg = _repeats(d)
            body.append(html)
            notes += agg.pop("notes")
            stats.setdefault("repeats", {})[d.name] = agg
    body.append(compare_html)
    body += sections
    title = "lbt report: " + ", ".join(r.run_id for r in runs)
    path = out / "report.html"
    write_atomic(path, page(title, "".join(body)))
    stats["files"] = sorted(p.name for p in out.glob("*.png"))
    write_atomic(out / "report.json", json.dumps(stats, indent=1, default=str))
    return Report(path, stats, notes)


def _clear(out: Path) -> None:
    """Make ``out`` ready: new, empty, or an earlier report's folder (whose PNGs go); others are refused."""
    if out.exists() and not out.is_dir():
        raise DataError(f"--out {out} is a file; give a folder for the report")
    if out.is_dir() and any(out.iterdir()):
        if not (out / "report.json").is_file():
            raise DataError(f"--out {out} is not empty and holds no report; give a new or empty folder")
        try:
            old = json.loads((out / "report.json").read_text()).get("files", [])
        except (OSError, ValueError):
            old = []
        for name in old:
            if isinstance(name, str) and name.endswith(".png") and "/" not in name:
                (out / name).unlink(missing_ok=True)
    out.mkdir(parents=True, exist_ok=True)


def _repeats(parent: Path) -> tuple[str, dict[str, Any]]:
    """An M3 run with repeats: the test metric per round over its repeats (mean, standard error)."""
    agg = json.loads((parent / "repeats.json").read_text())
    notes = []
    if agg.get("finished", 0) < agg.get("repeats", 0):
        notes.append(f"M3 run {parent.name!r}: {agg.get('finished', 0)} of {agg['repeats']} repeats finished")
    rows = [[r["lane"], r["round"], r["n"], pct(r.get("mean")), pct(r.get("sem")),
             ", ".join(pct(v) for v in r.get("values", []))] for r in agg.get("by_round", [])]
    html = (f"<h2>{esc(parent.name)}: M3 over {agg.get('finished', 0)} of {agg.get('repeats', 0)} repeats "
            f"(seeds {esc(agg.get('seeds'))})</h2>"
            + table(["lane", "round", "repeats", f"mean test {agg.get('metric', 'metric')}", "standard error",
                     "per repeat"], rows, id=f"repeats-{parent.name}"))
    return html, {"by_round": agg.get("by_round", []), "notes": notes}


def _summary(runs: Sequence[RunData], stats: dict[str, Any]) -> str:
    methods = list(dict.fromkeys(m for s in stats["runs"].values() for m in s.get("accuracy", {})))
    rows = []
    for run in runs:
        s = stats["runs"][run.run_id]
        status = "finished" if run.finished else "NOT FINISHED"
        auroc = s.get("auroc")
        rows.append([run.run_id, run.kind, run.task or "-", status, len(run.tps) or "-",
                     *(ci(s.get("accuracy", {}).get(m)) for m in methods),
                     _m1.format_auroc(auroc) if auroc else "-", s.get("headline", "")])
    return "<h2>Summary</h2>" + table(["run", "kind", "task", "status", "TPs", *methods, "AUROC of LbT scores",
                                       "result"], rows, id="summary")


def _run_section(run: RunData, out: Path, tag: str, *, seed: int, draws: int) -> tuple[str, dict[str, Any]]:
    parts = [note(n) for n in run.notes]
    numbers: dict[str, Any] = {}
    parts.append(_about(run))
    if run.kind == "m1" or (run.kind == "m2" and run.tps):
        numbers = _m1.analyse(run, seed=seed, draws=draws)
        parts.append(_m1.section(run, numbers, out, tag))
    if run.kind == "m2":
        html, extra = _m2_prefs(run)
        parts.append(html)
        numbers.update(extra)
    if run.kind == "m2-eval":
        html, extra = _m2_eval(run, out, tag, seed)
        parts.append(html)
        numbers.update(extra)
    if run.kind == "m3":
        html, extra = _m3(run, out, tag)
        parts.append(html)
        numbers.update(extra)
    parts.append(_usage(run, out, tag))
    return "".join(parts), numbers


def _about(run: RunData) -> str:
    s, c = run.summary or {}, run.config
    cls = c.get("classroom") or {}
    teacher = (cls.get("teacher") or {}).get("model")
    students = [x.get("model") for x in cls.get("students") or []]
    facts = [("folder", str(run.path)), ("task", run.task)]
    if teacher:
        facts += [("teacher", teacher), ("students", ", ".join(map(str, students)))]
    for key, label in (("pairs_per_tp", "TR-TA pairs per TP"), ("eps_per_tp", "EPs per TP"), ("exams", "exams"),
                       ("wall_s", "wall time (s)")):
        if key in s:
            facts.append((label, s[key]))
    return table(["", ""], facts)


def _usage(run: RunData, out: Path, tag: str) -> str:
    s = run.summary or {}
    meter = s.get("requests") or s.get("usage") or (s.get("m1") or {}).get("requests") or {}
    if not meter:
        return ""
    rows = [[name, m.get("requests", 0), m.get("cache_hits", 0), m.get("prompt_tokens", 0),
             m.get("completion_tokens", 0), f"{m.get('wall_s', 0.0):.1f}"] for name, m in sorted(meter.items())]
    values = {name: {"prompt tokens": m.get("prompt_tokens", 0), "completion tokens": m.get("completion_tokens", 0)}
              for name, m in sorted(meter.items())}
    img = image(_plots.bars(values, out / f"{tag}-usage.png", title="tokens per agent", ylabel="tokens"),
                "tokens per agent")
    return ("<h3>Tokens, requests and time per agent</h3>"
            + table(["agent", "requests", "cache hits", "prompt tokens", "completion tokens", "time in calls (s)"],
                    rows)
            + img)


def _m2_prefs(run: RunData) -> tuple[str, dict[str, Any]]:
    s = run.summary or {}
    rows, numbers = [], {}
    for mode, prefs in sorted(run.prefs.items()):
        gaps = [p["gap"] for p in prefs]
        numbers[mode] = {"pairs": len(prefs), "tps": len({p["tp_id"] for p in prefs}),
                         "mean_gap": sum(gaps) / len(gaps) if gaps else None}
        rows.append([mode, len(prefs), numbers[mode]["tps"], s.get("tps", "-"),
                     "-" if not gaps else f"{sum(gaps) / len(gaps):.2f} ({min(gaps):.2f}-{max(gaps):.2f})",
                     "-" if not prefs else f"{sum(p['chosen_score'] for p in prefs) / len(prefs):.2f}",
                     "-" if not prefs else f"{sum(p['rejected_score'] for p in prefs) / len(prefs):.2f}"])
    html = "<h3>M2 preference pairs</h3>" + table(
        ["data", "pairs", "TPs with pairs", "TPs", "score gap mean (range)", "chosen score", "rejected score"], rows)
    acc = (s.get("m1") or {}).get("accuracy") or {}
    if acc:
        html += "<p>Selection on the training TPs: " + esc(", ".join(
            f"{_m1.NAMES.get(m, m)} {pct(v)}" for m, v in acc.items())) + "</p>"
    return html, {"prefs": numbers, "headline": f"{numbers.get('m2', {}).get('pairs', 0)} M2 pairs"}


def _m2_eval(run: RunData, out: Path, tag: str, seed: int) -> tuple[str, dict[str, Any]]:
    result = run.m2_eval or {}
    n = result.get("problems", 0)
    models = {}
    for label, m in (result.get("models") or {}).items():
        models[label] = mean_ci([1.0] * m["correct"] + [0.0] * (n - m["correct"]), seed=seed).as_dict()
    rows = [[label, m.get("model"), ci(models[label]), m["correct"], m.get("truncated", 0)]
            for label, m in (result.get("models") or {}).items()]
    html = (f"<h3>M2 held-out evaluation: greedy accuracy on {n} problems</h3>"
            + table(["model", "weights", "accuracy [95% CI]", "correct", "truncated"], rows, id=f"{tag}-heldout"))
    if models:
        html += image(_plots.accuracy({"held out": models}, out / f"{tag}-heldout.png", title="held-out accuracy"),
                      "held-out accuracy")
    best = max(models.items(), key=lambda kv: kv[1]["value"] or 0, default=None)
    return html, {"heldout": models, "headline": f"best {best[0]} {ci(best[1])}" if best else ""}


def _m3(run: RunData, out: Path, tag: str) -> tuple[str, dict[str, Any]]:
    from lbt_agents.m3 import rows_table
    from lbt_agents.plots import plot_rounds

    s = run.summary or {}
    lanes = s.get("lanes") or {}
    html = ["<h3>M3: test metric per round and lane</h3>"]
    if lanes:
        html.append(table(["teacher", "who teaches whom", "metric", "round 0", "last round", "best"],
                          [[n, l["label"], l["metric"], pct(l["first"]), pct(l["last"]), pct(l["best"])]
                           for n, l in lanes.items()]))
    if run.rounds:
        labels = {n: l["label"] for n, l in lanes.items()}
        png = plot_rounds(run.rounds, out / f"{tag}-metric-by-round.png", labels=labels, title=f"M3 on {run.task}")
        html.append(image(png, "metric per round"))
        cells = rows_table(run.rounds)
        html.append(table(cells[0], cells[1:]))
    m3 = run.m3 or {}
    answers, reasons, sets, scores = (m3.get(k) or {} for k in ("answers", "reasons", "sets", "scores"))
    for r in run.rounds:
        if not r["round"]:
            continue
        mine = [x for x in reasons.values() if x["round"] == r["round"] and x["lane"] == r["lane"]]
        failed = {f for x in mine for f in x.get("failures", [])}
        fail_rows = [[answers[f]["student"], answers[f]["problem"]["id"], esc(answers[f].get("answer")),
                      esc(answers[f]["problem"]["answer"])] for f in sorted(failed) if f in answers]
        body = [(f"<p>{r['failures']} failures on the minibatch; best set {esc(r['best_set'])} "
                 f"(score {pct(r['best_score'])})</p>")]
        if fail_rows:
            body.append("<h4>Failures the teacher saw</h4>" + table(["student", "problem", "answer", "gold"], fail_rows,
                                                                    raw=True))
        if mine:
            body.append("<h4>Reasons</h4>" + "".join(pre(x["text"]) for x in sorted(mine, key=lambda x: x["id"])))
        cands = [x for x in sets.values() if x.get("round") == r["round"] and x.get("lane") == r["lane"]]
        for c in sorted(cands, key=lambda x: x["id"]):
            score = (scores.get(c["id"]) or {}).get("score")
            text = "\n\n".join(f"Q: {e['question']}\n{e.get('solution', '')}\nA: {e['answer']}"
                               for e in c.get("exemplars") or [])
            body.append(details(f"set {esc(c['id'])} ({esc(c.get('status'))}, score {pct(score)})", pre(text)))
        html.append(details(f"round {r['round']}, {esc(r['lane'])}: failures, reasons and sets", "".join(body),
                            cls="round"))
    last = {n: l["last"] for n, l in lanes.items()}
    return "".join(html), {"lanes": lanes, "headline": ", ".join(f"{n}: {pct(v)}" for n, v in last.items())}


def _compare(
    runs: Sequence[RunData], stats: dict[str, Any], out: Path, *, seed: int
) -> tuple[str, dict[str, Any], list[str]]:
    """Runs side by side: on the same task and TPs, each method's paired difference between runs."""
    m1 = [r for r in runs if r.tps]
    if len(m1) < 2:
        return "", {}, []
    base = m1[0]
    notes, rows, numbers = [], [], {}
    for other in m1[1:]:
        if other.task != base.task:
            notes.append(f"runs {base.run_id!r} ({base.task}) and {other.run_id!r} ({other.task}) cannot be paired: "
                         f"they are on different tasks, so no TP is in both; they are shown side by side only")
            continue
        a, b = _m1.outcomes(other), _m1.outcomes(base)
        common = set(next(iter(a.values()), {})) & set(next(iter(b.values()), {}))
        if not common:
            notes.append(f"runs {base.run_id!r} and {other.run_id!r} have no TP in common: they cannot be paired")
            continue
        for m in a:
            if m in b:
                d = _m1.paired(a[m], b[m], seed)
                numbers[f"{other.run_id} - {base.run_id}"] = {**numbers.get(f"{other.run_id} - {base.run_id}", {}),
                                                               m: d}
                rows.append([f"{other.run_id} minus {base.run_id}", m, d["tps"], ci(d["diff"], points=True),
                             f"{d['mcnemar']['only_a']} / {d['mcnemar']['only_b']}", f"{d['mcnemar']['p']:.3g}"])
    per_run = {r.run_id: stats["runs"][r.run_id].get("accuracy", {}) for r in m1}
    html = ["<h2>Runs side by side</h2>", image(_plots.accuracy(per_run, out / "compare-accuracy.png",
                                                                title="accuracy per method and run"), "runs compared")]
    if rows:
        html.append("<p>Paired over the TPs both runs have (bootstrap over TPs, exact McNemar):</p>")
        html.append(table(["runs", "method", "common TPs", "difference, points [95% CI]",
                           "TPs only first / only second",
                           "McNemar exact p"], rows, id="compare"))
    return "".join(html), numbers, notes
