"""The M1 part of a report: accuracy with intervals, Fig. 4 curve, LbT score separation, students, drill-down."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from lbt_agents.report import _plots
from lbt_agents.report._html import ci, details, esc, image, mark, note, pct, pre, table
from lbt_agents.report._load import RunData
from lbt_agents.report._selection import by_tp, pairs_curve, per_student
from lbt_agents.report._stats import auroc, format_auroc, mcnemar_exact, mean_ci, paired_diff_ci

NAMES = {"greedy": "Greedy", "sc": "SC", "max": "M1-MAX", "sum": "M1-SUM", "avg": "M1-AVG"}
MODES = tuple(NAMES)


def outcomes(run: RunData) -> dict[str, dict[str, bool]]:
    """Per method, per TP id: was the selected answer right (methods the run did not select are left out)."""
    out: dict[str, dict[str, bool]] = {}
    for mode in MODES:
        got = {t["tp_id"]: bool(t[f"{mode}_correct"]) for t in run.tps if t.get(f"{mode}_correct") is not None}
        if got:
            out[NAMES[mode]] = got
    return out


def paired(a: Mapping[str, bool], b: Mapping[str, bool], seed: int = 0) -> dict[str, Any]:
    """Paired difference a - b over their common TPs: bootstrap interval and exact McNemar p."""
    common = sorted(set(a) & set(b))
    xa, xb = [a[t] for t in common], [b[t] for t in common]
    return {"diff": paired_diff_ci(xa, xb, seed=seed).as_dict(), "mcnemar": mcnemar_exact(xa, xb), "tps": len(common)}


def tie_break(run: RunData) -> str:
    """The run's rule among answers tied on score and votes (``m1.tie_break``; older runs: first seen)."""
    return str((run.config.get("m1") or {}).get("tie_break") or "first_seen")


def analyse(run: RunData, *, seed: int = 0, draws: int = 200) -> dict[str, Any]:
    """The numbers of the M1 section (also saved in report.json)."""
    res = outcomes(run)
    acc = {m: mean_ci(list(v.values()), seed=seed).as_dict() for m, v in res.items()}
    vs_sc = {m: paired(v, res["SC"], seed) for m, v in res.items() if m != "SC" and "SC" in res}
    answered = scored(run.pairs)
    sep = auroc([p["lbt"] for p in answered], [bool(p["correct"]) for p in answered], [p["tp_id"] for p in answered],
                seed=seed)
    tps = by_tp(run.pairs)
    tie = tie_break(run)
    curve = ({NAMES[m]: pts for m, pts in pairs_curve(tps, draws=draws, seed=seed, tie_break=tie).items()}
             if tps else {})
    students = sorted({x["student"] for p in run.pairs for x in p["per_student"]})
    alone = per_student(tps, students, tie_break=tie)
    per = {}
    for s in students:
        mine = [e for e in run.exams if e["student"] == s]
        per[s] = {"exams": len(mine), "exam_accuracy": mean_ci([e["score"] for e in mine], seed=seed).as_dict(),
                  **{f"select_{m}": mean_ci(v, seed=seed).as_dict() for m, v in alone[s].items()}}
    return {"accuracy": acc, "vs_sc": vs_sc, "auroc": sep, "curve": curve, "students": per}


