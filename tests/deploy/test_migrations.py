"""`hub db upgrade` is safe while the previous release serves: expand, then contract.

Two tests of that promise:

- a rule on every migration, read with `ast`: its `upgrade()` only expands the
  schema (new tables, nullable columns or columns with a server default, plain
  indexes, a NOT NULL relaxed) unless the file declares itself a contract step:
  a module-level `contract = True` and a docstring line `Contract: ...` naming
  the release from which no code needs what it drops;
- a live run on PostgreSQL and RabbitMQ: the last release (`OLD_RELEASE`,
  checked out in a git worktree) serves a stream of messages while this
  version's `hub db upgrade` runs, then this version serves beside it.
"""

from __future__ import annotations

import ast
import os
import re
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import httpx
import orjson
import pytest
import sqlalchemy as sa
from alembic.migration import MigrationContext
from alembic.script import ScriptDirectory

from adapters.sink import RecordingSink
from hub.settings import Settings
from hub.store.db import MIGRATIONS
from tests.conftest import delete_queues
from tests.support import (
    DEST_A,
    DEST_B,
    KEYS,
    REPO,
    SENDER,
    HubProcess,
    hub_env,
    note,
    wait_until,
    write_config,
)

VERSIONS = MIGRATIONS / "versions"
OLD_RELEASE = "b128f0b"  # the last release; its schema is at 0010

# What an expand step may call on `op`, or on the `batch_op` of a batch_alter_table.
# Anything else (drop_*, rename_table, create_primary_key, ...) is a contract step.
EXPAND = {
    "add_column",
    "alter_column",
    "batch_alter_table",
    "bulk_insert",
    "create_check_constraint",
    "create_foreign_key",
    "create_index",
    "create_table",
    "create_unique_constraint",
    "execute",
    "f",
    "get_bind",
    "get_context",
    "inline_literal",
}
# These constrain the rows the previous release writes: on a new table only.
CONSTRAINING = {"create_check_constraint", "create_foreign_key", "create_unique_constraint"}
# What alter_column may say in an expand step: relax NOT NULL, give a server default.
RELAXING = {"nullable", "server_default", "schema", "table_name", "column_name"}
CONTRACT_LINE = re.compile(r"^Contract:.*\brelease\s+\S+", re.MULTILINE)
DESTRUCTIVE_SQL = re.compile(r"\b(DROP|ALTER|RENAME|TRUNCATE|DELETE)\b", re.IGNORECASE)

RULE_DROP = "drops or changes what the previous release uses: only a contract step may"
RULE_COLUMN = (
    "a new column must be nullable or have a server_default (the previous release "
    "inserts rows without it)"
)
RULE_CONSTRAINT = (
    "a unique index or a constraint goes on a new table only (the previous release's "
    "writes may break it)"
)
RULE_SQL = "raw SQL that drops, alters, renames or deletes: only a contract step may"
RULE_UNREAD = "the rule cannot read this; write it with literal arguments"
RULE_DECLARE = (
    "a contract step has both `contract = True` and a docstring line "
    "'Contract: ... release <R> ...' naming the release from which no code needs what it drops"
)


def _constant(node: ast.expr | None) -> object:
    """A literal's value: None when absent, `...` (Ellipsis) when not a literal."""
    if node is None:
        return None
    return node.value if isinstance(node, ast.Constant) else ...


def _keyword(call: ast.Call, name: str) -> ast.expr | None:
    return next((k.value for k in call.keywords if k.arg == name), None)


