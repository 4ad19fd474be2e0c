"""The OData run filters azureml-core sends to run history, parsed: the fake answers queries with them."""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from typing import Any


class ODataFilter:
    """The run filters the SDK builds (azureml/_restclient/_odata/constants.py and runs.py): comparisons
    ``Field eq value`` / ``Field ne value`` on RunType, Status, ParentRunId, Tags/<k> and Properties/<k>,
    joined with ``and`` / ``or`` and parentheses; values are JSON strings (value_to_odata_string), quoted
    strings, null, or bare words (run types)."""

    TOKEN = re.compile(r"""\s*(\(|\)|"(?:[^"\\]|\\.)*"|'(?:[^']|'')*'|[^\s()]+)""")

    def __init__(self, text: str) -> None:
        self.tokens = [t for t in self.TOKEN.findall(text) if t]
        self.position = 0

    def parse(self) -> Callable[[dict[str, Any]], bool]:
        expression = self._or()
        if self.position != len(self.tokens):
            raise ValueError(f"unexpected {self.tokens[self.position]!r} in the filter")
        return expression

    def _next(self) -> str:
        token = self.tokens[self.position]
        self.position += 1
        return token

    def _peek(self) -> str | None:
        return self.tokens[self.position] if self.position < len(self.tokens) else None

    def _or(self) -> Callable[[dict[str, Any]], bool]:
        parts = [self._and()]
        while self._peek() == "or":
            self._next()
            parts.append(self._and())
        return lambda run: any(part(run) for part in parts)

    def _and(self) -> Callable[[dict[str, Any]], bool]:
        parts = [self._atom()]
        while self._peek() == "and":
            self._next()
            parts.append(self._atom())
        return lambda run: all(part(run) for part in parts)

    def _atom(self) -> Callable[[dict[str, Any]], bool]:
        if self._peek() == "(":
            self._next()
            inner = self._or()
            self._next()  # ")"
            return inner
        name, operator, raw = self._next(), self._next(), self._next()
        value: str | None = raw
        if raw == "null":
            value = None
        elif raw.startswith('"'):  # value_to_odata_string: a JSON string (azureml/_restclient/_odata/helpers.py)
            value = json.loads(raw)
        elif raw.startswith("'"):
            value = raw[1:-1].replace("''", "'")

        def field(run: dict[str, Any]) -> Any:
            if "/" in name:
                section, _, key = name.partition("/")
                return (run.get(section[0].lower() + section[1:]) or {}).get(key)
            return run.get(name[0].lower() + name[1:])

        if operator == "eq":
            return lambda run: field(run) == value
        if operator == "ne":
            return lambda run: field(run) != value
        raise ValueError(f"operator {operator!r} is not one the SDK sends")