def section(run: RunData, stats: dict[str, Any], out: Path, tag: str) -> str:
    """The HTML of one M1 run (its PNGs are written to ``out``)."""
    parts = [f"<h3>Accuracy per method ({len(run.tps)} TPs; 95% bootstrap intervals over TPs)</h3>"]
    rows = []
    for m, est in stats["accuracy"].items():
        d = stats["vs_sc"].get(m)
        rows.append([m, ci(est), est["n"], ci(d["diff"], points=True) if d else "-",
                     f"{d['mcnemar']['only_a']} / {d['mcnemar']['only_b']}" if d else "-",
                     f"{d['mcnemar']['p']:.3g}" if d else "-"])
    parts.append(table(["method", "accuracy [95% CI]", "TPs", "minus SC, points [95% CI]",
                        "TPs only it / only SC got right", "McNemar exact p"], rows, id=f"{tag}-accuracy"))
    if code := (run.summary or {}).get("code"):
        parts.append("<p>Hidden-test pass rate (S-score), as in the paper's Tab. 3:</p>" + table(
            ["Avg", "M1-MAX", "Avg (V=1)", "M1-MAX (V=1)"],
            [[pct(code.get(k)) for k in ("avg", "m1_max", "avg_v1", "m1_max_v1")]]))
    if stats["accuracy"]:
        parts.append(image(_plots.accuracy({run.run_id: stats["accuracy"]}, out / f"{tag}-accuracy.png",
                                           title=f"{run.run_id}: accuracy per method"), "accuracy per method"))
    if stats["vs_sc"]:
        diffs = {m: d["diff"] for m, d in stats["vs_sc"].items()}
        parts.append(image(_plots.differences(diffs, out / f"{tag}-vs-sc.png", title="paired difference to SC"),
                           "difference to SC"))
    if stats["curve"]:
        draws = next(iter(stats["curve"].values()))[0]["draws"]
        parts.append("<h3>Accuracy against TR-TA pairs per TP</h3><p>Subsets of each TP's own pairs, drawn without "
                     f"replacement ({draws} draws per TP and size; no new model calls); the run's selection rule "
                     "picks the answer of each subset (the paper's Fig. 4). Bands: 95% intervals over TPs.</p>")
        parts.append(image(_plots.pairs_curve(stats["curve"], out / f"{tag}-pairs-curve.png",
                                              title="accuracy vs TR-TA pairs per TP"), "accuracy vs pairs"))
    parts.append(_separation(run, stats, out, tag))
    parts.append(_students(stats, out, tag))
    parts.append(_drilldown(run))
    return "".join(parts)


def scored(pairs: Sequence[Mapping[str, Any]]) -> list[Mapping[str, Any]]:
    """Pairs whose LbT score says something: answered, and examined (or standing in for one that was)."""
    return [p for p in pairs if p["answer"] is not None and (p["exams_taken"] or p.get("scored_as"))]


def _separation(run: RunData, stats: dict[str, Any], out: Path, tag: str) -> str:
    answered = scored(run.pairs)
    html = ["<h3>Do LbT scores separate right pairs from wrong ones?</h3>",
            (f"<p>AUROC of LbT scores, right vs wrong pairs (answered and examined): "
             f"<b>{esc(format_auroc(stats['auroc']))}</b> (0.5: no separation; interval from resampling whole TPs).</p>")]
    if answered:
        right = [p["lbt"] for p in answered if p["correct"]]
        wrong = [p["lbt"] for p in answered if not p["correct"]]
        html.append(image(_plots.score_histogram(right, wrong, out / f"{tag}-lbt-scores.png",
                                                 title="LbT scores of right and wrong pairs"), "LbT score histogram"))
    return "".join(html)


def _students(stats: dict[str, Any], out: Path, tag: str) -> str:
    if not stats["students"]:
        return ""
    rows = [[s, v["exams"], ci(v["exam_accuracy"]), ci(v["select_max"]), ci(v["select_sum"])]
            for s, v in stats["students"].items()]
    html = ["<h3>Per student</h3>", table(["student", "exams", "exam accuracy [95% CI]",
                                           "M1-MAX with its scores alone", "M1-SUM with its scores alone"], rows)]
    values = {s: {"exam accuracy": 100 * (v["exam_accuracy"]["value"] or 0),
                  "M1-MAX alone": 100 * (v["select_max"]["value"] or 0),
                  "M1-SUM alone": 100 * (v["select_sum"]["value"] or 0)} for s, v in stats["students"].items()}
    html.append(image(_plots.bars(values, out / f"{tag}-students.png", title="per student", ylabel="%"), "per student"))
    return "".join(html)


