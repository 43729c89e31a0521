"""The MATH benchmark's ``is_equiv`` (Hendrycks et al.), as the official pipeline grades.

Two answers are equivalent when their stripped forms are equal.  Where the
original ``_strip_string`` raises (``\\frac`` or ``\\sqrt`` with nothing after
it, two ``\\text{ `` units, an ``a/b`` whose parts are not integers), the
official grader falls back to comparing the raw strings; so do we.
"""

from __future__ import annotations


class _Unstrippable(Exception):
    """The original stripping code would raise on this input."""


_REMOVED_BEFORE_UNITS: tuple[str, ...] = ("\\!",)
_REPLACED_BEFORE_UNITS: tuple[tuple[str, str], ...] = (
    ("\\\\", "\\"),
    ("tfrac", "frac"),
    ("dfrac", "frac"),
    ("\\(", ""),
    ("\\)", ""),
    ("\\left", ""),
    ("\\right", ""),
    ("^{\\circ}", ""),
    ("^\\circ", ""),
    ("\\$", ""),
)


def _drop_unit(text: str) -> str:
    # "\text{ " marks a unit on the right; more than one is an error upstream.
    if "\\text{ " not in text:
        return text
    parts = text.split("\\text{ ")
    if len(parts) != 2:
        raise _Unstrippable
    return parts[0]


def _brace_sqrt(text: str) -> str:
    # \sqrt3 -> \sqrt{3}
    if "\\sqrt" not in text:
        return text
    head, *tails = text.split("\\sqrt")
    out = [head]
    for tail in tails:
        if not tail:
            raise _Unstrippable
        out.append("\\sqrt" + (tail if tail[0] == "{" else "{" + tail[0] + "}" + tail[1:]))
    return "".join(out)


def _brace_fracs(text: str) -> str:
    # \frac12 -> \frac{1}{2}, \frac1{72} -> \frac{1}{72}; a one-character tail leaves text as it was.
    head, *tails = text.split("\\frac")
    out = [head]
    for tail in tails:
        out.append("\\frac")
        if not tail:
            raise _Unstrippable
        if tail[0] == "{":
            out.append(tail)
            continue
        if len(tail) < 2:
            return text
        numerator, second, rest = tail[0], tail[1], tail[2:]
        if second == "{":
            out.append("{" + numerator + "}" + second + rest)
        else:
            out.append("{" + numerator + "}{" + second + "}" + rest)
    return "".join(out)


def _slash_to_frac(text: str) -> str:
    # "3/4" -> \frac{3}{4}, only for plain integers written canonically.
    parts = text.split("/")
    if len(parts) != 2:
        return text
    try:
        top, bottom = int(parts[0]), int(parts[1])
    except ValueError as exc:  # upstream lets this escape to is_equiv
        raise _Unstrippable from exc
    if text != f"{top}/{bottom}":
        return text
    return "\\frac{" + str(top) + "}{" + str(bottom) + "}"


def _strip(text: str) -> str:
    text = text.replace("\n", "")
    for piece in _REMOVED_BEFORE_UNITS:
        text = text.replace(piece, "")
    for old, new in _REPLACED_BEFORE_UNITS:
        text = text.replace(old, new)
    text = _drop_unit(text)
    text = text.replace("\\%", "").replace("\\%", "")  # twice, as upstream: "\\\\%%" -> ""
    text = text.replace(" .", " 0.").replace("{.", "{0.")
    if not text:
        return text
    if text[0] == ".":
        text = "0" + text
    sides = text.split("=")
    if len(sides) == 2 and len(sides[0]) <= 2:  # "k = 5" -> "5"
        text = sides[1]
    text = _brace_sqrt(text)
    text = text.replace(" ", "")
    text = _brace_fracs(text)
    if text == "0.5":
        text = "\\frac{1}{2}"
    return _slash_to_frac(text)


def strip_string(text: str) -> str | None:
    """The MATH ``_strip_string`` form of ``text``; None where the original raises."""
    try:
        return _strip(text)
    except _Unstrippable:
        return None


def is_equiv(a: str | None, b: str | None) -> bool:
    """MATH ``is_equiv``: equal stripped forms (raw equality where stripping fails)."""
    if a is None or b is None:
        return a is None and b is None
    stripped_a, stripped_b = strip_string(a), strip_string(b)
    if stripped_a is None or stripped_b is None:
        return a == b
    return stripped_a == stripped_b
