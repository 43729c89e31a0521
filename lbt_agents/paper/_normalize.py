"""The official pipeline's answer normalisation (Minerva-style ``_normalize_final_answer``).

The grouping key of an answer is the exact string this returns: no
equivalence, so ``0.5`` and ``\\frac{1}{2}`` are two different answers.
"""

from __future__ import annotations

import re

# Applied in this order; each step sees the previous step's output.
_LE_AS_LESS = (re.compile(r"\\le(?!ft)"), "<")  # \le -> <, \left untouched
_FEET_UNIT = (re.compile(r"(?<!le)ft"), "")  # the "ft" unit, \left untouched

_LITERAL_REPLACEMENTS: tuple[tuple[str, str], ...] = (
    ("an ", ""),
    ("a ", ""),
    (".$", "$"),
    ("\\$", ""),
    ("\\ ", ""),
    (" ", ""),
    ("mbox", "text"),
    (",\\text{and}", ","),
    ("\\text{and}", ","),
    ("\\text{m}", "\\text{}"),
)

_DROPPED_WORDS: tuple[str, ...] = (
    "square",
    "ways",
    "integers",
    "dollars",
    "mph",
    "inches",
    "hours",
    "km",
    "units",
    "\\ldots",
    "sue",
    "points",
    "feet",
    "minutes",
    "digits",
    "cents",
    "degrees",
    "cm",
    "gm",
    "pounds",
    "meters",
    "meals",
    "edges",
    "students",
    "childrentickets",
    "multiples",
    "\\text{s}",
    "\\text{.}",
    "\\text{\ns}",
    "\\text{}^2",
    "\\text{}^3",
    "\\text{\n}",
    "\\text{}",
    "\\mathrm{th}",
    "^\\circ",
    "^{\\circ}",
    "\\;",
    ",\\!",
    "{,}",
    '"',
    "\\dots",
    "\n",
    "\r",
    "\f",
)

# Unwrap \text{..}, \textbf{..}, \overline{..} (shortest) and \boxed{..} (longest).
_UNWRAP: tuple[re.Pattern[str], ...] = (
    re.compile(r"\\text\{(.*?)\}"),
    re.compile(r"\\textbf\{(.*?)\}"),
    re.compile(r"\\overline\{(.*?)\}"),
    re.compile(r"\\boxed\{(.*)\}"),
)

_SHORT_FRAC = re.compile(r"frac([^{])(.)")  # \frac12 -> \frac{1}{2}
_BARE_SQRT = re.compile(r"(?<!\\)sqrt")  # sqrt -> \sqrt
_PAREN_SQRT = re.compile(r"sqrt\(([^)]+)\)")  # sqrt(x) -> sqrt{x}
_SHORT_SQRT = re.compile(r"sqrt([^{])")  # \sqrt2 -> \sqrt{2}


def normalize_final_answer(answer: str) -> str:
    """The answer as the official pipeline normalises it (its grouping key)."""
    text = answer
    for pattern, replacement in (_LE_AS_LESS, _FEET_UNIT):
        text = pattern.sub(replacement, text)
    for old, new in _LITERAL_REPLACEMENTS:
        text = text.replace(old, new)
    for word in _DROPPED_WORDS:
        text = text.replace(word, "")
    for wrapper in _UNWRAP:
        text = wrapper.sub(lambda m: m.group(1), text)
    text = _SHORT_FRAC.sub(lambda m: "frac{" + m.group(1) + "}{" + m.group(2) + "}", text)
    text = _BARE_SQRT.sub(lambda m: "\\sqrt", text)
    text = _PAREN_SQRT.sub(lambda m: "sqrt{" + m.group(1) + "}", text)
    text = _SHORT_SQRT.sub(lambda m: "sqrt{" + m.group(1) + "}", text)
    text = text.replace("$", "")
    if text.replace(",", "").isdigit():  # 100,000 -> 100000
        text = text.replace(",", "")
    return text
