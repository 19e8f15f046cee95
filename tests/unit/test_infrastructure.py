"""The deployment files agree with the application and with our hardening rules.

Parsed offline with PyYAML: Kubernetes manifests, docker-compose.yml and the Dockerfile.
The probe paths are checked against the real app's URL map, so renaming a health route
without updating the probes fails here rather than in a cluster.
"""

from __future__ import annotations

import base64
import importlib
import os
import re
import runpy
from pathlib import Path
from typing import Any

import pytest
from flask import Flask

from auth_microservice_app import create_app
from auth_microservice_app.config import (
    ConfigError,
    ProductionConfig,
    StagingConfig,
    load_config,
)
from auth_microservice_app.config_checks import PLACEHOLDER, PLACEHOLDER_PATTERN
from tests.nginx_conf import NGINX_CONF, nginx_directive

# PyYAML ships no type information and the project carries no stubs for it: import it
# untyped, so mypy stays clean whether or not stubs are added later.
yaml: Any = importlib.import_module("yaml")

ROOT = Path(__file__).resolve().parents[2]
K8S_DIR = ROOT / "infrastructure" / "kubernetes"
DOCKERFILE = ROOT / "Dockerfile"
COMPOSE_FILE = ROOT / "docker-compose.yml"
INGRESS_ANNOTATION = "nginx.ingress.kubernetes.io/"
TERRAFORM_DIR = ROOT / "infrastructure" / "terraform"
APP_UID = 10001
TMP = "/tmp"  # noqa: S108 - the path mounted in the pods, not a file this test creates


def load_manifests() -> list[dict[str, Any]]:
    documents: list[dict[str, Any]] = []
    for path in sorted(K8S_DIR.glob("*.yaml")):
        if path.name == "kustomization.yaml":
            continue
        with path.open(encoding="utf-8") as handle:
            documents.extend(doc for doc in yaml.safe_load_all(handle) if doc)
    return documents


MANIFESTS = load_manifests()
WORKLOADS = [doc for doc in MANIFESTS if doc["kind"] in {"Deployment", "Job"}]


def pod_spec(workload: dict[str, Any]) -> dict[str, Any]:
    spec: dict[str, Any] = workload["spec"]["template"]["spec"]
    return spec


def containers(workload: dict[str, Any]) -> list[dict[str, Any]]:
    spec = pod_spec(workload)
    return list(spec.get("initContainers", [])) + list(spec["containers"])


def by_kind_and_name(kind: str, name: str) -> dict[str, Any]:
    matches = [d for d in MANIFESTS if d["kind"] == kind and d["metadata"]["name"] == name]
    assert len(matches) == 1, f"expected one {kind}/{name}, found {len(matches)}"
    return matches[0]


def workload_id(workload: dict[str, Any]) -> str:
    return f"{workload['kind']}/{workload['metadata']['name']}"


@pytest.fixture(scope="module")
def flask_app(signing_key_pem: str) -> Flask:
    # Only the URL map is needed: an in-memory SQLite database and no Redis.
    return create_app(
        "testing",
        SQLALCHEMY_DATABASE_URI="sqlite://",
        REDIS_URL=None,
        JWT_PRIVATE_KEY=signing_key_pem,
    )


def get_routes(application: Flask) -> set[str]:
    return {
        rule.rule for rule in application.url_map.iter_rules() if "GET" in (rule.methods or set())
    }


def dockerfile_healthcheck_path() -> str:
    text = DOCKERFILE.read_text(encoding="utf-8")
    healthcheck = re.search(r"^HEALTHCHECK .*?CMD (.+)$", text, re.MULTILINE | re.DOTALL)
    assert healthcheck, "the Dockerfile has no HEALTHCHECK"
    path = re.search(r"http://127\.0\.0\.1:[^/]+(/[\w/.-]*)", healthcheck.group(1))
    assert path, "the HEALTHCHECK does not request a local http:// URL"
    return path.group(1)


# --- probes -----------------------------------------------------------------------------


