"""``lbt grade`` (check one answer against ground truth) and ``lbt tasks`` (list tasks)."""

from __future__ import annotations

import json
import sys

import click

from lbt_agents.errors import ConfigError


def _read(value: str, what: str) -> str:
    if value == "-":
        return sys.stdin.read()
    if value.startswith("@"):
        try:
            with open(value[1:], encoding="utf-8") as fh:
                return fh.read()
        except OSError as exc:
            raise ConfigError(f"{what}: cannot read {value[1:]}: {exc.strerror}") from None
    return value


@click.command()
@click.argument("kind", type=click.Choice(["math", "label"]))
@click.option("--gold", required=True, help="Ground-truth answer (or label).")
@click.option(
    "--pred",
    default=None,
    help="A bare answer or a whole model reply ('-' reads stdin, '@FILE' reads a file). The final answer "
    "is extracted first as the profile's examiner does; when the text has none, the text itself is the answer.",
)
@click.option("--reply-file", type=click.Path(dir_okay=False), default=None, help="Read the reply from this file.")
@click.option("--profile", default="default", show_default=True,
              help="Whose rules: default (math-verify) or paper (official extraction, MATH is_equiv).")
@click.option("--choices", default=None, help="label: comma-separated choices, e.g. 'valid,invalid'.")
def grade(kind: str, gold: str, pred: str | None, reply_file: str | None, profile: str, choices: str | None) -> None:
    """Grade a reply (or answer) against GOLD: prints {"answer": ..., "correct": ...}; exit 0 when correct, 1 when not.

    "answer" is the extracted answer as M1 groups it (paper profile: the exact normalised string).

    Example: lbt grade math --profile paper --gold '\\frac{1}{2}' --pred 0.5
    """
    from lbt_agents.config import RunConfig, validate

    if (pred is None) == (reply_file is None):
        raise ConfigError("give one of --pred and --reply-file")
    text = _read(pred if pred is not None else f"@{reply_file}", "--pred" if pred is not None else "--reply-file")
    cfg = validate(RunConfig, {"profile": profile}, source="--profile")
    answer: str | None
    if kind == "math" and cfg.grading.math == "paper":
        from lbt_agents.paper import grade_reply

        graded = grade_reply(text, gold)
        answer, correct = graded.answer, graded.correct
    elif kind == "math":
        from lbt_agents.grading.math import extract_math_answer, math_equivalent

        answer = extract_math_answer(text) or text.strip() or None
        correct = answer is not None and math_equivalent(gold, answer)
    else:
        from lbt_agents.grading.label import extract_label, match_choice, normalize_label

        options = [c.strip() for c in choices.split(",") if c.strip()] if choices else None
        answer = extract_label(text, options) or (match_choice(text, options) if options else normalize_label(text))
        answer = answer or None
        correct = answer is not None and normalize_label(gold) == normalize_label(answer)
    click.echo(json.dumps({"answer": answer, "correct": bool(correct)}, ensure_ascii=False))
    sys.exit(0 if correct else 1)


@click.command()
def tasks() -> None:
    """List the registered tasks: name, kind of problems, description."""
    from lbt_agents.tasks import task_info

    infos = task_info()
    width = max(len(i.name) for i in infos)
    for info in infos:
        click.echo(f"{info.name:<{width}}  {info.kind:<5}  {info.description}")
