"""The config file: the demo loads, and every mistake names its line."""

from __future__ import annotations

import json
import textwrap
import unicodedata
from pathlib import Path

import pytest

from hub.config import (
    HubConfig,
    MessageType,
    Operator,
    RetryPolicy,
    System,
    builtin_types,
    load_config,
)
from hub.errors import ConfigError
from hub.settings import DEMO_CONFIG

MARK = "# <-"  # put on the line a ConfigError must name

SYSTEMS = """\
systems:
  - id: "000.00.00.H29:qlvb"
    name: "Văn phòng UBND Thành phố - QLVB"
    kind: http
    endpoint: "http://127.0.0.1:9001/events"
    api_key: "key-vp"
    may_send: ["vn.lgsp.demo.*"]
    may_receive: ["vn.lgsp.demo.*"]
  - id: "000.00.12.H29:qlvb"
    name: "Sở Tư pháp - QLVB"
    kind: http
    endpoint: "http://127.0.0.1:9002/events"
    api_key: "key-stp"
    may_receive: ["vn.lgsp.demo.note.v1"]
"""

ORDER_SCHEMA = {
    "$schema": "https://json-schema.org/draft/2020-12/schema",
    "type": "object",
    "properties": {"amount": {"type": "integer"}},
}


def write(tmp_path: Path, text: str, name: str = "config.yaml") -> Path:
    path = tmp_path / name
    path.write_text(textwrap.dedent(text), encoding="utf-8")
    return path


def marked_line(path: Path) -> int:
    """1-based number of the line carrying MARK."""
    lines = path.read_text(encoding="utf-8").splitlines()
    return next(n for n, line in enumerate(lines, 1) if MARK in line)


def load(path: Path, **env: str) -> HubConfig:
    return load_config(path, environ=env, kinds={"http", "document"})


def load_error(path: Path, **env: str) -> ConfigError:
    with pytest.raises(ConfigError) as caught:
        load(path, **env)
    return caught.value


# --- the demo config -------------------------------------------------------------


def test_demo_config_loads() -> None:
    config = load_config(DEMO_CONFIG, environ={})

    assert list(config.systems) == [
        "000.00.00.H29:qlvb",
        "000.00.12.H29:qlvb",
        "000.00.13.H29:qlvb",
        "000.00.20.H29:qlvb",
        "000.00.00.H29:edoc",
        "000.00.12.H29:edoc",
        "000.00.00.A80:edoc",
        "28.22.H17:edoc",
        "000.00.00.G22:nhiemvu",
        "000.00.00.H29:chidao",
        "000.00.00.H29:tasks",
        "000.00.00.H29:thongbao",
        "000.00.12.H29:motcua",
        "000.00.00.G22:dvcqg",
        "000.00.00.H29:baocao",
        "000.00.00.G22:baocao",
    ]
    names = [s.name for s in config.systems.values()]
    assert names[:3] == ["Văn phòng UBND Thành phố - QLVB", "Sở Tư pháp - QLVB", "Sở Nội vụ - QLVB"]
    assert all(unicodedata.is_normalized("NFC", name) for name in names)
    kinds = {s.id: s.kind for s in config.systems.values()}
    assert {k for sid, k in kinds.items() if sid.endswith(":qlvb")} == {"http"}
    assert kinds["000.00.00.G22:nhiemvu"] == "government_office"
    assert kinds["000.00.00.H29:tasks"] == "task_platform"
    assert {k for sid, k in kinds.items() if sid.endswith(":edoc")} == {"edxml"}
    assert config.systems["000.00.12.H29:qlvb"].endpoint == "http://127.0.0.1:9101/inbox/stp"
    assert config.systems["000.00.00.H29:edoc"].endpoint is None  # pulls
    assert [r.name for r in config.routes] == [
        "dossiers-to-reporting",
        "reports-to-reporting-system",
        "dossiers-to-portal",
        "directives-assigned",
        "directives-updated",
        "directives-revoked",
        "directive-progress-back",
        "directive-completion-back",
        "reminders",
        "documents-to-recipients",
        "document-statuses-to-senders",
        "notes-to-recipients",
        "urgent-notes-copy-to-city-office",
    ]
    assert "vn.lgsp.demo.note.v1" in config.types
    assert [(o.name, o.role) for o in config.operators] == [
        ("ops", "operator"),
        ("viewer", "viewer"),
        ("admin", "admin"),
    ]


