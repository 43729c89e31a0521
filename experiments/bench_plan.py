"""How good is ``--dry-run``'s plan?  Plans an M1 run, runs it on a server, and compares per agent:
planned vs sent requests, estimated vs served prompt tokens, the completion bound vs served
completion tokens; and the characters/4 estimate on the exact prompts the run sent (rebuilt from
its results) vs what the server counted, which isolates the estimate's error from the bound on
rationales not written yet.

    python experiments/bench_plan.py --base-url http://127.0.0.1:8100/v1 --model qwen2.5-coder-0.5b \
        --tps 2 --pairs 2 --eps 1 [--set classroom.teacher.sampling.max_tokens=16 ...]
"""

from __future__ import annotations

import json
import tempfile
from pathlib import Path

from _bench import exam_messages, m1_arguments, report, run_config, server, size_overrides


def main() -> None:
    ap = m1_arguments(__doc__)
    ap.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                    help="More config overrides, e.g. classroom.teacher.sampling.max_tokens=16.")
    args = ap.parse_args()
    from lbt_agents.agents import Student, Teacher
    from lbt_agents.errors import EndpointError
    from lbt_agents.m1 import M1_GRAPH, run_m1
    from lbt_agents.plan import _offline, estimate_tokens
    from lbt_agents.runner import plan_graph

    with server(args.model, args.base_url) as url, tempfile.TemporaryDirectory() as out:
        cfg = run_config(args.config, url, *size_overrides(args), f"output_dir={out}", "run_id=plan",
                         "cache.enabled=false", *args.overrides)
        plan = plan_graph(M1_GRAPH, cfg)
        try:
            results = run_m1(cfg, progress=False).results
        except EndpointError:  # no teacher answer (short max_tokens): the teacher's figures still count
            results = {}
        served = json.loads((Path(out) / "plan" / "summary.json").read_text())["requests"]
    from lbt_agents.tasks import load_task

    items = load_task(cfg.task)
    teacher = Teacher(_offline(cfg.classroom.teacher), task=cfg.task.name)
    teacher_exact = sum(estimate_tokens(teacher.messages(it["tp"])) for it in items) * (args.pairs + 1)
    student_cfg = cfg.classroom.students[0]
    student = Student(_offline(student_cfg), task=cfg.task.name)
    sent_prompts = exam_messages(student, items, results)
    rows, data = [], {"plan": plan.as_dict(), "served": served, "config": cfg.model_dump(mode="json")}
    for name, p in plan.per_agent().items():
        s = served.get(name, {})
        rows.append(f"| {name} | {p['requests']} | {s.get('requests', 0)} | {p['prompt_tokens']} | "
                    f"{s.get('prompt_tokens', 0)} | {p['completion_tokens']} | {s.get('completion_tokens', 0)} |")
    exact = sum(estimate_tokens(m) for m in sent_prompts)
    measured = served.get(student_cfg.name, {}).get("prompt_tokens", 0)
    teacher_served = served.get(cfg.classroom.teacher.name, {}).get("prompt_tokens", 0)
    data["prompts"] = {"student": {"estimate_on_sent_prompts": exact, "served": measured},
                       "teacher": {"estimate": teacher_exact, "served": teacher_served}}
    table = "\n".join([
        f"# bench_plan: {plan.about} ({args.model})", "",
        "| agent | planned requests | sent | prompt tokens (est.) | served | completion (at most) | served |",
        "|---|---|---|---|---|---|---|", *rows, "",
        f"characters/4 on the teacher's prompts: {teacher_exact} tokens; the server counted {teacher_served} "
        f"({teacher_exact / max(teacher_served, 1):.2f}×)",
        f"characters/4 on the {len(sent_prompts)} exam prompts the run sent: {exact} tokens; the server counted "
        f"{measured} ({exact / measured:.2f}×)" if measured else "no exam was served", "",
    ])
    report("bench_plan", data, table)


if __name__ == "__main__":
    main()
