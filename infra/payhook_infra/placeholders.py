"""`${name}` placeholders in the dashboard and alarm files, and the code that fills them.

Syntax (documented in dashboards/README.md and alarms/README.md):

- `${name}` or `${group.key}` inside any JSON string is replaced by a string value; a
  string may hold several placeholders and other text around them.
- A *list* placeholder (only `${alarm_arns}` today) may appear only as a whole array
  element, `["${alarm_arns}"]`; the element is replaced by every value of the list.
- Any other `$` followed by `{` is an error, as is a placeholder with no value: a file
  never reaches AWS half filled.
"""

from __future__ import annotations

import functools
import json
import re
from pathlib import Path
from typing import Any, Iterator, Mapping, Sequence

#: Which placeholders the deploy fills: `placeholders.json` at the repository root, the one
#: list this package and `payhook check` (cli/cloudwatch/src/check/stack.rs) both read.
VOCABULARY_FILE = Path(__file__).resolve().parents[2] / "placeholders.json"


@functools.cache
def vocabulary() -> Mapping[str, Any]:
    """The parsed placeholder vocabulary file."""
    return json.loads(VOCABULARY_FILE.read_text(encoding="utf-8"))

#: `${region}`, `${queue.stripe}`, `${function.webhook-validator}`.
PLACEHOLDER = re.compile(r"\$\{([a-z][a-z0-9_]*(?:\.[a-z0-9][a-z0-9_-]*)?)\}")
_ANY_DOLLAR_BRACE = re.compile(r"\$\{[^}]*\}?")


class PlaceholderError(ValueError):
    """A file uses a placeholder that cannot be filled; the message has file and JSON path."""


def _walk_strings(value: Any, path: str) -> Iterator[tuple[str, str]]:
    if isinstance(value, str):
        yield path, value
    elif isinstance(value, list):
        for index, item in enumerate(value):
            yield from _walk_strings(item, f"{path}[{index}]")
    elif isinstance(value, dict):
        for key, item in value.items():
            yield from _walk_strings(item, f"{path}.{key}")


def placeholders_in(document: Any) -> set[str]:
    """Every placeholder name used anywhere in a parsed JSON document."""
    names: set[str] = set()
    for _, text in _walk_strings(document, "$"):
        names.update(PLACEHOLDER.findall(text))
    return names


def malformed_placeholders(document: Any) -> list[tuple[str, str]]:
    """`(json_path, text)` of every `${...}` that does not follow the placeholder syntax."""
    found = []
    for path, text in _walk_strings(document, "$"):
        for match in _ANY_DOLLAR_BRACE.finditer(text):
            if not PLACEHOLDER.fullmatch(match.group(0)):
                found.append((path, match.group(0)))
    return found


def fill(
    document: Any,
    values: Mapping[str, str],
    lists: Mapping[str, Sequence[str]] | None = None,
    *,
    source: str = "<document>",
) -> Any:
    """Return a copy of `document` with every placeholder filled.

    `values` holds the string placeholders, `lists` the list placeholders. Raises
    `PlaceholderError` naming `source` and the JSON path for unknown, malformed or misplaced
    placeholders.
    """
    lists = lists or {}
    bad = malformed_placeholders(document)
    if bad:
        path, text = bad[0]
        raise PlaceholderError(f"{source}: {path}: malformed placeholder {text!r}")

    def fill_string(text: str, path: str) -> str:
        def replace(match: re.Match[str]) -> str:
            name = match.group(1)
            if name in values:
                return str(values[name])
            if name in lists:
                raise PlaceholderError(
                    f"{source}: {path}: list placeholder ${{{name}}} must be a whole array "
                    "element on its own"
                )
            raise PlaceholderError(f"{source}: {path}: unknown placeholder ${{{name}}}")

        return PLACEHOLDER.sub(replace, text)

    def visit(value: Any, path: str) -> Any:
        if isinstance(value, str):
            return fill_string(value, path)
        if isinstance(value, list):
            out: list[Any] = []
            for index, item in enumerate(value):
                whole = PLACEHOLDER.fullmatch(item) if isinstance(item, str) else None
                if whole and whole.group(1) in lists:
                    out.extend(lists[whole.group(1)])
                else:
                    out.append(visit(item, f"{path}[{index}]"))
            return out
        if isinstance(value, dict):
            return {key: visit(item, f"{path}.{key}") for key, item in value.items()}
        return value

    return visit(document, "$")