def test_demo_keys_find_their_owners() -> None:
    config = load_config(DEMO_CONFIG, environ={})

    assert config.system_by_key("demo-key-snv") is config.systems["000.00.13.H29:qlvb"]
    assert config.system_by_key("demo-ops-key") is None
    assert config.system_by_key("") is None
    assert config.system_by_key("nope") is None
    admin = config.operator_by_key("demo-admin-key")
    assert admin is not None and admin.name == "admin"
    assert config.operator_by_key("demo-key-vp") is None


def test_demo_config_loads_with_the_registered_connector_kinds() -> None:
    config = load_config(DEMO_CONFIG, environ={})  # kinds from hub.connectors, or {"http"}
    assert config.path == DEMO_CONFIG


# --- dataclasses -------------------------------------------------------------------


def test_retry_policy_next_delay() -> None:
    policy = RetryPolicy((1, 5))
    assert [policy.next_delay(n) for n in (1, 2, 3, 4)] == [1, 5, None, None]
    assert policy.max_attempts == 3
    assert RetryPolicy().next_delay(5) == 600.0
    with pytest.raises(ValueError):
        policy.next_delay(0)


def test_operator_roles_are_ordered() -> None:
    viewer, admin = Operator("v", "k1", "viewer"), Operator("a", "k2", "admin")
    assert viewer.may("viewer") and not viewer.may("operator")
    assert admin.may("viewer") and admin.may("operator") and admin.may("admin")


def test_keys_stay_out_of_repr(tmp_path: Path) -> None:
    config = load(
        write(tmp_path, SYSTEMS + 'operators: [{name: o, api_key: "op-secret", role: admin}]\n')
    )
    assert "key-vp" not in repr(config) and "op-secret" not in repr(config)


def test_system_defaults_and_options(tmp_path: Path) -> None:
    text = SYSTEMS + textwrap.indent(
        textwrap.dedent("""\
        - id: "000.00.13.H29:edoc"
          name: "Sở Nội vụ - eDoc"
          kind: document
          endpoint: "https://edoc.example.vn/ws"
          wsdl: "contracts/edxml.wsdl"
          tls_verify: false
          retry: {delays: [2, 4]}
          timeout: 2.5
          concurrency: 4
        """),
        "  ",
    )
    config = load(write(tmp_path, text))
    vp, edoc = config.systems["000.00.00.H29:qlvb"], config.systems["000.00.13.H29:edoc"]

    assert (vp.retry, vp.timeout, vp.concurrency, dict(vp.options)) == (RetryPolicy(), 10.0, 16, {})
    assert (edoc.retry.delays, edoc.timeout, edoc.concurrency) == ((2.0, 4.0), 2.5, 4)
    assert dict(edoc.options) == {"wsdl": "contracts/edxml.wsdl", "tls_verify": False}
    with pytest.raises(TypeError):
        edoc.options["wsdl"] = "x"  # type: ignore[index]
    assert edoc.organ == "000.00.13.H29"
    assert vp.can_send("vn.lgsp.demo.note.v1") and not vp.can_send("vn.lgsp.document.sent.v1")
    assert config.systems["000.00.12.H29:qlvb"].can_receive("vn.lgsp.demo.note.v1")
    assert not config.systems["000.00.12.H29:qlvb"].can_receive("vn.lgsp.demo.other.v1")


def test_builtin_types() -> None:
    types = builtin_types()
    note = types["vn.lgsp.demo.note.v1"]
    assert note.builtin and note.schema_path.name == "demo.note.v1.json"
    assert note.schema["title"].startswith("vn.lgsp.demo.note.v1")
    assert all(name.startswith("vn.lgsp.") for name in types)
    assert not any("envelope" in name or "config" in name for name in types)
    assert builtin_types()["vn.lgsp.demo.note.v1"] is note  # read once
    types.clear()
    assert "vn.lgsp.demo.note.v1" in builtin_types()


def test_config_types_load_relative_to_the_config(tmp_path: Path) -> None:
    (tmp_path / "schemas").mkdir()
    (tmp_path / "schemas" / "order.json").write_text(json.dumps(ORDER_SCHEMA), encoding="utf-8")
    text = SYSTEMS + 'types:\n  - {type: "vn.lgsp.test.order.v1", schema: "schemas/order.json"}\n'
    config = load(write(tmp_path, text))

    order = config.types["vn.lgsp.test.order.v1"]
    assert order == MessageType(
        "vn.lgsp.test.order.v1", tmp_path / "schemas/order.json", ORDER_SCHEMA, False
    )
    assert config.types["vn.lgsp.demo.note.v1"].builtin