class ExpandRule(ast.NodeVisitor):
    """Walks an `upgrade()` and lists (line, finding) for what is not expand-only."""

    def __init__(self, helpers: dict[str, ast.FunctionDef]) -> None:
        self.helpers = helpers  # the module's functions, followed when upgrade() calls one
        self.problems: list[tuple[int, str]] = []
        self.created: set[object] = set()  # tables this migration creates
        self.batches: dict[str, object] = {}  # batch_op alias -> its table

    def visit_With(self, node: ast.With) -> None:
        outer = dict(self.batches)
        for item in node.items:
            self.visit(item.context_expr)
            call = item.context_expr
            alias = item.optional_vars
            if self._method(call) == ("op", "batch_alter_table") and isinstance(alias, ast.Name):
                assert isinstance(call, ast.Call)
                table = call.args[0] if call.args else _keyword(call, "table_name")
                self.batches[alias.id] = _constant(table)
        for statement in node.body:
            self.visit(statement)
        self.batches = outer

    def _method(self, node: ast.expr) -> tuple[str, str] | None:
        """(receiver, method) of a call on `op` or on a batch_op, else None."""
        if not (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)):
            return None
        receiver = node.func.value
        if isinstance(receiver, ast.Name) and (receiver.id == "op" or receiver.id in self.batches):
            return receiver.id, node.func.attr
        return None

    def visit_Call(self, node: ast.Call) -> None:
        self.generic_visit(node)
        if isinstance(node.func, ast.Name) and node.func.id in self.helpers:
            for statement in self.helpers.pop(node.func.id).body:
                self.visit(statement)
        found = self._method(node)
        if found is None:
            return
        receiver, method = found
        batch = receiver != "op"
        what = f"{receiver}.{method}"
        if method not in EXPAND:
            self.problems.append((node.lineno, f"{what}: {RULE_DROP}"))
        elif method == "create_table":
            self.created.add(_constant(node.args[0] if node.args else None))
        elif method == "add_column":
            column = node.args[0 if batch else 1] if len(node.args) > (not batch) else None
            self._check_column(what, column or _keyword(node, "column"), node.lineno)
        elif method == "alter_column":
            self._check_alter(what, node)
        elif method in CONSTRAINING or (
            method == "create_index" and _constant(_keyword(node, "unique")) not in (False, None)
        ):
            table = (
                self.batches[receiver]
                if batch
                else _constant(node.args[1] if len(node.args) > 1 else None)
            )
            if table not in self.created:
                self.problems.append((node.lineno, f"{what} on {table!r}: {RULE_CONSTRAINT}"))
        elif method == "execute":
            self._check_sql(what, node)

    def _check_column(self, what: str, column: ast.expr | None, line: int) -> None:
        if not (isinstance(column, ast.Call) and ast.unparse(column.func).endswith("Column")):
            self.problems.append((line, f"{what}: {RULE_UNREAD}"))
            return
        nullable = _keyword(column, "nullable")
        if nullable is None:
            nullable_value: object = _constant(_keyword(column, "primary_key")) is not True
        else:
            nullable_value = _constant(nullable)
        default = _keyword(column, "server_default")
        if nullable_value is ...:
            self.problems.append((line, f"{what}: {RULE_UNREAD}"))
        elif nullable_value is not True and (default is None or _constant(default) is None):
            self.problems.append((line, f"{what}: {RULE_COLUMN}"))

    def _check_alter(self, what: str, call: ast.Call) -> None:
        said = sorted(
            k.arg
            for k in call.keywords
            if k.arg and k.arg not in RELAXING and not k.arg.startswith("existing_")
        )
        nullable, default = _keyword(call, "nullable"), _keyword(call, "server_default")
        if said:
            self.problems.append((call.lineno, f"{what} ({', '.join(said)}): {RULE_DROP}"))
        elif nullable is not None and _constant(nullable) is not True:
            self.problems.append((call.lineno, f"{what} (NOT NULL): {RULE_DROP}"))
        elif default is not None and _constant(default) is None:
            self.problems.append((call.lineno, f"{what} (server default dropped): {RULE_DROP}"))

    def _check_sql(self, what: str, call: ast.Call) -> None:
        sql = call.args[0] if call.args else _keyword(call, "sqltext")
        if isinstance(sql, ast.Call) and len(sql.args) == 1:  # sa.text("...")
            sql = sql.args[0]
        text = _constant(sql)
        if not isinstance(text, str):
            self.problems.append((call.lineno, f"{what}: {RULE_UNREAD}"))
        elif DESTRUCTIVE_SQL.search(text):
            self.problems.append((call.lineno, f"{what}: {RULE_SQL}"))


