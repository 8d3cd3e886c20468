"""The hub's config file (HUB_CONFIG): systems, routes, message types and operators.

Loaded once at start-up from YAML, validated against hub/schemas/config.json,
then checked for what a schema cannot say (unique ids and keys, known connector
kinds, routes that name configured systems allowed to receive their types) and
frozen into dataclasses. Every problem is a ConfigError naming the file and the
line of the offending node; start-up stops.
"""

from __future__ import annotations

import difflib
import hashlib
import hmac
import ipaddress
import json
import os
import re
import socket
from collections.abc import Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass, field, fields
from fnmatch import fnmatchcase
from functools import cache
from pathlib import Path
from types import MappingProxyType
from typing import Any, NoReturn, TypeVar
from urllib.parse import urlsplit

import yaml
from jsonschema import Draft202012Validator
from jsonschema.exceptions import SchemaError, ValidationError

from hub.envelope import nfc
from hub.errors import ConfigError
from hub.logs import secret_name
from hub.passwords import well_formed
from hub.routing.rules import RoutingRule
from hub.tls import normalise

SCHEMAS = Path(__file__).parent / "schemas"
ROLES = ("viewer", "operator", "admin")
TYPE_NAME = re.compile(r"^vn\.lgsp(\.[a-z0-9_]+)+\.v[0-9]+$")
# An organisation code (000.00.00.H29, or the shorter 28.22.H17 some producers
# write, as in the VPCP SDK samples), a colon, the system's name.
SYSTEM_ID = re.compile(r"^(?:[A-Z0-9]{2,3}\.){2,3}[A-Z][0-9]{2}:[a-z0-9][a-z0-9_.-]*$")
_BUILTIN_FILE = re.compile(r"^[a-z0-9_]+(\.[a-z0-9_]+)+\.v[0-9]+\.json$")
_MAX_DEPTH = 50
_KEY_HASH = re.compile(r"^sha256\$([0-9a-f]{16})\$[0-9a-f]{32}\$[0-9a-f]{64}$")

JsonPath = tuple[str | int, ...]
_Owner = TypeVar("_Owner")


@dataclass(frozen=True)
class RetryPolicy:
    """Seconds to wait between tries of one delivery; after the last try, the dead-letter store."""

    delays: tuple[float, ...] = (1.0, 5.0, 30.0, 120.0, 600.0)

    @property
    def max_attempts(self) -> int:
        """Tries in all, the first one included."""
        return len(self.delays) + 1

    def next_delay(self, failed_attempts: int) -> float | None:
        """Seconds to wait after the `failed_attempts`-th failed try (1-based), None when exhausted.

        With delays (1, 5) there are 3 tries in all:
        next_delay(1) == 1, next_delay(2) == 5, next_delay(3) is None (dead letter).
        """
        if failed_attempts < 1:
            raise ValueError(f"failed_attempts counts from 1, got {failed_attempts}")
        return self.delays[failed_attempts - 1] if failed_attempts <= len(self.delays) else None


@dataclass(frozen=True)
class System:
    """A registered external system, `<organ code>:<name>`: its rights and delivery settings."""

    id: str
    name: str
    kind: str
    endpoint: str | None
    api_key: str | None = field(repr=False)
    may_send: tuple[str, ...]
    may_receive: tuple[str, ...]
    retry: RetryPolicy
    timeout: float = 10.0
    concurrency: int = 16
    options: Mapping[str, Any] = field(default_factory=lambda: MappingProxyType({}))

    @property
    def organ(self) -> str:
        """The organisation's electronic code, e.g. 000.00.00.H29."""
        return self.id.partition(":")[0]

    def can_send(self, type_: str) -> bool:
        return any(fnmatchcase(type_, glob) for glob in self.may_send)

    def can_receive(self, type_: str) -> bool:
        return any(fnmatchcase(type_, glob) for glob in self.may_receive)


