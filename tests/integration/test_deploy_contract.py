"""The deployment documents, followed (issue 16): every secret is made by the command the
documents show, the service starts with exactly the environment they configure, and it works.

docs/deployment.md marks the blocks an operator runs with ``# deploy-step: NAME``; this test
runs them in order with bash, from a scratch checkout, as written:

* Kubernetes by hand: ``signing-key`` (``flask ... keys generate``), ``generated-secrets``,
  the per-environment lines appended in the formats of infrastructure/kubernetes/secret.yaml,
  ``create-secrets``, then ``release`` (scripts/deploy.sh).
* Kubernetes through Terraform: ``signing-key``, ``terraform``, then ``release``.
* The production-like trial on one machine: ``trial``.
* docker compose: the ``migrate`` and ``api`` services' environment and commands.

What needs a cloud is stood in for (tests/deploy_contract/cluster.py): ``kubectl`` keeps the
Secrets and the objects applied, rendered by the real ``kubectl kustomize`` when kubectl is
installed (else from the YAML files); ``docker build``/``push`` are recorded; ``terraform
init``/``plan`` run the real terraform on the variables alone, so every validation sees the
documented values, and ``apply`` is recorded. The migration Job runs when deploy.sh waits for
it, then the worker and the API start as their Deployments say: the image's ENV, the ConfigMap,
the Secret, ``env`` and the mounted volumes (the signing key where ``JWT_PRIVATE_KEY_FILE``
points). Only addresses change: HOST/PORT to a loopback port, the database, Redis and broker to
the test services (no TLS on loopback), SendGrid's API to a local fake. Then /health, /metrics,
registration, the emailed verification link and a login, behind what the ingress adds
(``X-Forwarded-Proto: https``).
"""

from __future__ import annotations

import email
import json
import os
import re
import secrets
import shutil
import string
import subprocess
import sys
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from email import policy
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import pytest
import redis as redis_lib
from pytest_httpserver import HTTPServer
from sqlalchemy import create_engine, make_url, text
from werkzeug import Request, Response

from tests.conftest import PASSWORD, TEST_DATABASE_URL, TEST_REDIS_URL
from tests.deploy_contract.cluster import Cluster, install_stub
from tests.deploy_contract.documents import (
    compose_service_command,
    compose_service_environment,
    deploy_step,
    image_environment,
    secret_template,
)
from tests.running_server import (
    BEHIND_THE_PROXY,
    ROOT,
    Server,
    base_environment,
    free_port,
    start,
    venv_bin,
)

pytestmark = [pytest.mark.integration, pytest.mark.slow]

#: From SendGrid's console, not from a command: the one per-environment secret besides URLs.
SENDGRID_API_KEY = "SG.deploy-contract-test"
VERIFY_LINK = re.compile(r"/verify-email\?token=([A-Za-z0-9_-]+)")
MAIL_DEADLINE_S = 60.0


# --- the deployment under test -----------------------------------------------------------------


@dataclass
class Deployment:
    """A scratch checkout, the operator's shell, a fake cluster, and the test's services."""

    workdir: Path
    cluster: Cluster
    shell: dict[str, str]
    database_url: str
    redis_url: str
    port: int
    logs: Path
    mail: list[dict[str, Any]]
    servers: list[Server] = field(default_factory=list)

    def run(self, step: str, script: str | None = None) -> str:
        """Run a documented block in bash, stopping at its first failing command."""
        script = deploy_step(step) if script is None else script
        done = subprocess.run(  # noqa: S603 - the documents' own commands
            ["bash", "-c", "set -eo pipefail\n" + script],  # noqa: S607
            cwd=self.workdir,
            env=self.shell,
            capture_output=True,
            text=True,
            timeout=600,
            check=False,
        )
        (self.logs / f"step-{step}.log").write_text(done.stdout + done.stderr)
        assert done.returncode == 0, (
            f"deploy-step {step} failed with {done.returncode}:\n{script}\n"
            f"--- output ---\n{done.stdout[-4000:]}\n{done.stderr[-4000:]}\n"
            "--- the fake cluster saw ---\n" + "\n".join(self.cluster.calls()[-40:])
        )
        return done.stdout

    def serve(self, command: list[str], env: dict[str, str], name: str, **kwargs: Any) -> Server:
        server = start(
            command,
            env=env,
            port=self.port,
            log_dir=self.logs,
            cwd=self.workdir,
            name=name,
            **kwargs,
        )
        self.servers.append(server)
        return server

    def start_process(self, command: list[str], env: dict[str, str], name: str) -> Server:
        """A process that serves no HTTP (the Celery worker)."""
        return self.serve(command, env, name, live_path=None)

    def verification_token(self, address: str, read: Callable[[], list[tuple[str, str]]]) -> str:
        """The token of the link emailed to ``address``; ``read`` gives (to, text) pairs."""
        import time

        deadline = time.monotonic() + MAIL_DEADLINE_S
        while time.monotonic() < deadline:
            for to, body in read():
                link = VERIFY_LINK.search(body)
                if to == address and link:
                    return link.group(1)
            time.sleep(0.2)
        logs = "\n".join(server.logs() for server in self.servers)
        pytest.fail(f"no verification email to {address} within {MAIL_DEADLINE_S}s\n{logs}")

    def sendgrid_mail(self) -> list[tuple[str, str]]:
        return [
            (message["personalizations"][0]["to"][0]["email"], message["content"][0]["value"])
            for message in self.mail
        ]