# --- env: keys ---------------------------------------------------------------------


def test_env_keys_come_from_the_given_environ(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("QLVB_API_KEY", "from-os-environ")
    path = write(tmp_path, SYSTEMS.replace('"key-vp"', '"env:QLVB_API_KEY"'))

    config = load_config(path, environ={"QLVB_API_KEY": "s3cret"}, kinds={"http"})

    assert config.systems["000.00.00.H29:qlvb"].api_key == "s3cret"
    assert config.system_by_key("s3cret") is config.systems["000.00.00.H29:qlvb"]
    assert config.systems["000.00.12.H29:qlvb"].api_key == "key-stp"  # literal


def test_env_keys_default_to_os_environ(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("QLVB_API_KEY", "from-os-environ")
    path = write(tmp_path, SYSTEMS.replace('"key-vp"', '"env:QLVB_API_KEY"'))
    assert (
        load_config(path, kinds={"http"}).systems["000.00.00.H29:qlvb"].api_key == "from-os-environ"
    )


# --- every semantic mistake names its line ---------------------------------------------

SYSTEM = '{id: "000.00.00.H29:qlvb", name: a, kind: http, endpoint: "http://h/x"}'
NOTE_ROUTE = 'match: {type: "vn.lgsp.demo.note.v1"}'

MISTAKES = {
    "duplicate system id": (
        f"""
        systems:
          - {SYSTEM}
          - {SYSTEM}  {MARK}
        """,
        "duplicate system id",
    ),
    "duplicate key between system and operator": (
        f"""
        systems:
          - {{id: "000.00.00.H29:qlvb", name: a, kind: http, api_key: same}}
        operators:
          - name: ops
            api_key: same  {MARK}
            role: operator
        """,
        "same as that of system 000.00.00.H29:qlvb",
    ),
    "duplicate key from env between systems": (
        f"""
        systems:
          - {{id: "000.00.00.H29:qlvb", name: a, kind: http, api_key: "env:VP_KEY"}}
          - {{id: "000.00.12.H29:qlvb", name: b, kind: http, api_key: "k1"}}  {MARK}
        """,
        "same as",
    ),
    "env variable unset": (
        f"""
        systems:
          - id: "000.00.00.H29:qlvb"
            name: a
            kind: http
            api_key: "env:QLVB_API_KEY"  {MARK}
        """,
        "QLVB_API_KEY",
    ),
    "system id without organ code": (
        f"""
        systems:
          - {{id: "H29:qlvb", name: a, kind: http}}  {MARK}
        """,
        "organ code",
    ),
    "system id with capital system name": (
        f"""
        systems:
          - {SYSTEM}
          - {{id: "000.00.12.H29:QLVB", name: a, kind: http}}  {MARK}
        """,
        "organ code",
    ),
    "system id without system name": (
        f"""
        systems:
          - {{id: "000.00.12.H29", name: a, kind: http}}  {MARK}
        """,
        "organ code",
    ),
    "unknown kind": (
        f"""
        systems:
          - id: "000.00.00.H29:qlvb"
            name: a
            kind: htp  {MARK}
        """,
        "did you mean 'http'",
    ),
    "http system that receives without endpoint": (
        f"""
        systems:
          - {SYSTEM}
          - id: "000.00.12.H29:qlvb"  {MARK}
            name: b
            kind: http
            may_receive: ["vn.lgsp.demo.*"]
        """,
        "no endpoint",
    ),
    "endpoint not http": (
        f"""
        systems:
          - id: "000.00.00.H29:qlvb"
            name: a
            kind: http
            endpoint: "ftp://127.0.0.1/inbox"  {MARK}
        """,
        "http(s) URL",
    ),
    "endpoint without host": (
        f"""
        systems:
          - id: "000.00.00.H29:qlvb"
            name: a
            kind: http
            endpoint: "http:///inbox"  {MARK}
        """,
        "http(s) URL",
    ),
    "duplicate route name": (
        f"""
        systems: [{SYSTEM}]
        routes:
          - {{name: r, {NOTE_ROUTE}, to: {{from_data: /to/*}}}}
          - {{name: r, {NOTE_ROUTE}, to: {{from_data: /cc/*}}}}  {MARK}
        """,
        "duplicate route name",
    ),
    "route to an unknown system": (
        f"""
        systems: [{SYSTEM}]
        routes:
          - name: r
            {NOTE_ROUTE}
            to:
              - "000.00.00.H29:qlvbb"  {MARK}
        """,
        "not a configured system; did you mean '000.00.00.H29:qlvb'",
    ),
    "route type matching no type": (
        f"""
        systems: [{SYSTEM}]
        routes:
          - name: r
            match: {{type: "vn.lgsp.demo.nite.v1"}}  {MARK}
            to: {{from_data: /to/*}}
        """,
        "matches no known type",
    ),
    "route to a system that may not receive the type": (
        f"""
        systems:
          - {{id: "000.00.12.H29:qlvb", name: b, kind: http, endpoint: "http://h/x",
              may_receive: ["vn.lgsp.document.*"]}}
        routes:
          - name: r
            {NOTE_ROUTE}
            to: ["000.00.12.H29:qlvb"]  {MARK}
        """,
        "may not receive vn.lgsp.demo.note.v1",
    ),
    "route glob with a type the destination may not receive": (
        f"""
        systems:
          - {{id: "000.00.12.H29:qlvb", name: b, kind: http, endpoint: "http://h/x",
              may_receive: ["vn.lgsp.demo.note.v1"]}}
        types:
          - {{type: "vn.lgsp.demo.order.v1", schema: order.json}}
        routes:
          - name: r
            match: {{type: "vn.lgsp.demo.*"}}
            to: ["000.00.12.H29:qlvb"]  {MARK}
        """,
        "may not receive vn.lgsp.demo.order.v1",
    ),
    "type redefining a built-in one": (
        f"""
        systems: [{SYSTEM}]
        types:
          - type: "vn.lgsp.demo.note.v1"  {MARK}
            schema: order.json
        """,
        "built-in",
    ),
    "duplicate type": (
        f"""
        systems: [{SYSTEM}]
        types:
          - {{type: "vn.lgsp.test.order.v1", schema: order.json}}
          - {{type: "vn.lgsp.test.order.v1", schema: order.json}}  {MARK}
        """,
        "duplicate type",
    ),
    "type name not vn.lgsp": (
        f"""
        systems: [{SYSTEM}]
        types:
          - type: "vn.lgsp.Order"  {MARK}
            schema: order.json
        """,
        "vn.lgsp.<domain>.<event>.v<N>",
    ),
    "type schema file missing": (
        f"""
        systems: [{SYSTEM}]
        types:
          - type: "vn.lgsp.test.order.v1"
            schema: schemas/missing.json  {MARK}
        """,
        "not found",
    ),
    "type schema not a Draft 2020-12 schema": (
        f"""
        systems: [{SYSTEM}]
        types:
          - type: "vn.lgsp.test.order.v1"
            schema: bad-schema.json  {MARK}
        """,
        "not a valid Draft 2020-12 schema",
    ),
    "type schema not JSON": (
        f"""
        systems: [{SYSTEM}]
        types:
          - type: "vn.lgsp.test.order.v1"
            schema: not-json.json  {MARK}
        """,
        "not valid JSON",
    ),
    "retry delays empty": (
        f"""
        systems:
          - id: "000.00.00.H29:qlvb"
            name: a
            kind: http
            retry: {{delays: []}}  {MARK}
        """,
        "non-empty",
    ),
    "retry delay not positive": (
        f"""
        systems:
          - id: "000.00.00.H29:qlvb"
            name: a
            kind: http
            retry:
              delays:
                - 1
                - -5  {MARK}
        """,
        "minimum of 0",
    ),
    "duplicate operator name": (
        f"""
        systems: [{SYSTEM}]
        operators:
          - {{name: ops, api_key: k1, role: operator}}
          - {{name: ops, api_key: k2, role: admin}}  {MARK}
        """,
        "duplicate operator name",
    ),
    "duplicate YAML key": (
        f"""
        systems:
          - id: "000.00.00.H29:qlvb"
            name: a
            kind: http
            name: b  {MARK}
        """,
        "duplicate key (first at line",
    ),
    "unknown key": (
        f"""
        systems: [{SYSTEM}]
        route:  {MARK}
          - {{name: r, {NOTE_ROUTE}, to: {{from_data: /to/*}}}}
        """,
        "'route' was unexpected",
    ),
}


@pytest.mark.parametrize(("text", "word"), MISTAKES.values(), ids=MISTAKES.keys())
def test_mistake_names_its_line(tmp_path: Path, text: str, word: str) -> None:
    (tmp_path / "order.json").write_text(json.dumps(ORDER_SCHEMA), encoding="utf-8")
    (tmp_path / "bad-schema.json").write_text('{"type": "nonsense"}', encoding="utf-8")
    (tmp_path / "not-json.json").write_text("{type: object", encoding="utf-8")
    path = write(tmp_path, text)

    error = load_error(path, VP_KEY="k1")

    assert (error.file, error.line) == (str(path), marked_line(path)), error
    assert word in error.detail
    assert error.problems and word in error.problems[0]
    assert str(error).startswith(f"{path}:{error.line}: ")


def test_keys_are_not_shown_in_errors(tmp_path: Path) -> None:
    error = load_error(write(tmp_path, MISTAKES["duplicate key between system and operator"][0]))
    assert "same" not in error.detail.replace("same as", "")


def test_yaml_syntax_error_names_its_line(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        f"""
        systems:
          - id: "000.00.00.H29:qlvb"
            name: a: b  {MARK}
            kind: http
        """,
    )
    error = load_error(path)
    assert error.line == marked_line(path)
    assert "YAML" in error.detail


def test_unclosed_flow_sequence_names_a_line(tmp_path: Path) -> None:
    error = load_error(write(tmp_path, 'systems: [{id: "000.00.00.H29:qlvb", name: a\n'))
    assert error.line is not None


def test_schema_errors_list_every_problem(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        """\
        systems:
          - id: "000.00.00.H29:qlvb"
            name: a
            kind: http
            timeout: -1
            concurrency: many
        routes:
          - name: r
            match: {type: 5}
            to: []
        operators:
          - {name: o, api_key: k, role: root}
        extra: 1
        """,
    )
    error = load_error(path)

    assert error.line == 5
    assert "systems[0].timeout" in error.detail
    assert [p.split(":")[0] for p in error.problems] == [
        "line 5",
        "line 6",
        "line 9",
        "line 10",
        "line 12",
        "line 13",
    ]
    assert "routes[0].match.type: 5 is not of type 'string'" in error.problems[2]
    assert "'root' is not one of" in error.problems[4]
    assert "'extra' was unexpected" in error.problems[5]


def test_missing_required_keys_are_reported(tmp_path: Path) -> None:
    error = load_error(write(tmp_path, "routes: []\n"))
    assert "'systems' is a required property" in error.detail


@pytest.mark.parametrize("text", ["", "# nothing\n", "[]\n", "systems: []\n"])
def test_empty_configs_are_refused(tmp_path: Path, text: str) -> None:
    load_error(write(tmp_path, text))


def test_missing_file(tmp_path: Path) -> None:
    error = load_error(tmp_path / "nope.yaml")
    assert error.line is None and "cannot read" in error.detail


def test_text_is_normalised_to_nfc(tmp_path: Path) -> None:
    nfd = unicodedata.normalize("NFD", SYSTEMS)
    assert nfd != SYSTEMS
    config = load(write(tmp_path, nfd))
    assert config.systems["000.00.12.H29:qlvb"].name == "Sở Tư pháp - QLVB"


def test_every_semantic_problem_is_listed(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        """\
        systems:
          - {id: "bad", name: a, kind: htp}
          - {id: "000.00.12.H29:qlvb", name: b, kind: http, api_key: "env:NOPE"}
        routes:
          - {name: r, match: {type: "vn.lgsp.none.v1"}, to: ["x:y"]}
        """,
    )
    error = load_error(path)
    assert error.line == 2 and "organ code" in error.detail
    assert len(error.problems) == 5, error.problems
    assert all(isinstance(p, str) and p.startswith("line ") for p in error.problems)


def test_system_dataclass_is_frozen() -> None:
    system = System("000.00.00.H29:qlvb", "a", "http", None, None, (), (), RetryPolicy())
    with pytest.raises(AttributeError):
        system.name = "b"  # type: ignore[misc]


def test_aliases_work_and_merge_keys_are_refused(tmp_path: Path) -> None:
    shared = """\
    systems:
      - {id: "000.00.00.H29:qlvb", name: a, kind: http, retry: &retry {delays: [1, 2]}}
      - {id: "000.00.12.H29:qlvb", name: b, kind: http, retry: *retry}
    """
    config = load(write(tmp_path, shared))
    assert {s.retry.delays for s in config.systems.values()} == {(1.0, 2.0)}

    merged = f"""\
    defaults: &defaults {{kind: http}}
    systems:
      - <<: *defaults  {MARK}
        id: "000.00.00.H29:qlvb"
    """
    path = write(tmp_path, merged)
    error = load_error(path)
    assert error.line == marked_line(path) and "merge keys" in error.detail