def test_kubernetes_probe_paths_are_get_routes_of_the_app(flask_app: Flask) -> None:
    routes = get_routes(flask_app)
    probed = set()
    for workload in WORKLOADS:
        for container in containers(workload):
            for probe in ("startupProbe", "livenessProbe", "readinessProbe"):
                http_get = container.get(probe, {}).get("httpGet")
                if http_get:
                    probed.add(http_get["path"])
                    assert http_get["path"] in routes, (
                        f"{workload_id(workload)} {probe} requests {http_get['path']}, "
                        "which the app does not serve"
                    )
    assert probed == {"/health/live", "/health"}


def test_api_liveness_is_the_process_check_and_readiness_the_dependency_check() -> None:
    api = by_kind_and_name("Deployment", "auth-service-api")
    (container,) = pod_spec(api)["containers"]
    assert container["livenessProbe"]["httpGet"]["path"] == "/health/live"
    assert container["startupProbe"]["httpGet"]["path"] == "/health/live"
    assert container["readinessProbe"]["httpGet"]["path"] == "/health"


def test_dockerfile_healthcheck_requests_the_liveness_route(flask_app: Flask) -> None:
    path = dockerfile_healthcheck_path()
    assert path == "/health/live"
    assert path in get_routes(flask_app)


# --- container hardening ----------------------------------------------------------------


@pytest.mark.parametrize("workload", WORKLOADS, ids=workload_id)
def test_every_container_runs_as_non_root_with_a_read_only_root(workload: dict[str, Any]) -> None:
    pod_context = pod_spec(workload).get("securityContext", {})
    assert pod_context.get("seccompProfile", {}).get("type") == "RuntimeDefault"
    for container in containers(workload):
        context = container.get("securityContext", {})
        where = f"{workload_id(workload)} container {container['name']}"
        run_as_non_root = context.get("runAsNonRoot", pod_context.get("runAsNonRoot"))
        run_as_user = context.get("runAsUser", pod_context.get("runAsUser"))
        assert run_as_non_root is True, f"{where}: runAsNonRoot is not true"
        assert run_as_user == APP_UID, f"{where}: runs as uid {run_as_user}, not {APP_UID}"
        assert context.get("readOnlyRootFilesystem") is True, f"{where}: root filesystem writable"
        assert context.get("allowPrivilegeEscalation") is False, f"{where}: may escalate"
        assert context.get("privileged", False) is False, f"{where}: privileged"
        assert "ALL" in context.get("capabilities", {}).get("drop", []), f"{where}: keeps caps"
        assert not context.get("capabilities", {}).get("add"), f"{where}: adds capabilities"


@pytest.mark.parametrize("workload", WORKLOADS, ids=workload_id)
def test_every_pod_has_a_writable_tmp_on_an_empty_dir(workload: dict[str, Any]) -> None:
    empty_dirs = {v["name"] for v in pod_spec(workload).get("volumes", []) if "emptyDir" in v}
    for container in containers(workload):
        mounts = {m["mountPath"]: m["name"] for m in container.get("volumeMounts", [])}
        assert mounts.get(TMP) in empty_dirs, f"{container['name']}: /tmp is not an emptyDir"


def test_prometheus_multiproc_dir_is_its_own_empty_dir() -> None:
    api = by_kind_and_name("Deployment", "auth-service-api")
    (container,) = pod_spec(api)["containers"]
    env = {e["name"]: e.get("value") for e in container.get("env", [])}
    directory = env.get("PROMETHEUS_MULTIPROC_DIR")
    assert directory, "the API does not set PROMETHEUS_MULTIPROC_DIR"
    empty_dirs = {v["name"] for v in pod_spec(api)["volumes"] if "emptyDir" in v}
    mounts = {m["mountPath"]: m["name"] for m in container["volumeMounts"]}
    assert mounts.get(directory) in empty_dirs
    assert mounts[directory] != mounts[TMP]


