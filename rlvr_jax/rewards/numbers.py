"""Numeric normalization: turn the ways a model writes a number into one canonical string.

Canonical form (`canonical`): an exact rational printed as an integer ("18"), else a
finite decimal without trailing zeros ("0.75", "-2.5"), else "p/q" ("1/3"). So "18",
"18.00", "$18", "18." and "18 eggs" all normalize to "18", and "3/4", "0.75" and
"\\frac{3}{4}" all normalize to "0.75". Values are compared as exact `Fraction`s,
never floats.
"""

from __future__ import annotations

import re
from fractions import Fraction

# Minus signs a model or a LaTeX renderer may emit instead of ASCII '-': U+2212 MINUS
# SIGN, U+FE63 SMALL HYPHEN-MINUS, U+FF0D FULLWIDTH HYPHEN-MINUS. The en dash is left
# alone because "5–7" is a range.
_MINUS_TABLE = str.maketrans({"\u2212": "-", "\ufe63": "-", "\uff0d": "-"})
_CURRENCY = "$€£¥₹"
_MAX_DIGITS = 200  # longer digit strings are not answers; also keeps Fraction() cheap

# One number inside running text. Thousands separators only in groups of three
# ("1,234,567"); a '-' is a sign only when it does not follow a word character
# ("3-5" is two numbers 3 and 5); an optional "/q" makes a fraction.
_UNSIGNED = r"(?:\d{1,3}(?:,\d{3})+(?![,\d]*\d)|\d+)(?:\.\d+)?|\.\d+"
_NUMBER_IN_TEXT = re.compile(rf"(?<![\w.])-?(?:{_UNSIGNED})(?:/\d+)?")

# A whole string that is one number: optional sign and currency, the number (or a
# fraction "a/b", or a mixed number "1 1/2"), then optional '%', unit words and a
# final period, e.g. "-$1,234.50", "3/4", "18 eggs.", "50%".
_WHOLE_NUMBER = re.compile(
    rf"""^\(?\s*(?P<sign>[+-])?\s*[{_CURRENCY}]?\s*(?P<sign2>[+-])?\s*
    (?:(?P<whole>\d+)\s+(?=\d+\s*/))?
    (?P<num>{_UNSIGNED})(?:\s*/\s*(?P<den>{_UNSIGNED}))?
    \s*\)?\s*%?\s*(?:[a-zA-Z][a-zA-Z\s]*)?\.?\s*$""",
    re.VERBOSE,
)

_LATEX_FRAC = re.compile(r"\\[dt]?frac\s*\{\s*([^{}]+?)\s*\}\s*\{\s*([^{}]+?)\s*\}")
_LATEX_TEXT = re.compile(r"\\(?:text|textbf|mathrm|mbox)\s*\{([^{}]*)\}")


def clean_text(text: str) -> str:
    """Rewrite unicode minus signs and simple LaTeX so the number regexes can read it.

    `\\frac{a}{b}` (and `\\dfrac`, `\\tfrac`) becomes `a/b`; `\\text{...}` is unwrapped;
    `\\$`, `\\%`, `{,}` and the thin space `\\,` between digit groups lose their escapes;
    `\\!` is dropped.
    """
    text = text.translate(_MINUS_TABLE)
    if "\\" in text or "{," in text:
        text = _LATEX_FRAC.sub(r"\1/\2", text)
        text = _LATEX_TEXT.sub(r"\1", text)
        text = text.replace("\\$", "$").replace("\\%", "%").replace("\\!", "").replace("{,}", ",")
        text = re.sub(r"(?<=\d)\\,(?=\d{3})", ",", text)
    return text


def _unsigned_fraction(token: str) -> Fraction | None:
    digits = token.replace(",", "")
    if sum(c.isdigit() for c in digits) > _MAX_DIGITS:
        return None
    return Fraction(digits)


def to_fraction(text: str) -> Fraction | None:
    """The exact value of `text` if the whole string is one number, else None.

    Accepted: sign ('-', '+', unicode minus), currency prefix ($ € £ ¥ ₹), thousands
    separators in groups of three, decimals ("18.00", ".5"), fractions "3/4" and
    `\\frac{3}{4}`, mixed numbers "1 1/2", then optional '%', unit words and a final
    period ("18 eggs.", "50%"). A percent sign is dropped, not divided by 100, because
    GSM8K-style answers state the percentage itself. Anything else, such as two
    numbers ("3 apples and 4 pears") or a division by zero, gives None.
    """
    match = _WHOLE_NUMBER.match(clean_text(text).strip())
    if match is None:
        return None
    value = _unsigned_fraction(match["num"])
    if value is None:
        return None
    if match["den"] is not None:
        den = _unsigned_fraction(match["den"])
        if den is None or den == 0:
            return None
        value /= den
    if match["whole"] is not None:
        value += int(match["whole"])
    if (match["sign"] == "-") != (match["sign2"] == "-"):
        value = -value
    return value


def canonical(value: Fraction) -> str:
    """An exact value printed canonically: "18", "-2.5", "0.75", else "p/q" ("1/3")."""
    if value.denominator == 1:
        return str(value.numerator)
    den, twos, fives = value.denominator, 0, 0
    while den % 2 == 0:
        den, twos = den // 2, twos + 1
    while den % 5 == 0:
        den, fives = den // 5, fives + 1
    if den != 1:
        return f"{value.numerator}/{value.denominator}"
    places = max(twos, fives)
    scaled = abs(value.numerator) * 10**places // value.denominator
    sign = "-" if value < 0 else ""
    whole, frac = divmod(scaled, 10**places)
    return f"{sign}{whole}.{frac:0{places}d}".rstrip("0")


def normalize_number(text: str) -> str | None:
    """Canonical string of `text` if it is one number (see `to_fraction`), else None.

    >>> [normalize_number(s) for s in ["$1,234.00", "\u22125", "3/4", "18 eggs.", "x=1"]]
    ['1234', '-5', '0.75', '18', None]
    """
    value = to_fraction(text)
    return None if value is None else canonical(value)


def find_numbers(text: str) -> list[str]:
    """Canonical strings of every number written in running text, in order of appearance.

    Uses the in-text rule (see `_NUMBER_IN_TEXT`): "It costs $1,234.50, not -3/4" gives
    ["1234.5", "-0.75"]; "3-5" gives ["3", "5"]; "1,23" gives ["1", "23"].
    Fractions with a zero denominator are skipped.
    """
    numbers = []
    for token in _NUMBER_IN_TEXT.findall(clean_text(text)):
        sign = -1 if token.startswith("-") else 1
        num, _, den = token.lstrip("-").partition("/")
        value = _unsigned_fraction(num)
        if value is None:
            continue
        if den:
            den_value = _unsigned_fraction(den)
            if den_value is None or den_value == 0:
                continue
            value /= den_value
        numbers.append(canonical(sign * value))
    return numbers


def last_number(text: str) -> str | None:
    """Canonical string of the last number written in `text`, or None if there is none."""
    numbers = find_numbers(text)
    return numbers[-1] if numbers else None