def check_migration(source: str, path: str) -> list[str]:
    """The rule's findings for one migration file, each as 'path:line: what: rule'."""
    tree = ast.parse(source, path)
    flag = next(
        (
            node
            for node in tree.body
            if isinstance(node, ast.Assign)
            and any(isinstance(t, ast.Name) and t.id == "contract" for t in node.targets)
        ),
        None,
    )
    contract = flag is not None and _constant(flag.value) is True
    named = CONTRACT_LINE.search(ast.get_docstring(tree) or "") is not None
    problems: list[tuple[int, str]] = []
    if contract != named:
        problems.append(
            (flag.lineno if flag else 1, f"half a contract declaration: {RULE_DECLARE}")
        )
    functions = {n.name: n for n in tree.body if isinstance(n, ast.FunctionDef)}
    upgrade = functions.pop("upgrade", None)
    functions.pop("downgrade", None)
    if upgrade is None:
        problems.append((1, "no upgrade() function"))
    elif not contract:
        rule = ExpandRule(functions)
        for statement in upgrade.body:
            rule.visit(statement)
        problems += rule.problems
    return [f"{path}:{line}: {finding}" for line, finding in sorted(problems)]


MIGRATION_FILES = sorted(VERSIONS.glob("[0-9]*.py"))


def test_there_are_migrations_to_check() -> None:
    assert len(MIGRATION_FILES) >= 12, VERSIONS


@pytest.mark.parametrize("path", MIGRATION_FILES, ids=lambda p: p.name)
def test_upgrade_only_expands_unless_declared_a_contract_step(path: Path) -> None:
    shown = path.relative_to(REPO) if path.is_relative_to(REPO) else path
    problems = check_migration(path.read_text(encoding="utf-8"), str(shown))
    assert not problems, "\n".join(problems)


HEADER = (
    '"""a migration\n\nRevision ID: 9999\n"""\nfrom alembic import op\nimport sqlalchemy as sa\n'
)
BREAKING = {  # id: (upgrade's body, line of the finding, rule)
    "drop-table": ('op.drop_table("t")', 9, RULE_DROP),
    "batch-drop-column": (
        'with op.batch_alter_table("t") as b:\n        b.drop_column("c")',
        10,
        RULE_DROP,
    ),
    "rename-table": ('op.rename_table("t", "u")', 9, RULE_DROP),
    "drop-constraint": ('op.drop_constraint("uq_t_c", "t")', 9, RULE_DROP),
    "alter-type": ('op.alter_column("t", "c", type_=sa.Text())', 9, RULE_DROP),
    "alter-not-null": ('op.alter_column("t", "c", nullable=False)', 9, RULE_DROP),
    "not-null-column": (
        'op.add_column("t", sa.Column("c", sa.Text(), nullable=False))',
        9,
        RULE_COLUMN,
    ),
    "batch-not-null-column": (
        'with op.batch_alter_table("t") as b:\n'
        '        b.add_column(sa.Column("c", sa.Text(), nullable=False, server_default=None))',
        10,
        RULE_COLUMN,
    ),
    "unread-column": ('op.add_column("t", column)', 9, RULE_UNREAD),
    "unique-index-on-old-table": (
        'op.create_index("ix", "t", ["c"], unique=True)',
        9,
        RULE_CONSTRAINT,
    ),
    "unique-constraint": ('op.create_unique_constraint("uq", "t", ["c"])', 9, RULE_CONSTRAINT),
    "sql-drop": ('op.execute("ALTER TABLE t DROP COLUMN c")', 9, RULE_SQL),
    "sql-unread": ('op.execute(sa.text(f"UPDATE {t} SET c = 1"))', 9, RULE_UNREAD),
    "in-a-helper": ('_drop()\n\ndef _drop():\n    op.drop_column("t", "c")', 12, RULE_DROP),
}
EXPANDING = {
    "new-table-unique-index": (
        'op.create_table("n", sa.Column("id", sa.Integer(), primary_key=True))\n'
        '    op.create_index("ix", "n", ["id"], unique=True)'
    ),
    "nullable-column": 'op.add_column("t", sa.Column("c", sa.Text()))',
    "column-with-default": (
        'op.add_column("t", sa.Column("c", sa.Integer(), nullable=False, server_default="0"))'
    ),
    "relax-not-null": 'op.alter_column("t", "c", nullable=True, existing_type=sa.Text())',
    "backfill": 'op.execute("UPDATE t SET c = 0 WHERE c IS NULL")',
    "batch-index": (
        'with op.batch_alter_table("t") as b:\n        b.create_index(b.f("ix_t_c"), ["c"])'
    ),
}


