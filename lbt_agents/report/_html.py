"""HTML building blocks of the report: one self-contained page (inline CSS, PNGs as data URIs, no script)."""

from __future__ import annotations

import base64
import html
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

CSS = """
body{font-family:system-ui,-apple-system,Segoe UI,Roboto,sans-serif;margin:2em auto;max-width:1100px;padding:0 1em;
color:#222;line-height:1.4}
h1{font-size:1.6em}h2{border-bottom:1px solid #ddd;padding-bottom:.2em;margin-top:2em}h3{margin-top:1.5em}
table{border-collapse:collapse;margin:.6em 0;font-size:.92em}th,td{border:1px solid #ccc;padding:.25em .55em;
text-align:left;vertical-align:top}th{background:#f3f3f3}td.num{text-align:right;font-variant-numeric:tabular-nums}
img.plot{max-width:100%;height:auto;display:block;margin:.6em 0}
pre{background:#f7f7f7;padding:.6em;white-space:pre-wrap;word-break:break-word;max-height:28em;overflow:auto}
details{margin:.3em 0}details>summary{cursor:pointer}
details.tp{border:1px solid #ddd;border-radius:4px;padding:.3em .6em}
.note{background:#fff4d6;border-left:4px solid #e0a800;padding:.5em .8em;margin:.6em 0}
.ok{color:#17803d;font-weight:600}.bad{color:#b42318;font-weight:600}.muted{color:#777}
"""


def esc(value: Any) -> str:
    return html.escape("" if value is None else str(value))


def pct(value: float | None, digits: int = 1) -> str:
    return "-" if value is None else f"{100 * value:.{digits}f}%"


def ci(est: dict[str, Any] | None, *, points: bool = False) -> str:
    """``41.0% [30.2, 52.1]`` (or ``+3.0 [-2.1, 8.0]`` points)."""
    if not est or est.get("value") is None:
        return "-"
    if points:
        v = f"{100 * est['value']:+.1f}"
        return v if est.get("low") is None else f"{v} [{100 * est['low']:+.1f}, {100 * est['high']:+.1f}]"
    v = pct(est["value"])
    return v if est.get("low") is None else f"{v} [{100 * est['low']:.1f}, {100 * est['high']:.1f}]"


def mark(ok: bool | None) -> str:
    if ok is None:
        return '<span class="muted">-</span>'
    return '<span class="ok">right</span>' if ok else '<span class="bad">wrong</span>'


def table(header: Sequence[str], rows: Iterable[Sequence[Any]], *, id: str | None = None, raw: bool = False) -> str:
    """A table; cells are escaped unless ``raw`` (then they are HTML already)."""
    cell = (lambda v: str(v)) if raw else esc
    head = "".join(f"<th>{esc(h)}</th>" for h in header)
    head = f"<thead><tr>{head}</tr></thead>" if any(header) else ""
    body = "".join("<tr>" + "".join(f"<td>{cell(v)}</td>" for v in r) + "</tr>" for r in rows)
    attr = f' id="{esc(id)}"' if id else ""
    return f"<table{attr}>{head}<tbody>{body}</tbody></table>"


def image(path: Path, alt: str) -> str:
    """The PNG at ``path`` inlined as a data URI."""
    data = base64.b64encode(path.read_bytes()).decode()
    return f'<img class="plot" alt="{esc(alt)}" data-file="{esc(path.name)}" src="data:image/png;base64,{data}">'


def details(summary: str, body: str, *, cls: str | None = None, id: str | None = None) -> str:
    attrs = (f' class="{cls}"' if cls else "") + (f' id="{esc(id)}"' if id else "")
    return f"<details{attrs}><summary>{summary}</summary>{body}</details>"


def note(text: str) -> str:
    return f'<p class="note">{esc(text)}</p>'


def pre(text: Any) -> str:
    return f"<pre>{esc(text)}</pre>"


def page(title: str, body: str) -> str:
    return (f'<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8"><title>{esc(title)}</title>'
            '<link rel="icon" href="data:,"><meta name="viewport" content="width=device-width, initial-scale=1">'
            f"<style>{CSS}</style></head>"
            f"<body>{body}</body></html>\n")