def test_dockerfile_runs_as_the_same_fixed_uid() -> None:
    text = DOCKERFILE.read_text(encoding="utf-8")
    users = re.findall(r"^USER\s+(\S+)", text, re.MULTILINE)
    assert users, "the Dockerfile never switches away from root"
    assert users[-1] == f"{APP_UID}:{APP_UID}"
    assert f"--uid {APP_UID}" in text and f"--gid {APP_UID}" in text


def test_graceful_shutdown_fits_in_the_termination_grace_period() -> None:
    config = by_kind_and_name("ConfigMap", "auth-service-config")["data"]
    api = pod_spec(by_kind_and_name("Deployment", "auth-service-api"))
    (container,) = api["containers"]
    pre_stop = container["lifecycle"]["preStop"]["sleep"]["seconds"]
    graceful = int(config["GUNICORN_GRACEFUL_TIMEOUT"])
    assert api["terminationGracePeriodSeconds"] > graceful + pre_stop


# --- labels and wiring ------------------------------------------------------------------


def test_every_object_is_labelled_as_the_auth_service() -> None:
    for doc in MANIFESTS:
        labels = doc["metadata"].get("labels", {})
        assert labels.get("app.kubernetes.io/name") == "auth-service", doc["metadata"]["name"]


@pytest.mark.parametrize("workload", WORKLOADS, ids=workload_id)
def test_pod_labels_carry_the_component_and_match_the_selector(workload: dict[str, Any]) -> None:
    component = workload["metadata"]["labels"]["app.kubernetes.io/component"]
    pod_labels = workload["spec"]["template"]["metadata"]["labels"]
    assert pod_labels["app.kubernetes.io/name"] == "auth-service"
    assert pod_labels["app.kubernetes.io/component"] == component
    selector = workload["spec"].get("selector", {}).get("matchLabels", {})
    assert selector.items() <= pod_labels.items()
    for container in containers(workload):
        # One logical image name, resolved to registry and tag by kustomization.yaml.
        assert container["image"] == "auth-service"


def test_service_hpa_and_pdb_point_at_the_api_pods() -> None:
    api = by_kind_and_name("Deployment", "auth-service-api")
    api_pod_labels = api["spec"]["template"]["metadata"]["labels"]
    service = by_kind_and_name("Service", "auth-service-api")
    assert service["spec"]["selector"].items() <= api_pod_labels.items()
    pdb = by_kind_and_name("PodDisruptionBudget", "auth-service-api")
    assert pdb["spec"]["selector"]["matchLabels"].items() <= api_pod_labels.items()
    hpa = by_kind_and_name("HorizontalPodAutoscaler", "auth-service-api")
    assert hpa["apiVersion"] == "autoscaling/v2"
    assert hpa["spec"]["scaleTargetRef"] == {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "name": "auth-service-api",
    }
    assert "replicas" not in api["spec"], "the HPA owns the replica count"
    (container,) = pod_spec(api)["containers"]
    assert {p["name"] for p in container["ports"]} >= {service["spec"]["ports"][0]["targetPort"]}


def test_kustomization_lists_every_manifest() -> None:
    kustomization = yaml.safe_load((K8S_DIR / "kustomization.yaml").read_text(encoding="utf-8"))
    manifests = {p.name for p in K8S_DIR.glob("*.yaml")} - {"kustomization.yaml"}
    assert set(kustomization["resources"]) == manifests


# --- secrets ----------------------------------------------------------------------------


def test_secret_template_holds_only_placeholders() -> None:
    secrets = [doc for doc in MANIFESTS if doc["kind"] == "Secret"]
    assert secrets, "secret.yaml holds no Secret"
    for secret in secrets:
        # base64 "data" would hide what is in it; the template uses readable stringData.
        assert "data" not in secret, f"{secret['metadata']['name']} uses base64 data"
        for key, value in secret["stringData"].items():
            where = f"{secret['metadata']['name']}.{key}"
            assert PLACEHOLDER in value, f"{where} is not a {PLACEHOLDER} placeholder"
            # the marker the application refuses at start-up, so a forgotten one stops the pods
            assert PLACEHOLDER_PATTERN.search(value), f"{where}: the app would not notice it"
            assert "BEGIN" not in value and "PRIVATE KEY" not in value, f"{where} holds a key"
            # Nothing that looks like a generated secret (hex, base64, random alphanumerics:
            # a long run of letters mixed with digits) once the placeholders are removed.
            rest = re.sub(PLACEHOLDER + r"\w*", "", value)
            for run in re.findall(r"[A-Za-z0-9+/]{16,}", rest):
                assert not re.search(r"\d", run), f"{where} looks like a real secret: {value!r}"


