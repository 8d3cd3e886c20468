"""Route matching and recipient lists: which systems receive an event.

The rules are data, the `routes:` section of the config file (hub/config.py
loads and checks them); this module only evaluates them. A rule matches on the
event type (glob), the source system (glob) and values inside `data` (JSON
pointers). It names fixed destinations, or takes the recipients from the
content (`from_data`) or from an extension attribute of the envelope
(`from_attribute`, e.g. the task platform's `recipient`): a system id names one
system, an organisation code every system of that organisation allowed to
receive the type.

Nothing is delivered to a system that may not receive the type, and the
sender never gets its own message back unless a rule names it as a fixed
destination.
"""

from __future__ import annotations

import difflib
import json
import re
from collections.abc import Collection, Mapping
from dataclasses import dataclass, field
from fnmatch import fnmatchcase
from functools import lru_cache
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from hub.config import HubConfig, System
    from hub.directory import Directory

_INDEX = re.compile(r"^(0|[1-9][0-9]*)$")


@dataclass(frozen=True)
class RoutingRule:
    """One entry of `routes:`: when an event matches, where it goes."""

    name: str
    type: str
    source: str | None
    data: tuple[tuple[str, tuple[Any, ...]], ...]
    to: tuple[str, ...]
    from_data: str | None
    from_attribute: str | None = None

    @classmethod
    def from_mapping(cls, raw: Mapping[str, Any]) -> RoutingRule:
        """Build a rule from one schema-valid entry of the config's `routes:`."""
        match, to = raw["match"], raw["to"]
        conditions = tuple(
            (pointer, tuple(values)) for pointer, values in match.get("data", {}).items()
        )
        return cls(
            name=raw["name"],
            type=match["type"],
            source=match.get("source"),
            data=conditions,
            to=tuple(to) if isinstance(to, list) else (),
            from_data=to.get("from_data") if isinstance(to, Mapping) else None,
            from_attribute=to.get("from_attribute") if isinstance(to, Mapping) else None,
        )

    def check(
        self, systems: Mapping[str, System], types: Collection[str]
    ) -> list[tuple[tuple[str | int, ...], str]]:
        """What makes this rule wrong for a config: (path inside the rule, problem) pairs.

        The type glob must match a known type, and each fixed destination must be a
        configured system allowed to receive every type the glob matches.
        """
        matching = [t for t in types if fnmatchcase(t, self.type)]
        problems: list[tuple[tuple[str | int, ...], str]] = []
        if not matching:
            hint = _hint(self.type, types)
            problems.append((("match", "type"), f"type {self.type!r} matches no known type{hint}"))
        for i, dest in enumerate(self.to):
            system = systems.get(dest)
            if system is None:
                hint = _hint(dest, systems)
                problems.append(
                    (("to", i), f"destination {dest!r} is not a configured system{hint}")
                )
            elif refused := [t for t in matching if not system.can_receive(t)]:
                problems.append(
                    (("to", i), f"destination {dest} may not receive {', '.join(refused)}")
                )
        return problems

    def matches(self, event: Mapping[str, Any]) -> bool:
        """True when type, source and every data condition hold for `event`."""
        type_, source = event.get("type"), event.get("source")
        if not isinstance(type_, str) or not fnmatchcase(type_, self.type):
            return False
        if self.source is not None and not (
            isinstance(source, str) and fnmatchcase(source, self.source)
        ):
            return False
        data = event.get("data")
        return all(_holds(data, pointer, allowed) for pointer, allowed in self.data)


@dataclass(frozen=True)
class RouteDecision:
    """Where an event goes, and which recipients it names were refused and why."""

    destinations: dict[str, tuple[str, ...]]
    refused: tuple[tuple[str, str], ...] = ()
    matched: tuple[str, ...] = ()

    @property
    def unroutable(self) -> bool:
        """No destination at all: the caller dead-letters or reports the event."""
        return not self.destinations


def route(
    config: HubConfig, event: Mapping[str, Any], directory: Directory | None = None
) -> RouteDecision:
    """Apply every rule of `config` to `event` and merge what the matching ones choose.

    An organisation code among the recipients means the systems of that organisation
    in the config, or else the one the `directory` names (hub/directory.py).
    """
    decider = _Decider(config, event, directory)
    for rule in config.routes:
        if rule.matches(event):
            decider.apply(rule)
    return decider.decision()


def resolve(document: Any, pointer: str, *, wildcard: bool = False) -> list[Any]:
    """Values at a JSON pointer (RFC 6901); none when it is missing.

    With `wildcard`, a `*` token takes every item of an array or value of an object.
    """
    found = [document]
    for token in _tokens(pointer):
        found = [value for parent in found for value in _step(parent, token, wildcard)]
    return found


@lru_cache(maxsize=4096)
def _tokens(pointer: str) -> tuple[str, ...]:
    if not pointer:
        return ()
    if not pointer.startswith("/"):
        raise ValueError(f"JSON pointer must start with '/': {pointer!r}")
    return tuple(t.replace("~1", "/").replace("~0", "~") for t in pointer[1:].split("/"))


