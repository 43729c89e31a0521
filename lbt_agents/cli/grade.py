"""``lbt grade`` (check one answer against ground truth) and ``lbt tasks`` (list tasks)."""

from __future__ import annotations

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
    required=True,
    help="A bare answer or a whole model reply ('-' reads stdin, '@FILE' reads a file). The final answer "
    "is extracted first ([[Final Answer]]:, \\boxed{}, 'The answer is ...'); when the text has none, "
    "the text itself is the answer.",
)
@click.option("--choices", default=None, help="label: comma-separated choices, e.g. 'valid,invalid'.")
def grade(kind: str, gold: str, pred: str, choices: str | None) -> None:
    """Grade PRED against GOLD; exit 0 when they match, 1 when they don't.

    Example: lbt grade math --gold '\\frac{1}{2}' --pred 0.5
    """
    text = _read(pred, "--pred")
    if kind == "math":
        from lbt_agents.grading.math import extract_math_answer, math_equivalent

        answer = extract_math_answer(text) or text.strip() or None
        correct = answer is not None and math_equivalent(gold, answer)
    else:
        from lbt_agents.grading.label import extract_label, match_choice, normalize_label

        options = [c.strip() for c in choices.split(",") if c.strip()] if choices else None
        answer = extract_label(text, options) or (match_choice(text, options) if options else normalize_label(text))
        correct = bool(answer) and normalize_label(gold) == normalize_label(answer or "")
    if answer is None or answer == "":
        click.echo("wrong: no answer found in --pred")
        sys.exit(1)
    click.echo(f"correct: {answer} == {gold}" if correct else f"wrong: {answer} != {gold}")
    sys.exit(0 if correct else 1)


@click.command()
def tasks() -> None:
    """List the registered tasks: name, kind of problems, description."""
    from lbt_agents.tasks import task_info

    infos = task_info()
    width = max(len(i.name) for i in infos)
    for info in infos:
        click.echo(f"{info.name:<{width}}  {info.kind:<5}  {info.description}")