def test_no_secret_in_the_configmap() -> None:
    config = by_kind_and_name("ConfigMap", "auth-service-config")["data"]
    secret_names = {
        "SECRET_KEY",
        "DATABASE_URL",
        "REDIS_URL",
        "CELERY_BROKER_URL",
        "CELERY_RESULT_BACKEND",
        "JWT_PRIVATE_KEY",
        "TOTP_ENCRYPTION_KEYS",
        "SENDGRID_API_KEY",
        "SMTP_PASSWORD",
        "GOOGLE_CLIENT_SECRET",
        "GITHUB_CLIENT_SECRET",
        "APPLE_PRIVATE_KEY",
        "METRICS_TOKEN",
    }
    assert not secret_names & config.keys()


# --- the deployed configuration starts -------------------------------------------------


def kubernetes_environment(jwt_key_file: Path, *, replace_placeholders: bool) -> dict[str, str]:
    """What envFrom gives the pods: the ConfigMap, then auth-service-secrets (which wins)."""
    environ = dict(by_kind_and_name("ConfigMap", "auth-service-config")["data"])
    secrets = by_kind_and_name("Secret", "auth-service-secrets")["stringData"]
    for key, value in secrets.items():
        if replace_placeholders:
            value = re.sub(PLACEHOLDER + r"\w*", "operator-value", value)
        environ[key] = value
    if replace_placeholders:
        totp_key = base64.urlsafe_b64encode(b"k" * 32).decode()
        environ["TOTP_ENCRYPTION_KEYS"] = f"k1:{totp_key}"
    # the Secret auth-service-jwt, mounted where JWT_PRIVATE_KEY_FILE points in the pods
    assert environ["JWT_PRIVATE_KEY_FILE"].startswith("/etc/auth-service/jwt/")
    environ["JWT_PRIVATE_KEY_FILE"] = str(jwt_key_file)
    return environ


@pytest.fixture
def jwt_key_file(tmp_path: Path, signing_key_pem: str) -> Path:
    path = tmp_path / "private-key.pem"
    path.write_text(signing_key_pem)
    return path


def test_kubernetes_configuration_starts_production_once_the_secrets_are_filled_in(
    jwt_key_file: Path,
) -> None:
    environ = kubernetes_environment(jwt_key_file, replace_placeholders=True)
    config = load_config(environ=environ)
    assert type(config) is ProductionConfig
    config.validate()  # METRICS_TOKEN, a broker and https public URLs are all there
    assert config.METRICS_TOKEN and config.CELERY_BROKER_URL
    assert config.REQUIRE_EMAIL_VERIFICATION is True
    assert not (config.ALLOW_INSECURE_URLS or config.EMAIL_DELIVERY_IN_PROCESS)
    assert not config.SMTP_ALLOW_PLAINTEXT


@pytest.mark.parametrize("env_name", ["staging", "production"])
def test_kubernetes_secret_template_as_shipped_is_refused(
    jwt_key_file: Path, env_name: str
) -> None:
    environ = kubernetes_environment(jwt_key_file, replace_placeholders=False)
    environ["APP_ENV"] = env_name
    config = load_config(environ=environ)
    assert isinstance(config, StagingConfig)
    with pytest.raises(ConfigError, match=r"^[A-Z][A-Z0-9_]* still holds the template"):
        config.validate()