@pytest.mark.parametrize(("body", "line", "rule"), BREAKING.values(), ids=BREAKING.keys())
def test_the_rule_names_file_line_and_rule(body: str, line: int, rule: str) -> None:
    (problem,) = check_migration(f"{HEADER}\ndef upgrade():\n    {body}\n", "v/9999_x.py")
    assert problem.startswith(f"v/9999_x.py:{line}: ") and problem.endswith(rule), problem


@pytest.mark.parametrize("body", EXPANDING.values(), ids=EXPANDING.keys())
def test_expand_steps_pass(body: str) -> None:
    assert check_migration(f"{HEADER}\ndef upgrade():\n    {body}\n", "v/9999_x.py") == []


def test_a_declared_contract_step_may_drop() -> None:
    drop = '\ndef upgrade():\n    op.drop_column("deliveries", "route")\n'
    declared = HEADER.replace(
        '"""a migration\n', '"""a migration\n\nContract: no code since release 2027.02 reads it.\n'
    )
    assert check_migration(declared + "contract = True\n" + drop, "x.py") == []
    (half,) = check_migration(HEADER + "contract = True\n" + drop, "x.py")
    assert half.startswith("x.py:7: half a contract declaration")
    assert check_migration(declared + drop, "x.py")[0].startswith("x.py:1: half a contract")


def _git(*args: str) -> subprocess.CompletedProcess[str]:
    try:
        return subprocess.run(
            ["git", "-C", str(REPO), *args], capture_output=True, text=True, timeout=60, check=False
        )
    except FileNotFoundError:
        pytest.fail("git is needed to check out the last release's code")


@pytest.fixture
def old_release(tmp_path: Path) -> Iterator[Path]:
    """The last release's code in a detached git worktree, removed after."""
    found = _git("cat-file", "-t", OLD_RELEASE)
    if found.stdout.strip() != "commit":
        pytest.fail(
            f"the last release {OLD_RELEASE} is not in the history of {REPO}"
            f" ({found.stderr.strip()}): clone without --depth, or git fetch --unshallow"
        )
    tree = tmp_path / "old"
    added = _git("worktree", "add", "--detach", str(tree), OLD_RELEASE)
    assert added.returncode == 0, added.stderr
    try:
        yield tree
    finally:
        _git("worktree", "remove", "--force", str(tree))


def running(tree: Path) -> dict[str, str]:
    """Variables that make `python -m hub.cli` (run from REPO) import the code in `tree`.

    `-m` puts the working directory first on sys.path; PYTHONSAFEPATH leaves it off,
    so PYTHONPATH comes before it and before the editable install's finder.
    """
    path = os.pathsep.join(p for p in (str(tree), os.environ.get("PYTHONPATH")) if p)
    return {"PYTHONPATH": path, "PYTHONSAFEPATH": "1"}


