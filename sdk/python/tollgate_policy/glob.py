"""The glob dialect shared by the host and every SDK (Contract 1, "Glob semantics").

A pattern matches the *whole* string. ``*`` matches any run of characters and ``?`` any single
character, but neither crosses a separator (``:`` or ``/``); ``**`` matches anything,
separators included. ``[abc]``, ``[a-z]`` and ``[!abc]`` (or ``[^abc]``) are classes (a negated
class never matches a separator), ``{a,b}`` is an alternation (not nested) and ``\\`` escapes
the next character. Patterns are at most 1,024 bytes (UTF-8).

This is a port of the Rust SDK's parser (``policy-guest/src/glob/parse.rs``);
:func:`tollgate_policy.glob_match` asks the host inside the sandbox and uses :func:`matches`
outside it.
"""

from __future__ import annotations

import re
from functools import lru_cache
from typing import List, Optional, Tuple

__all__ = ["MAX_PATTERN_LEN", "GlobError", "validate", "to_regex", "matches"]

#: Longest pattern accepted, in UTF-8 bytes.
MAX_PATTERN_LEN = 1024


class GlobError(ValueError):
    """Why a pattern is not a valid glob."""

    def __init__(self, pattern: str, reason: str) -> None:
        super().__init__(f"invalid glob `{pattern}`: {reason}")
        #: The offending pattern.
        self.pattern = pattern
        #: What is wrong with it.
        self.reason = reason


def _class(chars: str, i: int) -> Tuple[str, int]:
    """Reads a class after its ``[``; returns its regex and the index after the ``]``."""
    negated = i < len(chars) and chars[i] in "!^"
    if negated:
        i += 1
    ranges: List[Tuple[str, str]] = []
    while True:
        if i >= len(chars):
            raise ValueError("unclosed `[` class")
        low = chars[i]
        i += 1
        if low == "]" and ranges:
            break
        high = low
        if i + 1 < len(chars) and chars[i] == "-" and chars[i + 1] != "]":
            high = chars[i + 1]
            i += 2
        if high < low:
            raise ValueError("reversed range in `[` class")
        ranges.append((low, high))
    body = "".join(
        _esc_class(lo) if lo == hi else f"{_esc_class(lo)}-{_esc_class(hi)}" for lo, hi in ranges
    )
    return (f"[^{body}:/]" if negated else f"[{body}]"), i


def _esc_class(c: str) -> str:
    return "\\" + c if c in "\\]-^[" else c


def _parse(pattern: str) -> str:
    out: List[str] = []
    alternation: Optional[List[List[str]]] = None
    i = 0
    while i < len(pattern):
        c = pattern[i]
        i += 1
        if c == "*" and i < len(pattern) and pattern[i] == "*":
            while i < len(pattern) and pattern[i] == "*":
                i += 1
            node = ".*"
        elif c == "*":
            node = "[^:/]*"
        elif c == "?":
            node = "[^:/]"
        elif c == "[":
            node, i = _class(pattern, i)
        elif c == "{":
            if alternation is not None:
                raise ValueError("nested `{` alternation")
            alternation = [[]]
            continue
        elif c == "," and alternation is not None:
            alternation.append([])
            continue
        elif c == "}" and alternation is not None:
            out.append("(?:" + "|".join("".join(b) for b in alternation) + ")")
            alternation = None
            continue
        elif c == "\\":
            if i >= len(pattern):
                raise ValueError("ends with a lone `\\`")
            node = re.escape(pattern[i])
            i += 1
        else:
            node = re.escape(c)
        if alternation is not None:
            alternation[-1].append(node)
        else:
            out.append(node)
    if alternation is not None:
        raise ValueError("unclosed `{`")
    return "".join(out)


def to_regex(pattern: str) -> str:
    """The pattern as a Python regular expression for ``re.fullmatch`` (raises
    :class:`GlobError`)."""
    if len(pattern.encode("utf-8", "surrogatepass")) > MAX_PATTERN_LEN:
        raise GlobError(pattern, "longer than 1024 bytes")
    try:
        return "(?s:" + _parse(pattern) + ")"
    except ValueError as error:
        raise GlobError(pattern, str(error)) from None


def validate(pattern: str) -> None:
    """Raises :class:`GlobError` unless ``pattern`` is a valid glob."""
    to_regex(pattern)


@lru_cache(maxsize=1024)
def _compiled(pattern: str) -> Optional["re.Pattern[str]"]:
    try:
        return re.compile(to_regex(pattern))
    except GlobError:
        return None


def matches(pattern: str, text: str) -> bool:
    """Whether the whole of ``text`` matches ``pattern``, evaluated in Python (no host call).
    An invalid pattern matches nothing."""
    compiled = _compiled(pattern)
    return compiled is not None and compiled.fullmatch(text) is not None
