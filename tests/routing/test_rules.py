"""Routing rules tested as data: tests/routing/cases.yaml against the routing and demo configs."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

import pytest
import yaml
from jsonschema import Draft202012Validator

from hub.config import HubConfig, load_config
from hub.routing import RouteDecision, RoutingRule, resolve, route
from hub.settings import DEMO_CONFIG

HERE = Path(__file__).parent
CASES: list[dict[str, Any]] = yaml.safe_load((HERE / "cases.yaml").read_text(encoding="utf-8"))


@pytest.fixture(scope="module")
def configs() -> dict[str, HubConfig]:
    return {
        "routing": load_config(HERE / "config.yaml", environ={}, kinds={"http"}),
        "demo": load_config(
            DEMO_CONFIG,
            environ={},
            kinds={
                "http",
                "edxml",
                "government_office",
                "task_platform",
                "procedures",
                "national_portal",
                "reporting",
                "reporting_system",
            },
        ),
    }


def _event(case: dict[str, Any]) -> dict[str, Any]:
    return {"specversion": "1.0", "id": "01JD3M7Q4V0Y6J9Z7R8T2K1B5C", **case["event"]}


def test_case_names_are_unique() -> None:
    names = [case["name"] for case in CASES]
    assert len(names) == len(set(names))
    assert len(CASES) >= 12


@pytest.mark.parametrize("case", CASES, ids=[case["name"] for case in CASES])
def test_case(case: dict[str, Any], configs: dict[str, HubConfig]) -> None:
    decision = route(configs[case["config"]], _event(case))

    want = {dest: tuple(rules) for dest, rules in case["reach"].items()}
    assert decision.destinations == want
    assert list(decision.destinations) == list(want), "destinations in order of first choice"
    assert decision.unroutable == (not want)
    refused = case.get("refused", [])
    assert [r for r, _ in decision.refused] == [r for r, _ in refused], decision.refused
    for (_, reason), (_, word) in zip(decision.refused, refused, strict=True):
        assert word in reason
    if "matched" in case:
        assert decision.matched == tuple(case["matched"])


@pytest.mark.parametrize("case", CASES, ids=[case["name"] for case in CASES])
def test_case_event_is_valid_for_its_type(
    case: dict[str, Any], configs: dict[str, HubConfig]
) -> None:
    """Keeps the cases realistic: their data passes the schema of their type."""
    message_type = configs[case["config"]].types[case["event"]["type"]]
    Draft202012Validator(message_type.schema).validate(case["event"]["data"])


def test_rules_named_by_cases_exist(configs: dict[str, HubConfig]) -> None:
    for case in CASES:
        names = {rule.name for rule in configs[case["config"]].routes}
        named = {rule for rules in case["reach"].values() for rule in rules}
        assert named | set(case.get("matched", [])) <= names, case["name"]


def test_fixed_destination_that_may_not_receive_is_refused(configs: dict[str, HubConfig]) -> None:
    """Load checks prevent it; if such a rule exists anyway, nothing is delivered."""
    rule = RoutingRule("bad", "vn.lgsp.testdoc.*", None, (), ("000.00.13.H29:qlvb", "x:y"), None)
    config = dataclasses.replace(configs["routing"], routes=(rule,))
    event = {"type": "vn.lgsp.testdoc.sent.v1", "source": "000.00.00.H29:qlvb", "data": {}}

    decision = route(config, event)

    assert decision.unroutable
    assert decision.matched == ("bad",)
    assert [r for r, _ in decision.refused] == ["000.00.13.H29:qlvb", "x:y"]
    assert "may not receive" in decision.refused[0][1]


@pytest.mark.parametrize(
    "event", [{}, {"type": 5, "data": {}}, {"type": "vn.lgsp.testdoc.sent.v1"}]
)
def test_malformed_event_matches_nothing_it_cannot(
    configs: dict[str, HubConfig], event: Any
) -> None:
    decision = route(configs["routing"], event)
    assert decision.unroutable
    assert decision.refused == ()


def test_rule_from_mapping() -> None:
    rule = RoutingRule.from_mapping(
        {
            "name": "r",
            "match": {"type": "vn.lgsp.*", "source": "a:b", "data": {"/p": [1, 2]}},
            "to": {"from_data": "/to/*"},
        }
    )
    assert rule == RoutingRule("r", "vn.lgsp.*", "a:b", (("/p", (1, 2)),), (), "/to/*")


@pytest.mark.parametrize(
    ("pointer", "found"),
    [
        ("", [{"a/b": 1, "m~n": 2, "list": [10, 20], "*": 3}]),
        ("/a~1b", [1]),
        ("/m~0n", [2]),
        ("/list/1", [20]),
        ("/list/2", []),
        ("/list/01", []),
        ("/list/-", []),
        ("/missing/x", []),
        ("/*", [3]),
    ],
)
def test_resolve(pointer: str, found: list[Any]) -> None:
    assert resolve({"a/b": 1, "m~n": 2, "list": [10, 20], "*": 3}, pointer) == found


def test_resolve_wildcard() -> None:
    doc = {"to": [{"id": "a"}, {"id": "b"}, {"x": 1}], "by": {"k": {"id": "c"}}}
    assert resolve(doc, "/to/*/id", wildcard=True) == ["a", "b"]
    assert resolve(doc, "/by/*/id", wildcard=True) == ["c"]
    assert resolve(doc, "/to/*", wildcard=False) == []


def test_unroutable() -> None:
    assert RouteDecision({}).unroutable
    assert not RouteDecision({"a:b": ("r",)}).unroutable