@pytest.fixture
def deployment(
    tmp_path: Path, redis_client: redis_lib.Redis, httpserver: HTTPServer
) -> Iterator[Deployment]:
    database = make_url(TEST_DATABASE_URL)
    database = database.set(database=f"{database.database}_deploy")
    admin = create_engine(
        make_url(TEST_DATABASE_URL).set(drivername="postgresql+psycopg2"),
        isolation_level="AUTOCOMMIT",
    )
    with admin.connect() as connection:
        connection.execute(text(f'DROP DATABASE IF EXISTS "{database.database}" WITH (FORCE)'))
        connection.execute(text(f'CREATE DATABASE "{database.database}"'))
    redis_client.flushdb()

    mail: list[dict[str, Any]] = []

    def sendgrid(request: Request) -> Response:
        mail.append(json.loads(request.get_data()))
        return Response("", status=202)

    httpserver.expect_request("/v3/mail/send", method="POST").respond_with_handler(sendgrid)

    workdir = checkout(tmp_path / "checkout")
    cluster = Cluster(tmp_path / "cluster")
    port = free_port()
    cluster.configure(
        workdir=str(workdir),
        image_env=image_environment(),
        base_env=base_environment(),
        overrides={
            # a pod listens on 0.0.0.0:8000 behind its Service; here a loopback port
            "HOST": "127.0.0.1",
            "PORT": str(port),
            "SENDGRID_API_HOST": httpserver.url_for("").rstrip("/"),
        },
    )
    stubs = tmp_path / "bin"
    for name in ("kubectl", "docker", "terraform"):
        install_stub(name, stubs)
    shell = base_environment()
    shell.update(
        {
            "PATH": f"{stubs}{os.pathsep}{shell['PATH']}",
            "CONTRACT_CLUSTER_DIR": str(cluster.root),
            "CONTRACT_REAL_KUBECTL": shutil.which("kubectl") or "",
            "CONTRACT_REAL_TERRAFORM": shutil.which("terraform") or "",
            "SENDGRID_API_KEY": SENDGRID_API_KEY,  # the operator's, from their secret store
        }
    )
    logs = tmp_path / "logs"
    logs.mkdir()
    running = Deployment(
        workdir=workdir,
        cluster=cluster,
        shell=shell,
        database_url=database.render_as_string(hide_password=False),
        redis_url=TEST_REDIS_URL,
        port=port,
        logs=logs,
        mail=mail,
    )
    try:
        yield running
    finally:
        for server in running.servers:
            server.stop()
        with admin.connect() as connection:
            connection.execute(text(f'DROP DATABASE IF EXISTS "{database.database}" WITH (FORCE)'))
        admin.dispose()
        redis_client.flushdb()


def checkout(root: Path) -> Path:
    """What an operator has: the repository (the package and migrations linked, the rest
    copied, so nothing the documents write lands in the real one) and its virtualenv."""
    root.mkdir(parents=True)
    for name in ("auth_microservice_app", "migrations"):
        (root / name).symlink_to(ROOT / name)
    shutil.copy(ROOT / "gunicorn.conf.py", root / "gunicorn.conf.py")
    shutil.copytree(
        ROOT / "infrastructure",
        root / "infrastructure",
        ignore=shutil.ignore_patterns(".terraform*", ".deploy-overlay*", "*.tfplan"),
    )
    (root / "scripts").mkdir()
    shutil.copy(ROOT / "scripts" / "deploy.sh", root / "scripts" / "deploy.sh")
    venv = root / ".venv" / "bin"
    venv.mkdir(parents=True)
    for tool in ("flask", "python", "celery"):
        (venv / tool).symlink_to(venv_bin() / tool)
    install_stub("gunicorn", venv)  # a document that serves in the foreground: recorded
    return root