_SYSTEM_KEYS = {f.name for f in fields(System)} - {"options"}


@dataclass(frozen=True)
class MessageType:
    """A message type and the JSON Schema of its `data`."""

    type: str
    schema_path: Path
    schema: Mapping[str, Any]
    builtin: bool


@dataclass(frozen=True)
class Operator:
    """A person or tool using the console and the operations API."""

    name: str
    api_key: str | None = field(repr=False)
    role: str
    # scrypt hash of the console password (hub/passwords.py); none: API key only.
    password_hash: str | None = field(default=None, repr=False)
    # salted hash of an API key issued by `hub systems new-key` (hub/keys.py)
    api_key_hash: str | None = field(default=None, repr=False)

    def may(self, role: str) -> bool:
        """True when this operator's role is `role` or above (viewer < operator < admin)."""
        return ROLES.index(self.role) >= ROLES.index(role)


@dataclass(frozen=True)
class HubConfig:
    """The whole config file, checked and frozen."""

    path: Path
    systems: Mapping[str, System]
    types: Mapping[str, MessageType]
    routes: tuple[RoutingRule, ...]
    operators: tuple[Operator, ...]
    _system_keys: tuple[tuple[bytes, System], ...] = field(init=False, repr=False, compare=False)
    _operator_keys: tuple[tuple[bytes, Operator], ...] = field(
        init=False, repr=False, compare=False
    )

    def __post_init__(self) -> None:
        systems = tuple((_digest(s.api_key), s) for s in self.systems.values() if s.api_key)
        object.__setattr__(self, "_system_keys", systems)
        object.__setattr__(
            self,
            "_operator_keys",
            tuple((_digest(o.api_key), o) for o in self.operators if o.api_key),
        )

    def secrets(self) -> list[str]:
        """Every secret the config holds: keys, passwords in endpoints, outbound keys."""
        found: list[str | None] = [o.api_key for o in self.operators]
        for system in self.systems.values():
            found += [system.api_key, urlsplit(system.endpoint or "").password]
            for name, value in system.options.items():
                if isinstance(value, str) and secret_name(name):
                    # `env:NAME` options are resolved where used: keep the value too
                    found.append(value)
                    if value.startswith("env:"):
                        found.append(os.environ.get(value[4:]))
        return [f for f in found if f]

    def system_by_key(self, key: str) -> System | None:
        """The system whose api key is `key`; the time taken does not tell which keys exist."""
        return _by_key(self._system_keys, key)

    def operator_by_key(self, key: str) -> Operator | None:
        """The operator whose api key is `key`; the time taken does not tell which keys exist."""
        return _by_key(self._operator_keys, key)

    def operator(self, name: str) -> Operator | None:
        """The operator called `name` (console sign-in)."""
        return next((o for o in self.operators if o.name == name), None)


def _digest(key: str) -> bytes:
    return hashlib.sha256(key.encode("utf-8")).digest()


def _by_key(table: Sequence[tuple[bytes, _Owner]], key: str) -> _Owner | None:
    # Compare equal-length digests with every entry, without stopping at the first hit.
    digest, found = _digest(key), None
    for stored, owner in table:
        if hmac.compare_digest(stored, digest):
            found = owner
    return found if key else None


def builtin_types() -> dict[str, MessageType]:
    """The types whose schemas ship in hub/schemas/ (demo.note.v1.json: vn.lgsp.demo.note.v1)."""
    return dict(_builtin_types())


@cache
def _builtin_types() -> Mapping[str, MessageType]:
    found = {}
    for file in sorted(SCHEMAS.glob("*.json")):
        if _BUILTIN_FILE.match(file.name):
            name = "vn.lgsp." + file.name.removesuffix(".json")
            try:
                found[name] = MessageType(name, file, _read_schema(file), builtin=True)
            except _BadSchema as exc:
                raise ConfigError(str(file), None, str(exc)) from exc
    return MappingProxyType(found)