def test_configmap_sets_none_of_the_escape_hatches() -> None:
    config = by_kind_and_name("ConfigMap", "auth-service-config")["data"]
    assert not {"ALLOW_INSECURE_URLS", "SMTP_ALLOW_PLAINTEXT"} & config.keys()
    secrets = by_kind_and_name("Secret", "auth-service-secrets")["stringData"]
    assert "CELERY_BROKER_URL" in secrets or config.get("EMAIL_DELIVERY_IN_PROCESS") == "true"


def test_terraform_secret_carries_what_production_requires() -> None:
    """modules/app writes every required setting (the JWT key is its own Secret) and a broker."""
    text = (TERRAFORM_DIR / "modules" / "app" / "main.tf").read_text(encoding="utf-8")
    secret = text.split('resource "kubernetes_secret_v1" "app"', 1)[1].split("\nresource ", 1)[0]
    needed = set(ProductionConfig.REQUIRED_SETTINGS) - {"JWT_PRIVATE_KEY"} | {"CELERY_BROKER_URL"}
    for name in sorted(needed):
        assert re.search(rf"^\s*{name}\s*=\s*var\.\w+", secret, re.MULTILINE), name
    root = (TERRAFORM_DIR / "main.tf").read_text(encoding="utf-8")
    # an empty celery_broker_url falls back to the ElastiCache Redis: never an empty broker
    broker = re.search(r"^\s*celery_broker_url\s*=\s*(.+)$", root, re.MULTILINE)
    assert broker and 'var.celery_broker_url != ""' in broker.group(1)
    assert "redis_base_url" in broker.group(1)


# --- docker compose ---------------------------------------------------------------------


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    document: dict[str, Any] = yaml.safe_load(COMPOSE_FILE.read_text(encoding="utf-8"))
    return document


@pytest.mark.parametrize("service", ["api", "worker"])
def test_compose_app_services_wait_for_healthy_dependencies(
    compose: dict[str, Any], service: str
) -> None:
    depends_on = compose["services"][service]["depends_on"]
    assert isinstance(depends_on, dict), "depends_on must use the long form with conditions"
    for dependency in ("postgres", "redis", "rabbitmq"):
        assert depends_on[dependency]["condition"] == "service_healthy"
    assert depends_on["migrate"]["condition"] == "service_completed_successfully"


def test_compose_services_have_health_checks(compose: dict[str, Any]) -> None:
    for name in ("postgres", "redis", "rabbitmq", "api", "worker"):
        healthcheck = compose["services"][name].get("healthcheck", {})
        assert healthcheck.get("test"), f"{name} has no healthcheck"
        assert not healthcheck.get("disable"), f"{name} disables its healthcheck"


def test_compose_healthchecks_wait_on_what_the_dependents_need(compose: dict[str, Any]) -> None:
    services = compose["services"]
    for name, service in services.items():
        for dependency, rule in (service.get("depends_on") or {}).items():
            if rule["condition"] == "service_healthy":
                assert services[dependency].get("healthcheck", {}).get("test"), (
                    f"{name} waits for {dependency} to be healthy, but it has no healthcheck"
                )


def test_compose_migrate_runs_the_upgrade_once(compose: dict[str, Any]) -> None:
    migrate = compose["services"]["migrate"]
    assert migrate["command"][-2:] == ["db", "upgrade"]
    assert migrate.get("restart", "no") == "no"


@pytest.mark.parametrize("service", ["migrate", "api", "worker", "beat"])
def test_compose_app_environment_passes_the_start_up_checks(
    compose: dict[str, Any], service: str
) -> None:
    environment = {k: str(v) for k, v in compose["services"][service]["environment"].items()}
    config = load_config(environ=environment)
    assert environment["APP_ENV"] == config.APP_ENV
    config.validate()


# --- the buffering proxy in front of gunicorn ---------------------------------------------
# gthread holds a thread per connection until its request has arrived (issue 15, F2), so
# gunicorn is published only through nginx (compose) or the ingress (Kubernetes).


def nginx_size(value: str) -> int:
    """nginx's size syntax: 64k, 1m, or bytes."""
    number, unit = re.fullmatch(r"(\d+)([km]?)", value.lower()).groups()
    return int(number) * {"": 1, "k": 1024, "m": 1024 * 1024}[unit]