def loopback(url: str, deployment: Deployment) -> str:
    """A connection string of the documents, pointed at the test's services instead."""
    scheme = urlsplit(url).scheme
    if scheme.startswith("postgres"):
        return deployment.database_url
    if scheme in {"redis", "rediss"}:  # no TLS and no password on the loopback Redis
        return deployment.redis_url
    if scheme == "amqp":  # the same broker, on loopback
        parts = urlsplit(url)
        host = f"{parts.username}:{parts.password}@127.0.0.1:{parts.port or 5672}"
        return urlunsplit((parts.scheme, host, parts.path, parts.query, parts.fragment))
    raise AssertionError(f"the test does not know where to point {url}")


# --- using the service -------------------------------------------------------------------------


def sign_up_verify_and_log_in(
    server: Server, deployment: Deployment, read_mail: Callable[[], list[tuple[str, str]]]
) -> None:
    """Register, be refused until the emailed link is followed, then sign in (production)."""
    address = f"ada-{uuid.uuid4().hex[:8]}@example.com"
    credentials = {"email": address, "password": PASSWORD}
    registered = server.call("POST", "/api/v1/auth/register", body=credentials)
    assert registered.status == 201, f"{registered}\n{server.logs()}"
    refused = server.call("POST", "/api/v1/auth/login", body=credentials)
    assert refused.status == 403, refused  # REQUIRE_EMAIL_VERIFICATION is on in production
    assert refused.json["error"]["code"] == "email_not_verified"

    token = deployment.verification_token(address, read_mail)
    verified = server.call("POST", "/api/v1/auth/verify-email", body={"token": token})
    assert verified.status == 200, verified
    assert_signs_in(server, credentials)


def assert_signs_in(server: Server, credentials: dict[str, str]) -> None:
    signed_in = server.call("POST", "/api/v1/auth/login", body=credentials)
    assert signed_in.status == 200, f"{signed_in}\n{server.logs()}"
    bearer = {"Authorization": f"Bearer {signed_in.json['access_token']}"}
    me = server.call("GET", "/api/v1/auth/me", headers=bearer)
    assert me.status == 200, me
    assert me.json["user"]["email"] == credentials["email"]


def assert_healthy(server: Server, *, broker: bool = True) -> None:
    health = server.call("GET", "/health")
    assert health.status == 200, f"{health}\n{server.logs()}"
    assert health.json["status"] == "ok", health  # the database, Redis (and the broker) up
    if not broker:
        assert health.json["checks"]["broker"] == {"status": "not_configured"}


def assert_metrics_behind_the_token(server: Server, metrics_token: str) -> None:
    """/metrics answers the scraper with the token only, and counts what just happened."""
    assert server.call("GET", "/metrics").status == 401
    scrape = server.call("GET", "/metrics", headers={"Authorization": f"Bearer {metrics_token}"})
    assert scrape.status == 200, scrape
    assert scrape.headers["content-type"].startswith("text/plain; version=0.0.4")
    assert re.search(rb'^auth_logins_total\{result="success"\} [1-9]', scrape.body, re.M), (
        scrape.body[-2000:]
    )


def release_and_serve(deployment: Deployment) -> None:
    """`deploy-step: release` (scripts/deploy.sh), then the pods it rolled out, used."""
    cluster = deployment.cluster
    deployment.run("release")
    calls = cluster.calls()
    assert "job auth-service-migrate succeeded" in calls, calls  # flask db upgrade, first
    applied = [line.split(" ", 1)[1] for line in calls if line.startswith("applied ")]
    assert applied.index("Job/auth-service-migrate") < applied.index("Deployment/auth-service-api")
    assert not {"Secret/auth-service-secrets", "Secret/auth-service-jwt"} & set(applied)
    images = cluster.docker()
    api = cluster.object("Deployment", "auth-service-api")
    (container,) = api["spec"]["template"]["spec"]["containers"]
    assert images["pushed"] and container["image"] == images["pushed"][0]

    command, env = cluster.pod(cluster.object("Deployment", "auth-service-worker"), "worker")
    deployment.start_process(command, env, "worker")
    command, env = cluster.pod(api, "api")
    server = deployment.serve(command, env, "api", headers=BEHIND_THE_PROXY)
    assert env["APP_ENV"] == "production"
    assert_healthy(server)
    sign_up_verify_and_log_in(server, deployment, deployment.sendgrid_mail)
    assert_metrics_behind_the_token(server, env["METRICS_TOKEN"])


