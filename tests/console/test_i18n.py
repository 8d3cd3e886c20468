"""Every word the console shows exists in Vietnamese and English, stored as NFC."""

from __future__ import annotations

import re
import unicodedata
from pathlib import Path

from hub.config import ROLES
from hub.console.i18n import EN, TABLES, VI, translator
from hub.store.inspect import MESSAGE_STATUSES

TEMPLATES = Path(__file__).resolve().parents[2] / "hub" / "console" / "templates"


def used_keys() -> set[str]:
    keys: set[str] = set()
    for template in TEMPLATES.glob("*.html"):
        keys |= set(re.findall(r"_\('([a-z_.]+[a-z_])'\s*[,)]", template.read_text("utf-8")))
    # Keys the templates build: 'status.' ~ status, 'role.' ~ role, 'nav.' ~ page, ...
    keys |= {f"status.{s}" for s in (*MESSAGE_STATUSES, "pending", "retrying", "waiting")}
    keys |= {f"status.{s}" for s in ("discarded",)}
    keys |= {f"role.{r}" for r in ROLES}
    keys |= {
        f"nav.{p}" for p in ("overview", "systems", "messages", "dead_letters", "routes", "audit")
    }
    keys |= {f"series.{s}" for s in ("accepted", "delivered", "failed")}
    keys |= {f"confirm.{a}" for a in ("pause", "resume", "replay", "discard", "replay_matching")}
    keys |= {
        f"error.{e}"
        for e in ("csrf", "role_needed", "no_system", "no_message", "no_dead_letter", "not_found")
    }
    return keys


def test_both_languages_hold_every_key_the_templates_use() -> None:
    keys = used_keys()
    assert keys - EN.keys() == set()
    assert keys - VI.keys() == set()
    assert EN.keys() == VI.keys()


def test_vietnamese_is_nfc_and_placeholders_match() -> None:
    for key, text in TABLES["vi"].items():
        assert unicodedata.is_normalized("NFC", text), key
        assert re.findall(r"{(\w+)}", text) == re.findall(r"{(\w+)}", EN[key]), key


def test_translator_fills_values_and_falls_back() -> None:
    _ = translator("vi")
    assert _("dead.replayed", n=3) == "Đã gửi lại 3 thư lỗi."
    assert translator("en")("dead.replayed", n=3) == "3 dead letters replayed."
    assert _("no.such.key") == "no.such.key"


HUB = TEMPLATES.parents[1]


def written_stages() -> set[str]:
    """Every trace stage the hub's code writes, read from its source."""
    found: set[str] = set()
    for path in HUB.rglob("*.py"):
        text = path.read_text("utf-8")
        found |= set(re.findall(r"Hop\(\s*[\w.]+,\s*\"(\w+)\"", text))
        found |= set(re.findall(r"\bstage=\"(\w+)\"", text))
        for mapping in re.findall(r"\bstage = \{([^}]*)\}", text):  # status -> stage
            found |= set(re.findall(r":\s*\"(\w+)\"", mapping))
        for chosen in re.findall(r"\bstage = \"(\w+)\" if .+ else \"(\w+)\"", text):
            found |= set(chosen)
    return found


def test_every_stage_the_hub_writes_reads_in_both_languages() -> None:
    stages = written_stages()
    assert {"accepted", "routed", "refused", "replayed", "dead_lettered"} <= stages
    for stage in stages:
        assert f"stage.{stage}" in VI and f"stage.{stage}" in EN, stage