def _why(mode: str, pairs: Sequence[Mapping[str, Any]], chosen: str | None, tie: str) -> str:
    groups = _groups(pairs)
    if not groups:
        return "no pair has an answer: nothing to choose"
    key = {"sc": "votes", "max": "max", "sum": "sum", "avg": "avg"}[mode]
    later = 1 if tie == "last_seen" else -1
    ranked = sorted(groups, key=lambda g: (round(g[key], 9), g["votes"], later * g["first"]), reverse=True)
    top = ranked[0]
    desc = {"votes": "votes", "max": "best LbT score", "sum": "sum of LbT scores", "avg": "mean LbT score"}[key]
    fmt = (lambda v: str(v)) if key == "votes" else (lambda v: f"{v:.2f}")
    text = f"{desc} {fmt(top[key])}"
    if len(ranked) > 1:
        nxt = ranked[1]
        text += f" vs {fmt(nxt[key])} for {nxt['answer']!s}"
        if round(nxt[key], 9) == round(top[key], 9):
            seen = "came last" if tie == "last_seen" else "came first"
            text += f" (tie: more votes win, then the answer that {seen})"
    return f"{chosen if chosen is not None else top['answer']}: {text}"


def _groups(pairs: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
    groups: dict[Any, dict[str, Any]] = {}
    for p in pairs:
        if p["answer"] is None:
            continue
        key = p.get("group") if p.get("group") is not None else str(p["answer"]).strip()
        g = groups.setdefault(key, {"answer": p["answer"], "correct": p["correct"], "scores": [], "first": p["index"]})
        g["scores"].append(p["lbt"])
    for g in groups.values():
        s = g.pop("scores")
        g.update(votes=len(s), max=max(s), sum=sum(s), avg=sum(s) / len(s))
    return list(groups.values())


def _drilldown(run: RunData) -> str:
    pairs = by_tp(run.pairs)
    tie = tie_break(run)
    exams: dict[str, list[dict[str, Any]]] = {}
    for e in sorted(run.exams, key=lambda e: e["exam_id"]):
        exams.setdefault(e["pair_id"], []).append(e)
    html = ["<h3>Teaching problems</h3><p>Click a TP to see its pairs, their exams and why each answer won.</p>"]
    for t in sorted(run.tps, key=lambda t: t["tp_id"]):
        mine = pairs.get(t["tp_id"], [])
        done = [m for m in MODES if t.get(f"{m}_correct") is not None]
        marks = " ".join(f"{NAMES[m]} {mark(t[f'{m}_correct'])}" for m in done)
        body = [f"<p><b>Gold answer:</b> {esc(t['gold'])}</p>", pre(t["question"])]
        if t.get("note"):
            body.append(note(t["note"]))
        sel = [[NAMES[m], esc(t[f"{m}_answer"]), mark(t[f"{m}_correct"]),
                esc(_why(m, mine, t[f"{m}_answer"], tie)) if m != "greedy" else "the teacher's greedy answer"]
               for m in done]
        body.append(table(["method", "answer", "", "why it won"], sel, raw=True))
        groups = _groups(mine)
        if groups:
            body.append(table(["answer", "", "votes", "max LbT", "sum LbT", "mean LbT"],
                              [[esc(g["answer"]), mark(g["correct"]), g["votes"], f"{g['max']:.2f}", f"{g['sum']:.2f}",
                                f"{g['avg']:.2f}"] for g in groups], raw=True))
        for p in mine:
            chosen = ", ".join(NAMES.get(c, c) for c in p["chosen_by"])
            students = ", ".join(f"{x['student']} {x['score']:.2f}" for x in p["per_student"])
            head = (f"pair {p['index']}: answer {esc(p['answer'])} {mark(p['correct'])}, LbT {p['lbt']:.2f} "
                    f"({esc(students)}), votes {p['votes']}"
                    + (f", chosen by {esc(chosen)}" if chosen else "")
                    + (f", scored as {esc(p['scored_as'])}" if p.get("scored_as") else ""))
            rows = [[esc(e["student"]), esc(e["ep_id"]), e["rep"], esc(e["answer"]), mark(e["correct"]),
                     f"{e['score']:.2f}", details("reply", pre(e["text"]))] for e in exams.get(p["pair_id"], [])]
            inner = pre(p["text"]) + (table(["student", "EP", "rep", "answer", "", "score", "reply"], rows, raw=True)
                                      if rows else "<p class='muted'>no exams</p>")
            body.append(details(head, inner, cls="pair"))
        html.append(details(f"<b>{esc(t['tp_id'])}</b> {marks}", "".join(body), cls="tp", id=f"tp-{t['tp_id']}"))
    return "".join(html)
