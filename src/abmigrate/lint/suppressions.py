"""Inline suppressions: ``# abmigrate: ignore[CODE, ...] reason: why``.

On its own line the comment covers the next statement (a whole ``with`` block if that is
the next statement); after code it covers the statement it ends. ``ignore-file[...]``
anywhere covers the whole file. A reason is required; a comment without one suppresses
nothing and is reported (AM002), as is a comment that ends up suppressing nothing (AM001).
"""

from __future__ import annotations

import ast
import io
import re
import tokenize
from dataclasses import dataclass, field

__all__ = ["Suppression", "parse_suppressions"]

_PATTERN = re.compile(
    r"#\s*abmigrate:\s*(?P<kind>ignore|ignore-file)\[(?P<codes>[^\]]*)\]\s*(?P<reason>.*)$",
    re.IGNORECASE,
)


@dataclass
class Suppression:
    codes: tuple[str, ...]
    reason: str
    line: int
    start: int  # first covered line
    end: int  # last covered line
    file_level: bool = False
    used: set[str] = field(default_factory=set)

    def covers(self, code: str, line: int | None) -> bool:
        if code not in self.codes:
            return False
        if self.file_level:
            return True
        return line is not None and self.start <= line <= self.end

    def to_record(self) -> dict[str, object]:
        return {"codes": list(self.codes), "reason": self.reason, "line": self.line}


def parse_suppressions(
    source: str, known_codes: set[str]
) -> tuple[list[Suppression], list[tuple[int, str]]]:
    """The valid suppressions in ``source`` and ``(line, problem)`` for the invalid ones."""
    comments = _comments(source)
    if not comments:
        return [], []
    spans = _statement_spans(source)
    suppressions: list[Suppression] = []
    problems: list[tuple[int, str]] = []
    for line, own_line, text in comments:
        match = _PATTERN.search(text)
        if match is None:
            continue
        codes = tuple(code.strip().upper() for code in match["codes"].split(",") if code.strip())
        reason = re.sub(r"^reason\s*:\s*", "", match["reason"].strip(), flags=re.IGNORECASE)
        unknown = [code for code in codes if code not in known_codes]
        if not codes or unknown:
            problems.append(
                (
                    line,
                    f"suppression names unknown rule code(s): {', '.join(unknown)}"
                    if unknown
                    else "suppression names no rule code",
                )
            )
            continue
        if not reason:
            problems.append((line, f"suppression of {', '.join(codes)} gives no reason"))
            continue
        file_level = match["kind"].lower() == "ignore-file"
        start, end = _covered(line, own_line, spans)
        suppressions.append(Suppression(codes, reason, line, start, end, file_level))
    return suppressions, problems


def _comments(source: str) -> list[tuple[int, bool, str]]:
    found: list[tuple[int, bool, str]] = []
    if "abmigrate:" not in source:
        return found
    try:
        tokens = list(tokenize.generate_tokens(io.StringIO(source).readline))
    except (tokenize.TokenError, SyntaxError):
        return found
    code_lines = {
        token.start[0]
        for token in tokens
        if token.type
        not in (
            tokenize.COMMENT,
            tokenize.NL,
            tokenize.NEWLINE,
            tokenize.INDENT,
            tokenize.DEDENT,
            tokenize.ENDMARKER,
        )
    }
    for token in tokens:
        if token.type == tokenize.COMMENT and "abmigrate:" in token.string:
            found.append((token.start[0], token.start[0] not in code_lines, token.string))
    return found


def _statement_spans(source: str) -> list[tuple[int, int]]:
    try:
        tree = ast.parse(source)
    except SyntaxError:
        return []
    return [
        (node.lineno, node.end_lineno or node.lineno)
        for node in ast.walk(tree)
        if isinstance(node, ast.stmt)
    ]


def _covered(line: int, own_line: bool, spans: list[tuple[int, int]]) -> tuple[int, int]:
    if own_line:
        following = [span for span in spans if span[0] > line]
        if not following:
            return line, line
        first = min(start for start, _ in following)
        return first, max(end for start, end in following if start == first)
    containing = [span for span in spans if span[0] <= line <= span[1]]
    if not containing:
        return line, line
    return min(containing, key=lambda span: span[1] - span[0])