# --- Kubernetes, by hand -------------------------------------------------------------------------


def test_kubernetes_secrets_made_by_the_documented_commands_start_production(
    deployment: Deployment,
) -> None:
    deployment.run("signing-key")
    (key,) = (deployment.workdir / "jwt-keys").glob("*.pem")

    deployment.run("generated-secrets")
    prod_env = deployment.workdir / "prod.env"
    generated = dict(line.split("=", 1) for line in prod_env.read_text().splitlines())
    template, optional = secret_template()
    per_environment = {
        name: loopback(value, deployment) for name, value in template.items() if "://" in value
    }
    per_environment["SENDGRID_API_KEY"] = SENDGRID_API_KEY  # the ConfigMap's EMAIL_BACKEND
    # the documents make every other secret the template requires, and nothing else
    assert set(generated) == set(template) - optional - set(per_environment), generated
    assert not any("CHANGE_ME" in value.upper() for value in generated.values())
    with prod_env.open("a") as handle:  # "add the lines that belong to this environment"
        handle.writelines(f"{name}={value}\n" for name, value in per_environment.items())

    deployment.run("create-secrets")
    stored = deployment.cluster.secrets()
    assert stored["auth-service-jwt"] == {"private-key.pem": key.read_text()}
    assert (
        stored["auth-service-secrets"]["TOTP_ENCRYPTION_KEYS"] == generated["TOTP_ENCRYPTION_KEYS"]
    )

    release_and_serve(deployment)


# --- Kubernetes, through Terraform ---------------------------------------------------------------


def random_password(length: int) -> str:
    """What Terraform's random_password makes with special = false."""
    alphabet = string.ascii_letters + string.digits
    return "".join(secrets.choice(alphabet) for _ in range(length))


def terraform_writes_the_secrets(deployment: Deployment) -> None:
    """What `terraform apply` would write (modules/app/main.tf), from the planned variables."""
    import hcl2

    planned = deployment.cluster._load("terraform-plan", None)
    assert planned, "terraform plan never succeeded"
    tf_vars = planned["vars"]
    with (ROOT / "infrastructure" / "terraform" / "main.tf").open() as handle:
        root = hcl2.load(handle)
    lengths = {
        name.strip('"'): int(block["length"])
        for resource in root["resource"]
        for kind, blocks in resource.items()
        if kind.strip('"') == "random_password"
        for name, block in blocks.items()
        if not name.startswith("__")  # python-hcl2's own markers
    }
    app_module = (ROOT / "infrastructure" / "terraform" / "modules" / "app" / "main.tf").read_text()
    secret_block = app_module.split('resource "kubernetes_secret_v1" "app"', 1)[1]
    fixed_map = secret_block.split("merge(", 1)[1].split("},", 1)[0]
    keys = re.findall(r"^\s*([A-Z][A-Z0-9_]*)\s*=", fixed_map, re.M)
    made_by_terraform = {
        "SECRET_KEY": random_password(lengths["secret_key"]),
        "METRICS_TOKEN": random_password(lengths["metrics_token"]),
        "DATABASE_URL": deployment.database_url,
        "REDIS_URL": deployment.redis_url,
        "CELERY_BROKER_URL": deployment.redis_url,
        "CELERY_RESULT_BACKEND": deployment.redis_url,
        "TOTP_ENCRYPTION_KEYS": tf_vars["totp_encryption_keys"],
    }
    assert set(keys) == set(made_by_terraform), f"modules/app writes {keys}"
    optional = json.loads(tf_vars.get("optional_app_secrets") or "{}")
    data = {**made_by_terraform, **{k: v for k, v in optional.items() if v != ""}}
    deployment.cluster.save_secret("auth-service-secrets", data)
    deployment.cluster.save_secret(
        "auth-service-jwt", {"private-key.pem": tf_vars["jwt_private_key_pem"]}
    )


@pytest.mark.skipif(not shutil.which("terraform"), reason="terraform is not installed")
def test_terraform_variables_made_by_the_documented_commands_start_production(
    deployment: Deployment,
) -> None:
    deployment.run("signing-key")
    deployment.run("terraform")  # init and plan check every variable's validation
    assert any(call.startswith("terraform apply") for call in deployment.cluster.calls())
    terraform_writes_the_secrets(deployment)
    release_and_serve(deployment)