class _BadSchema(Exception):
    """A type's schema file is missing, unreadable or not a Draft 2020-12 schema."""


def _read_schema(file: Path) -> dict[str, Any]:
    """A JSON Schema file. Raises _BadSchema saying what is wrong with it."""
    try:
        schema = json.loads(file.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise _BadSchema(f"schema file {file} not found") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise _BadSchema(f"schema file {file} cannot be read: {exc}") from exc
    except json.JSONDecodeError as exc:
        raise _BadSchema(f"schema file {file} is not valid JSON: {exc}") from exc
    if not isinstance(schema, dict):
        raise _BadSchema(f"schema file {file} does not hold a JSON object")
    try:
        Draft202012Validator.check_schema(schema)
    except SchemaError as exc:
        raise _BadSchema(
            f"schema file {file} is not a valid Draft 2020-12 schema: {exc.message}"
        ) from exc
    return schema


def load_config(
    path: Path | str,
    *,
    environ: Mapping[str, str] | None = None,
    kinds: Collection[str] | None = None,
) -> HubConfig:
    """Read, validate and freeze the config file.

    Args:
        environ: where `env:NAME` api keys are read (default: os.environ).
        kinds: the known connector kinds (default: the keys of hub.connectors.CONNECTORS).

    Raises:
        ConfigError: naming the file, the line of the first problem and every problem found.
    """
    path = Path(path)
    doc = _Document.read(path)
    doc.check_schema()
    check = _Checker(
        doc, os.environ if environ is None else environ, _known_kinds() if kinds is None else kinds
    )
    types = check.types(doc.value.get("types", []), path.parent)
    systems = check.systems(doc.value["systems"])
    operators = check.operators(doc.value.get("operators", []))
    routes = check.routes(doc.value.get("routes", []), systems, types)
    doc.raise_problems()
    return HubConfig(path, MappingProxyType(systems), MappingProxyType(types), routes, operators)


def _known_kinds() -> Collection[str]:
    try:
        from hub.connectors import CONNECTORS
    except ImportError:
        return {"http"}
    return set(CONNECTORS)


@dataclass
class _Document:
    """A YAML file as a plain value, the line of each node, and the problems found in it."""

    file: str
    value: Any = None
    lines: dict[JsonPath, int] = field(default_factory=dict)
    key_lines: dict[JsonPath, int] = field(default_factory=dict)
    problems: list[tuple[int | None, str]] = field(default_factory=list)

    @classmethod
    def read(cls, path: Path) -> _Document:
        doc = cls(str(path))
        try:
            node = yaml.compose(path.read_text(encoding="utf-8"), Loader=yaml.SafeLoader)
            if node is None:
                doc.fail(None, "the file is empty; it needs a systems: section")
            doc.value = doc._build(node, (), yaml.constructor.SafeConstructor())
        except (OSError, UnicodeDecodeError) as exc:
            doc.fail(None, f"cannot read the config file: {exc}", exc)
        except yaml.MarkedYAMLError as exc:
            mark = exc.problem_mark or exc.context_mark
            doc.fail(mark.line + 1 if mark else None, f"YAML: {exc.problem or exc}", exc)
        except yaml.YAMLError as exc:
            doc.fail(None, f"YAML: {exc}", exc)
        return doc

    def _build(self, node: yaml.Node, at: JsonPath, ctor: yaml.constructor.SafeConstructor) -> Any:
        """The value of `node` (strings in NFC), recording lines on the way."""
        self.lines.setdefault(at, node.start_mark.line + 1)
        if len(at) > _MAX_DEPTH:
            self.fail(self.lines[at], "nesting too deep (a recursive alias?)")
        if isinstance(node, yaml.SequenceNode):
            return [self._build(item, at + (i,), ctor) for i, item in enumerate(node.value)]
        if not isinstance(node, yaml.MappingNode):
            return nfc(ctor.construct_object(node))
        out: dict[str, Any] = {}
        for key_node, value_node in node.value:
            line = key_node.start_mark.line + 1
            if key_node.tag == "tag:yaml.org,2002:merge":
                self.fail(line, "merge keys (<<) are not supported; alias whole values instead")
            key = nfc(ctor.construct_object(key_node))
            if not isinstance(key, str):
                self.fail(line, f"{_dotted(at)}: key {key!r} is not a string")
            if key in out:
                first = self.key_lines[at + (key,)]
                self.fail(line, f"{_dotted(at + (key,))}: duplicate key (first at line {first})")
            self.key_lines[at + (key,)] = line
            out[key] = self._build(value_node, at + (key,), ctor)
        return out

    def fail(self, line: int | None, detail: str, cause: Exception | None = None) -> NoReturn:
        """Stop at a problem that leaves nothing else worth checking."""
        self.problems.append((line, detail))
        raise self.error() from cause

    def line(self, at: Sequence[str | int]) -> int | None:
        """Line of the node at `at`, or of its nearest ancestor that exists."""
        path = tuple(at)
        while path and path not in self.lines:
            path = path[:-1]
        return self.lines.get(path)

    def add(self, at: JsonPath, message: str) -> None:
        self.problems.append((self.line(at), message))

    def check_schema(self) -> None:
        """Record every error against hub/schemas/config.json, in file order, and raise."""
        self.problems += [self._describe(e) for e in _config_validator().iter_errors(self.value)]
        self.problems.sort(key=lambda problem: problem[0] or 0)
        self.raise_problems()

    def _describe(self, error: ValidationError) -> tuple[int | None, str]:
        """Line and text of a schema error; an unexpected key is shown at its own line."""
        at, message = tuple(error.absolute_path), error.message
        line = self.line(at)
        if error.validator == "additionalProperties" and isinstance(error.instance, dict):
            known = error.schema.get("properties", {}) if isinstance(error.schema, dict) else {}
            extra = [key for key in error.instance if key not in known]
            line = self.key_lines.get(at + tuple(extra[:1]), line)
            message += _hint(extra[0], known) if extra else ""
        message = message if len(message) < 300 else message[:299] + "…"
        return line, f"{self._owner(at)}{_dotted(at)}: {message}"

    def _owner(self, at: JsonPath) -> str:
        """ "route 'name': " when `at` is inside a route, "system 'id': " inside a system."""
        if len(at) < 2 or at[0] not in ("routes", "systems") or not isinstance(at[1], int):
            return ""
        item, label = self.value[at[0]][at[1]], "name" if at[0] == "routes" else "id"
        name = item.get(label) if isinstance(item, dict) else None
        return f"{str(at[0])[:-1]} {name!r}: " if isinstance(name, str) else ""

    def raise_problems(self) -> None:
        if self.problems:
            raise self.error()

    def error(self) -> ConfigError:
        """The problems found so far, the first one as the detail and line."""
        listed = [f"line {n}: {message}" if n else message for n, message in self.problems]
        return ConfigError(self.file, self.problems[0][0], self.problems[0][1], listed)


@cache
def _config_validator() -> Draft202012Validator:
    schema = json.loads((SCHEMAS / "config.json").read_text(encoding="utf-8"))
    Draft202012Validator.check_schema(schema)
    return Draft202012Validator(schema)


def _dotted(at: Iterable[str | int]) -> str:
    """systems[0].retry.delays[1], the path an operator reads."""
    text = "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in at).lstrip(".")
    return text or "(top level)"


def _hint(word: str, known: Collection[str]) -> str:
    close = difflib.get_close_matches(word, sorted(known), n=1)
    return f"; did you mean {close[0]!r}?" if close else ""


@dataclass
class _Checker:
    """The checks a schema cannot make, each problem recorded with the line of its node."""

    doc: _Document
    environ: Mapping[str, str]
    kinds: Collection[str]
    keys: dict[str, tuple[str, int | None]] = field(default_factory=dict)

    def types(self, items: list[dict[str, Any]], base: Path) -> dict[str, MessageType]:
        types = builtin_types()
        first: dict[str, int | None] = {}
        for i, raw in enumerate(items):
            at, name = ("types", i, "type"), raw["type"]
            if not TYPE_NAME.match(name):
                self.doc.add(at, f"type name {name!r} is not like vn.lgsp.<domain>.<event>.v<N>")
            elif name in types and types[name].builtin:
                self.doc.add(at, f"type {name} redefines the built-in type of that name")
            elif name in types:
                self.doc.add(at, f"duplicate type {name} (first at line {first[name]})")
            else:
                first[name], file = self.doc.line(at), base / raw["schema"]
                schema = self._schema(file, ("types", i, "schema"))
                types[name] = MessageType(name, file, schema, builtin=False)
        return types

    def _schema(self, file: Path, at: JsonPath) -> dict[str, Any]:
        try:
            return _read_schema(file)
        except _BadSchema as exc:
            self.doc.add(at, str(exc))
            return {}

    def systems(self, items: list[dict[str, Any]]) -> dict[str, System]:
        systems: dict[str, System] = {}
        first: dict[str, int | None] = {}
        signers: dict[str, str] = {}  # axis_system_id -> the system signing with it
        for i, raw in enumerate(items):
            at, sid = ("systems", i), raw["id"]
            if sid in systems:
                self.doc.add(
                    at + ("id",), f"duplicate system id {sid} (first at line {first[sid]})"
                )
                continue
            if not SYSTEM_ID.match(sid):
                self.doc.add(
                    at + ("id",),
                    f"system id {sid!r} is not <organ code>:<name>, like 000.00.00.H29:qlvb",
                )
            self._connection(raw, at)
            self._key_hash(raw, at, f"system {sid}")
            self._rate_limit(raw, at, sid)
            self._tls(raw, at, sid)
            first[sid] = self.doc.line(at + ("id",))
            systems[sid] = _system(raw, self._secret(raw.get("api_key"), at, f"system {sid}"))
            axis_id = raw.get("axis_system_id")
            if axis_id is not None and axis_id in signers:
                self.doc.add(
                    at + ("axis_system_id",),
                    f"axis_system_id {axis_id!r} of {sid} is that of {signers[axis_id]}",
                )
            elif axis_id is not None:
                signers[axis_id] = sid
        return systems

    def _connection(self, raw: Mapping[str, Any], at: JsonPath) -> None:
        sid, kind, endpoint = raw["id"], raw["kind"], raw.get("endpoint")
        if kind not in self.kinds:
            hint = _hint(kind, self.kinds)
            self.doc.add(at + ("kind",), f"unknown kind {kind!r} of system {sid}{hint}")
        if kind in ("http", "national_axis") and raw.get("may_receive") and endpoint is None:
            self.doc.add(at, f"system {sid} of kind {kind} may receive but has no endpoint")
        if ("axis_system_id" in raw) != ("axis_secret" in raw):
            self.doc.add(at, f"system {sid}: axis_system_id and axis_secret go together")
        if kind == "national_axis":
            if not raw.get("api_key"):
                self.doc.add(at, f"system {sid} of kind national_axis needs api_key (its secret)")
            if not isinstance(raw.get("system_id"), str) or not raw["system_id"]:
                self.doc.add(at, f"system {sid} of kind national_axis needs system_id (the city's)")
        if endpoint is not None and not _is_http_url(endpoint):
            self.doc.add(at + ("endpoint",), f"endpoint of {sid} is not an http(s) URL: {endpoint}")
        elif (
            endpoint is not None
            and raw.get("allow_link_local") is not True
            and (why := _forbidden_target(endpoint))
        ):
            self.doc.add(
                at + ("endpoint",),
                f"endpoint of {sid} points at {why}; set allow_link_local: true if meant",
            )

    def operators(self, items: list[dict[str, Any]]) -> tuple[Operator, ...]:
        operators: dict[str, Operator] = {}
        for i, raw in enumerate(items):
            at, name = ("operators", i), raw["name"]
            key = self._secret(raw.get("api_key"), at, f"operator {name}")
            key_hash = self._key_hash(raw, at, f"operator {name}")
            password = raw.get("password_hash")
            if password is not None and not well_formed(password):
                self.doc.add(
                    at + ("password_hash",),
                    f"password_hash of operator {name} is not one `hub operators hash-password`"
                    " prints",
                )
            if name in operators:
                self.doc.add(at + ("name",), f"duplicate operator name {name!r}")
            elif key is None and password is None and key_hash is None:
                if "api_key" not in raw:
                    self.doc.add(
                        at, f"operator {name} has none of api_key, api_key_hash, password_hash"
                    )
            else:
                operators[name] = Operator(name, key, raw["role"], password, key_hash)
        return tuple(operators.values())

    def _rate_limit(self, raw: Mapping[str, Any], at: JsonPath, sid: str) -> None:
        limit = raw.get("rate_limit")
        if limit is None:
            return
        ok = (
            isinstance(limit, Mapping)
            and set(limit) <= {"per_second", "burst"}
            and isinstance(limit.get("per_second"), int | float)
            and limit["per_second"] > 0
            and isinstance(limit.get("burst", 1), int | float)
            and limit.get("burst", 1) >= 1
        )
        if not ok:
            self.doc.add(
                at + ("rate_limit",),
                f"rate_limit of {sid} must be {{per_second: > 0, burst: >= 1}}, not {limit!r}",
            )

    def _tls(self, raw: Mapping[str, Any], at: JsonPath, sid: str) -> None:
        """`tls_subject` (the client certificate naming the system) is unique;
        `tls_required` (no key alone) needs one."""
        subject = raw.get("tls_subject")
        if subject is not None:
            if not isinstance(subject, str) or not (written := _subject(subject)):
                self.doc.add(at + ("tls_subject",), f"tls_subject of {sid} must read CN=...,O=...")
            elif (key := "tls:" + written) in self.keys:
                other, line = self.keys[key]
                self.doc.add(
                    at + ("tls_subject",), f"tls_subject of {sid} is that of {other} (line {line})"
                )
            else:
                self.keys[key] = (f"system {sid}", self.doc.line(at))
        required = raw.get("tls_required", False)
        if not isinstance(required, bool) or (required and subject is None):
            wrong = f"tls_required of {sid} must be true or false, with tls_subject"
            self.doc.add(at + ("tls_required",), wrong)

    def _key_hash(self, raw: Mapping[str, Any], at: JsonPath, owner: str) -> str | None:
        """The `api_key_hash:` of a system or operator, checked: well formed, id unique."""
        line = raw.get("api_key_hash")
        if line is None:
            return None
        found = _KEY_HASH.match(line) if isinstance(line, str) else None
        if found is None:
            self.doc.add(
                at + ("api_key_hash",),
                f"api_key_hash of {owner} is not one `hub systems new-key` prints",
            )
            return None
        if found.group(1) in self.keys:
            other, number = self.keys[found.group(1)]
            self.doc.add(
                at + ("api_key_hash",), f"key id of {owner} is that of {other} (line {number})"
            )
            return None
        self.keys[found.group(1)] = (owner, self.doc.line(at))
        return str(line)

    def _secret(self, value: str | None, at: JsonPath, owner: str) -> str | None:
        """Resolve `env:NAME`; check the key is not used by another system or operator."""
        if value is None:
            return None
        at, key = at + ("api_key",), value
        if value.startswith("env:"):
            key = self.environ.get(value[4:], "")
            if not key:
                unset = f"environment variable {value[4:]} (api_key of {owner}) is unset or empty"
                self.doc.add(at, unset)
                return None
        if key in self.keys:
            other, line = self.keys[key]
            self.doc.add(at, f"api key of {owner} is the same as that of {other} (line {line})")
        else:
            self.keys[key] = (owner, self.doc.line(at))
        return key

    def routes(
        self, items: list[dict[str, Any]], systems: Mapping[str, System], types: Collection[str]
    ) -> tuple[RoutingRule, ...]:
        rules: dict[str, RoutingRule] = {}
        for i, raw in enumerate(items):
            at, rule = ("routes", i), RoutingRule.from_mapping(raw)
            if rule.name in rules:
                self.doc.add(at + ("name",), f"duplicate route name {rule.name!r}")
            for where, message in rule.check(systems, types):
                self.doc.add(at + where, f"route {rule.name!r}: {message}")
            rules.setdefault(rule.name, rule)
        return tuple(rules.values())


def _system(raw: Mapping[str, Any], api_key: str | None) -> System:
    """A System from one schema-valid entry of `systems:`."""
    retry = RetryPolicy(tuple(float(d) for d in raw["retry"]["delays"])) if "retry" in raw else None
    return System(
        id=raw["id"],
        name=raw["name"],
        kind=raw["kind"],
        endpoint=raw.get("endpoint"),
        api_key=api_key,
        may_send=tuple(raw.get("may_send", ())),
        may_receive=tuple(raw.get("may_receive", ())),
        retry=retry or RetryPolicy(),
        timeout=float(raw.get("timeout", 10.0)),
        concurrency=int(raw.get("concurrency", 16)),
        options=MappingProxyType({k: v for k, v in raw.items() if k not in _SYSTEM_KEYS}),
    )


METADATA_HOSTS = {"metadata", "metadata.google.internal", "metadata.azure.internal"}


def _forbidden_target(url: str) -> str | None:
    """Why an outbound endpoint must not be used (a link-local or cloud metadata
    address: the classic way to turn a hub into a reader of its host's secrets)."""
    host = (urlsplit(url).hostname or "").rstrip(".").lower()
    if host in METADATA_HOSTS:
        return f"a cloud metadata service ({host})"
    address = _address(host)
    if address is None:
        # A name is not resolved here (no DNS wait at start-up): docs/SECURITY.md says
        # what this leaves open and what the network should add.
        return None
    if address.is_link_local or str(address) == "fd00:ec2::254":
        return f"a link-local address ({address})"
    return None


_NAT64 = ipaddress.ip_network("64:ff9b::/96")
_COMPATIBLE = ipaddress.ip_network("::/96")


def _address(host: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    """The address a host stands for, as the connection will reach it; None for a name.

    The resolver (getaddrinfo, used by httpx and aiohttp alike) reads IPv4 the way
    inet_aton does: `2852039166`, `0xa9fea9fe`, `0251.0376.0251.0376` and
    `169.254.43518` are all 169.254.169.254. IPv6 forms that carry an IPv4 address
    (mapped, compatible, 6to4, NAT64) are judged by that address.
    """
    try:
        v6 = ipaddress.IPv6Address(host.split("%", 1)[0])
    except ValueError:
        try:
            return ipaddress.IPv4Address(socket.inet_aton(host))
        except (OSError, ValueError):  # not an IPv4 form: a name
            return None
    if v6.ipv4_mapped is not None:
        return v6.ipv4_mapped
    if v6.sixtofour is not None:
        return v6.sixtofour
    if (v6 in _NAT64 or v6 in _COMPATIBLE) and int(v6) > 1:
        return ipaddress.IPv4Address(int(v6) & 0xFFFFFFFF)
    return v6


def _subject(text: str) -> str | None:
    try:
        return normalise(text)
    except ValueError:
        return None


def _is_http_url(text: str) -> bool:
    try:
        url = urlsplit(text)
        return url.scheme in ("http", "https") and bool(url.hostname)
    except ValueError:
        return False