def app_max_content_length() -> int:
    return int(load_config("development", environ={}).MAX_CONTENT_LENGTH)


def test_compose_publishes_only_the_proxy(compose: dict[str, Any]) -> None:
    services = compose["services"]
    api = services["api"]
    assert "ports" not in api, "gunicorn must not be published: clients go through the proxy"
    for name, service in services.items():
        if service.get("image") == api["image"]:  # every container running the app
            assert "ports" not in service, f"{name} publishes a port of the app image"
    proxy = services["proxy"]
    (published,) = proxy["ports"]
    host, host_port, container_port = str(published).split(":")
    assert host == "127.0.0.1", "the development proxy listens on loopback only"
    assert host_port == "8000", "the API keeps its documented address"
    assert container_port == nginx_directive("listen"), "published port is not nginx's listen"
    assert "api:8000" in nginx_directive("server"), "nginx does not forward to the api service"
    # Anything else published (RabbitMQ's console) is loopback-only and not the API.
    for name, service in services.items():
        for mapping in service.get("ports", []):
            assert str(mapping).startswith("127.0.0.1:"), f"{name} publishes {mapping} widely"


def test_compose_proxy_runs_the_repository_nginx_configuration(compose: dict[str, Any]) -> None:
    proxy = compose["services"]["proxy"]
    command = proxy["command"]
    config_path = command[command.index("-c") + 1]
    mounts = {m.split(":")[1]: m.split(":")[0] for m in proxy["volumes"]}
    assert mounts[config_path] == "./" + str(NGINX_CONF.relative_to(ROOT))
    assert "-p" in command, "the configuration's relative paths need a prefix"


def test_proxies_buffer_requests_and_stop_slow_clients() -> None:
    assert nginx_directive("proxy_request_buffering") == "on"
    assert nginx_directive("proxy_buffering") == "on"
    for timeout in ("client_header_timeout", "client_body_timeout", "send_timeout"):
        seconds = int(nginx_directive(timeout).removesuffix("s"))
        assert 0 < seconds <= 15, f"{timeout} {seconds}s: slow clients would hold sockets long"
    assert nginx_directive("limit_conn_zone").startswith("$binary_remote_addr ")
    ingress = by_kind_and_name("Ingress", "auth-service-api")["metadata"]["annotations"]
    assert ingress[INGRESS_ANNOTATION + "proxy-request-buffering"] == "on"
    assert ingress[INGRESS_ANNOTATION + "proxy-buffering"] == "on"
    limit = nginx_directive("limit_conn per_client_address")
    assert ingress[INGRESS_ANNOTATION + "limit-connections"] == limit


def test_proxies_refuse_bodies_the_app_would_refuse(compose: dict[str, Any]) -> None:
    limit = app_max_content_length()
    assert nginx_size(nginx_directive("client_max_body_size")) == limit
    assert nginx_size(nginx_directive("client_body_buffer_size")) >= limit  # never on disk
    ingress = by_kind_and_name("Ingress", "auth-service-api")["metadata"]["annotations"]
    assert nginx_size(ingress[INGRESS_ANNOTATION + "proxy-body-size"]) == limit
    # Neither deployment moves the app's limit away from the proxies'.
    config = by_kind_and_name("ConfigMap", "auth-service-config")["data"]
    assert "MAX_CONTENT_LENGTH" not in config
    assert "MAX_CONTENT_LENGTH" not in compose["services"]["api"]["environment"]


def test_kubernetes_exposes_the_api_only_through_the_ingress() -> None:
    service = by_kind_and_name("Service", "auth-service-api")
    assert service["spec"]["type"] == "ClusterIP"
    for doc in MANIFESTS:
        if doc["kind"] == "Service":
            assert doc["spec"].get("type", "ClusterIP") == "ClusterIP", doc["metadata"]["name"]
    ingress = by_kind_and_name("Ingress", "auth-service-api")
    backends = [
        path["backend"]["service"]
        for rule in ingress["spec"]["rules"]
        for path in rule["http"]["paths"]
    ]
    assert backends == [{"name": "auth-service-api", "port": {"name": "http"}}]
    assert {p["name"] for p in service["spec"]["ports"]} >= {"http"}