def _step(parent: Any, token: str, wildcard: bool) -> list[Any]:
    if wildcard and token == "*":
        if isinstance(parent, Mapping):
            return list(parent.values())
        return list(parent) if isinstance(parent, (list, tuple)) else []
    if isinstance(parent, Mapping):
        return [parent[token]] if token in parent else []
    if isinstance(parent, (list, tuple)) and _INDEX.match(token) and int(token) < len(parent):
        return [parent[int(token)]]
    return []


def _hint(word: str, known: Collection[str]) -> str:
    close = difflib.get_close_matches(word, sorted(known), n=1)
    return f"; did you mean {close[0]!r}?" if close else ""


def _holds(data: Any, pointer: str, allowed: tuple[Any, ...]) -> bool:
    values = resolve(data, pointer)
    return bool(values) and any(_same(values[0], a) for a in allowed)


def _same(a: Any, b: Any) -> bool:
    """JSON equality: true is not 1, 2 is 2.0."""
    if isinstance(a, bool) or isinstance(b, bool):
        return a is b
    return bool(a == b)


def _written(value: Any) -> str:
    """A recipient as written in the content, for the refusal list."""
    text = value if isinstance(value, str) else json.dumps(value, ensure_ascii=False, default=str)
    return text if len(text) <= 200 else text[:199] + "…"


@dataclass
class _Decider:
    """Collects what the matching rules choose and refuse for one event."""

    config: HubConfig
    event: Mapping[str, Any]
    directory: Directory | None = None
    chosen: dict[str, list[str]] = field(default_factory=dict)
    refused: dict[tuple[str, str], None] = field(default_factory=dict)
    echoes: dict[tuple[str, str], None] = field(default_factory=dict)
    matched: list[str] = field(default_factory=list)

    @property
    def type(self) -> str:
        return str(self.event.get("type"))

    def apply(self, rule: RoutingRule) -> None:
        self.matched.append(rule.name)
        for dest in rule.to:
            self._fixed(dest, rule.name)
        if rule.from_data is not None:
            for value in resolve(self.event.get("data"), rule.from_data, wildcard=True):
                self._recipient(value, rule.name)
        if rule.from_attribute is not None:
            value = self.event.get(rule.from_attribute)
            if value is None:
                self.refused[rule.from_attribute, "the envelope names no recipient there"] = None
            else:
                self._recipient(value, rule.name)

    def decision(self) -> RouteDecision:
        refused = list(self.refused)
        if self.event.get("source") not in self.chosen:
            refused += [echo for echo in self.echoes if echo not in self.refused]
        return RouteDecision(
            destinations={dest: tuple(rules) for dest, rules in self.chosen.items()},
            refused=tuple(refused),
            matched=tuple(self.matched),
        )

    def _fixed(self, dest: str, rule: str) -> None:
        # Load checks make both refusals impossible; never deliver if they happen anyway.
        system = self.config.systems.get(dest)
        if system is None:
            self.refused[dest, f"{dest!r} is not a configured system"] = None
        elif not system.can_receive(self.type):
            self.refused[dest, f"system {dest} may not receive {self.type}"] = None
        else:
            self._choose(dest, rule)

    def _recipient(self, value: Any, rule: str) -> None:
        if not isinstance(value, str):
            self.refused[
                _written(value), f"a recipient must be a string, not {type(value).__name__}"
            ] = None
        elif ":" in value:
            self._recipient_system(value, rule)
        else:
            self._recipient_organ(value, rule)

    def _recipient_system(self, sid: str, rule: str) -> None:
        system = self.config.systems.get(sid)
        if system is None:
            self.refused[_written(sid), f"{_written(sid)!r} is not a configured system"] = None
        elif not system.can_receive(self.type):
            self.refused[sid, f"system {sid} may not receive {self.type}"] = None
        elif sid == self.event.get("source"):
            self.echoes[
                sid, f"system {sid} is the sender; a message is not sent back to its sender"
            ] = None
        else:
            self._choose(sid, rule)

    def _recipient_organ(self, code: str, rule: str) -> None:
        members = [s for s in self.config.systems.values() if s.organ == code]
        if self.directory is not None and (not members or self.directory.listed(code)):
            listed = self.directory.system_for(code)
            if listed is not None:
                self._recipient_system(listed, rule)
                return
        able = [s.id for s in members if s.can_receive(self.type)]
        others = [sid for sid in able if sid != self.event.get("source")]
        if not members:
            reason = f"unknown recipient: no system receives for organisation {_written(code)!r}"
            self.refused[_written(code), reason] = None
        elif not able:
            self.refused[code, f"no system of organisation {code} may receive {self.type}"] = None
        elif not others:
            reason = (
                f"the only system of organisation {code} that may receive {self.type} is the sender"
            )
            self.echoes[code, reason] = None
        for sid in others:
            self._choose(sid, rule)

    def _choose(self, dest: str, rule: str) -> None:
        rules = self.chosen.setdefault(dest, [])
        if rule not in rules:
            rules.append(rule)