# --- the production-like trial -----------------------------------------------------------------


def test_the_production_like_trial_as_documented_starts_production(
    deployment: Deployment,
) -> None:
    script = deploy_step("trial")
    # the trial's own addresses, moved to the test's database, Redis database and a free port
    for documented, test_value in {
        "DATABASE_URL=postgresql://postgres@127.0.0.1:5432/auth": (
            f"DATABASE_URL={deployment.database_url}"
        ),
        "REDIS_URL=redis://127.0.0.1:6379/0": f"REDIS_URL={deployment.redis_url}",
        " PORT=8000 ": f" PORT={deployment.port} ",
    }.items():
        assert script.count(documented) == 1, f"the trial no longer says {documented!r}"
        script = script.replace(documented, test_value)
    deployment.run("trial", script)

    recorded = deployment.cluster._load("gunicorn", None)
    assert recorded, "the trial never started gunicorn"
    assert recorded["argv"] == ["-c", "gunicorn.conf.py", "auth_microservice_app.wsgi:app"]
    env = {k: v for k, v in recorded["env"].items() if not k.startswith("CONTRACT_")}
    env["PATH"] = base_environment()["PATH"]  # the real gunicorn, not the recording one
    server = deployment.serve([str(venv_bin() / "gunicorn"), *recorded["argv"]], env, "trial")
    assert_healthy(server, broker=False)
    mail_dir = deployment.workdir / "instance" / "emails"

    def eml_mail() -> list[tuple[str, str]]:
        messages = [
            email.message_from_bytes(path.read_bytes(), policy=policy.default)
            for path in sorted(mail_dir.glob("*.eml"))
        ]
        return [
            (str(m["To"]), str(m.get_body(preferencelist=("plain",)).get_content()))
            for m in messages
        ]

    sign_up_verify_and_log_in(server, deployment, eml_mail)
    assert_metrics_behind_the_token(server, env["METRICS_TOKEN"])


# --- docker compose ------------------------------------------------------------------------------


def compose_environment(service: str, deployment: Deployment) -> dict[str, str]:
    """The image's ENV and the compose service's environment, addresses on loopback."""
    env = {**image_environment(), **compose_service_environment(service)}
    for name in ("DATABASE_URL", "REDIS_URL", "CELERY_BROKER_URL", "CELERY_RESULT_BACKEND"):
        host = urlsplit(env[name]).hostname
        assert host in {"postgres", "redis", "rabbitmq"}, f"{name} points at {host}"
        env[name] = loopback(env[name], deployment)
    env["HOST"], env["PORT"] = "127.0.0.1", str(deployment.port)
    if "PROMETHEUS_MULTIPROC_DIR" in env:  # a path inside the container
        env["PROMETHEUS_MULTIPROC_DIR"] = str(deployment.logs / f"{service}-prometheus")
    return {**base_environment(), **env}


def test_the_compose_api_environment_serves(deployment: Deployment) -> None:
    migrate = subprocess.run(  # noqa: S603 - compose's own command
        compose_service_command("migrate"),
        cwd=deployment.workdir,
        env=compose_environment("migrate", deployment),
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert migrate.returncode == 0, migrate.stdout + migrate.stderr
    env = compose_environment("api", deployment)
    assert env["APP_ENV"] == "development"
    server = deployment.serve(compose_service_command("api"), env, "compose-api")
    health = server.call("GET", "/health")
    assert health.status == 200, f"{health}\n{server.logs()}"
    assert health.json["checks"]["database"]["status"] == "up"
    assert health.json["checks"]["redis"]["status"] == "up"
    credentials = {"email": "compose@example.com", "password": PASSWORD}
    registered = server.call("POST", "/api/v1/auth/register", body=credentials)
    assert registered.status == 201, f"{registered}\n{server.logs()}"
    assert_signs_in(server, credentials)  # development: no verification needed
    assert server.call("GET", "/metrics").status == 200


def test_the_documents_say_where_the_first_signing_key_comes_from() -> None:
    """`keys generate` in the signing-key step, and the Secret/Terraform paths reading it."""
    assert "keys generate --out jwt-keys" in deploy_step("signing-key")
    assert "jwt-keys/*.pem" in deploy_step("create-secrets")
    assert "jwt-keys/*.pem" in deploy_step("terraform")
    assert "keys generate" in deploy_step("trial")
    assert sys.executable  # the steps run with this interpreter's virtualenv