def test_one_proxy_hop_is_trusted_by_the_app_alone(compose: dict[str, Any]) -> None:
    """TRUSTED_PROXIES=1 wherever a proxy is in front; gunicorn itself trusts no peer."""
    assert compose["services"]["api"]["environment"]["TRUSTED_PROXIES"] == "1"
    assert by_kind_and_name("ConfigMap", "auth-service-config")["data"]["TRUSTED_PROXIES"] == "1"
    settings = runpy.run_path(str(ROOT / "gunicorn.conf.py"))
    assert settings["forwarded_allow_ips"] == ""
    assert nginx_directive("proxy_set_header X-Forwarded-For") == "$remote_addr"


# --- TOTP_ENCRYPTION_KEYS: one format everywhere ---------------------------------------------


def totp_key_validation(variables_tf: Path) -> str:
    """The regex of the ``can(regex(...))`` validation of variable totp_encryption_keys."""
    text = variables_tf.read_text(encoding="utf-8")
    block = text.split('variable "totp_encryption_keys"', 1)[1].split("\nvariable ", 1)[0]
    found = re.search(r'can\(regex\("((?:[^"\\]|\\.)*)",\s*var\.totp_encryption_keys\)\)', block)
    assert found, f"{variables_tf}: no format validation of totp_encryption_keys"
    return found.group(1).replace("\\\\", "\\")


def random_b64(size: int, *, urlsafe: bool = False, padded: bool = True) -> str:
    encode = base64.urlsafe_b64encode if urlsafe else base64.b64encode
    text = encode(os.urandom(size)).decode()
    return text if padded else text.rstrip("=")


TOTP_VALUES = [
    f"k1:{random_b64(32)}",
    f"k1:{random_b64(32, urlsafe=True, padded=False)}",
    f"k2:{random_b64(48)},k1:{random_b64(32)}",
    f"2026-01_a.b:{random_b64(64)}",
    # what the old documents made: a Fernet key, no kid
    random_b64(32, urlsafe=True),
    f"k1:{random_b64(16)}",  # too short
    "k1:",
    f"k1 {random_b64(32)}",
    f"k1:{random_b64(32)},",  # Terraform is stricter than the app about a trailing comma
    "CHANGE_ME",
]


@pytest.mark.parametrize("value", TOTP_VALUES)
def test_terraform_accepts_exactly_the_totp_keys_production_accepts(value: str) -> None:
    from auth_microservice_app.utils.encryption import KeyRingError, parse_key_ring

    pattern = totp_key_validation(TERRAFORM_DIR / "variables.tf")
    terraform_accepts = re.search(pattern, value) is not None
    try:
        parse_key_ring(value)
        app_accepts = True
    except KeyRingError:
        app_accepts = False
    if value.endswith(","):
        assert app_accepts and not terraform_accepts
    else:
        assert terraform_accepts == app_accepts, (value, terraform_accepts, app_accepts)


def test_the_app_module_checks_the_totp_keys_like_the_root_module() -> None:
    root = totp_key_validation(TERRAFORM_DIR / "variables.tf")
    assert totp_key_validation(TERRAFORM_DIR / "modules" / "app" / "variables.tf") == root


def test_no_deployment_file_describes_fernet_keys() -> None:
    """TOTP_ENCRYPTION_KEYS was documented as Fernet keys, which production refuses."""
    files = [
        K8S_DIR / "secret.yaml",
        TERRAFORM_DIR / "variables.tf",
        TERRAFORM_DIR / "modules" / "app" / "variables.tf",
        ROOT / "docs" / "deployment.md",
        ROOT / ".env.example",
    ]
    described = re.compile(r"Fernet keys|Fernet\.generate_key|cryptography\.fernet|44-character")
    for path in files:
        assert not described.search(path.read_text(encoding="utf-8")), path