def python(settings: Settings, *args: str, env: dict[str, str] | None = None) -> str:
    """Run `python ARGS` from where and with what HubProcess runs the hub; its output."""
    done = subprocess.run(
        [sys.executable, *args],
        env=hub_env(settings, 0) | (env or {}),
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, f"{args}: {done.stdout}{done.stderr}"
    return done.stdout


def schema_revision(settings: Settings) -> str | None:
    """What `alembic current` says: the revision in the alembic_version table."""
    engine = sa.create_engine(settings.sqlalchemy_url())
    try:
        with engine.connect() as conn:
            return MigrationContext.configure(conn).get_current_revision()
    finally:
        engine.dispose()


def logged_errors(log: Path) -> list[str]:
    """A hub's log lines (JSON) at level ERROR or above, and any line that is not JSON."""
    bad = []
    for line in log.read_text(encoding="utf-8", errors="replace").splitlines():
        try:
            level = orjson.loads(line).get("level")
        except (orjson.JSONDecodeError, AttributeError):
            level = "not JSON"
        if level not in ("DEBUG", "INFO", "WARNING"):
            bad.append(line)
    return bad


class Stream:
    """Sends notes to a hub from a thread until stopped; each sent is kept with its answer
    and the phase (`phase`, set by the test) it was sent in."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.phase = "before"
        self.sent: list[tuple[str, str, int | str]] = []  # phase, id, status or error
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self) -> Stream:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(timeout=30)

    def _run(self) -> None:
        with httpx.Client(headers={"authorization": f"Bearer {KEYS[SENDER]}"}, timeout=10) as c:
            while not self._stop.is_set():
                event, phase = note([DEST_A, DEST_B]), self.phase
                status: int | str
                try:
                    status = c.post(f"{self.url}/api/v1/messages", json=event).status_code
                except httpx.HTTPError as exc:
                    status = repr(exc)
                self.sent.append((phase, event["id"], status))
                self._stop.wait(0.01)

    def count(self, phase: str) -> int:
        return sum(1 for p, _, _ in self.sent if p == phase)


def send(url: str, n: int) -> list[str]:
    """Send `n` notes to both receivers; their ids (each answered 202)."""
    ids = []
    with httpx.Client(headers={"authorization": f"Bearer {KEYS[SENDER]}"}, timeout=10) as c:
        for _ in range(n):
            event = note([DEST_A, DEST_B])
            answer = c.post(f"{url}/api/v1/messages", json=event)
            assert answer.status_code == 202, answer.text
            ids.append(event["id"])
    return ids


def delivered_to_both(sink: RecordingSink, ids: list[str]) -> bool:
    """Whether each of `ids` was delivered to each of the two receivers (their paths)."""
    got = {(r.path, r.event_id) for r in sink.received if r.delivered}
    paths = {path for path, _ in got}
    return len(paths) == 2 and all((p, i) in got for p in paths for i in ids)


@pytest.mark.slow
@pytest.mark.rabbitmq
@pytest.mark.postgres
def test_new_migrations_apply_while_the_last_release_serves(
    tmp_path: Path, pg_url: str, amqp_url: str, unique: str, old_release: Path
) -> None:
    head = ScriptDirectory(str(MIGRATIONS)).get_current_head()
    old_head = ScriptDirectory(str(old_release / "hub/store/migrations")).get_current_head()
    assert old_head != head, f"no migration since {OLD_RELEASE}: nothing to test"
    serving = {
        "HUB_AUTO_MIGRATE": "false",  # the schema is upgraded by `hub db upgrade` only
        "HUB_LOG_FORMAT": "json",
        "HUB_BLOB_DIR": str(tmp_path / "blobs"),
    }
    old_code = running(old_release)
    with RecordingSink() as sink:
        settings = Settings(
            config=write_config(tmp_path, sink.url),
            database_url=pg_url,
            broker_url=amqp_url,
            queue_prefix=unique,
        )
        imported = python(settings, "-c", "import hub; print(hub.__file__)", env=old_code)
        assert Path(imported.strip()).is_relative_to(old_release), imported
        python(settings, "-m", "hub.cli", "db", "upgrade", env=old_code)
        assert schema_revision(settings) == old_head
        old_log, new_log = tmp_path / "old.log", tmp_path / "new.log"
        old = HubProcess(settings, log=old_log, env=old_code | serving)
        new = HubProcess(settings, log=new_log, env=serving)
        try:
            old.start()
            with Stream(old.url) as stream:
                wait_until(lambda: stream.count("before") >= 50, timeout=20)
                stream.phase = "during"
                python(settings, "-m", "hub.cli", "db", "upgrade")  # this version's
                stream.phase = "after"
                assert schema_revision(settings) == head
                wait_until(lambda: stream.count("after") >= 150, timeout=20)
            refused = [sent for sent in stream.sent if sent[2] != 202]
            assert not refused, refused[:5]
            assert stream.count("during") > 0
            ids = [i for _, i, _ in stream.sent]
            wait_until(lambda: delivered_to_both(sink, ids), timeout=30)

            new.start()  # beside the old one, on the upgraded schema
            ids = send(old.url, 20) + send(new.url, 20)
            wait_until(lambda: delivered_to_both(sink, ids), timeout=30)
            assert old.proc is not None and old.proc.poll() is None
            assert logged_errors(old_log) == []
            assert logged_errors(new_log) == []
            assert schema_revision(settings) == head
        finally:
            new.stop()
            old.stop()
            delete_queues(amqp_url, unique)
