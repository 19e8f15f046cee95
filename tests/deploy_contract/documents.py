"""What the repository's documents say, read the way an operator reads them."""

from __future__ import annotations

import importlib
import json
import re
import shlex
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
DEPLOYMENT_DOC = ROOT / "docs" / "deployment.md"
DOCKERFILE = ROOT / "Dockerfile"
SECRET_TEMPLATE = ROOT / "infrastructure" / "kubernetes" / "secret.yaml"
COMPOSE_FILE = ROOT / "docker-compose.yml"
#: The comment that opens each block of docs/deployment.md the contract test runs.
STEP_MARKER = re.compile(r"^# deploy-step: ([a-z0-9-]+)\s*$")

yaml: Any = importlib.import_module("yaml")  # PyYAML ships no type information


def deploy_steps(document: Path = DEPLOYMENT_DOC) -> dict[str, str]:
    """Every fenced ``bash`` block whose first line is ``# deploy-step: NAME``, by name."""
    steps: dict[str, str] = {}
    blocks = re.findall(r"^```bash\n(.*?)^```", document.read_text(encoding="utf-8"), re.S | re.M)
    for block in blocks:
        first, _, rest = block.partition("\n")
        marker = STEP_MARKER.match(first)
        if marker:
            assert marker.group(1) not in steps, f"deploy-step {marker.group(1)} appears twice"
            steps[marker.group(1)] = rest
    return steps


def deploy_step(name: str, document: Path = DEPLOYMENT_DOC) -> str:
    steps = deploy_steps(document)
    assert name in steps, (
        f"{document.name} has no ```bash block starting with '# deploy-step: {name}' "
        f"(found: {sorted(steps)})"
    )
    return steps[name]


def _runtime_stage() -> list[str]:
    """The Dockerfile's last stage, one instruction per line (continuations joined)."""
    text = DOCKERFILE.read_text(encoding="utf-8").replace("\\\n", " ")
    lines = [line.strip() for line in text.splitlines()]
    lines = [line for line in lines if line and not line.startswith("#")]
    stages = [i for i, line in enumerate(lines) if line.upper().startswith("FROM ")]
    return lines[stages[-1] :]


def image_environment() -> dict[str, str]:
    """The ``ENV`` the image sets: every container starts from it."""
    env: dict[str, str] = {}
    for line in _runtime_stage():
        if line.upper().startswith("ENV "):
            for word in shlex.split(line[4:]):
                name, _, value = word.partition("=")
                env[name] = value
    return env


def image_command() -> list[str]:
    """The image's ``CMD``: what a container runs when its spec gives no command."""
    commands = [line for line in _runtime_stage() if line.upper().startswith("CMD ")]
    command: list[str] = json.loads(commands[-1][4:])
    return command


def secret_template() -> tuple[dict[str, str], set[str]]:
    """auth-service-secrets' keys and placeholder values, and the keys it calls optional
    (those after its ``# Optional`` comment)."""
    text = SECRET_TEMPLATE.read_text(encoding="utf-8")
    documents = [doc for doc in yaml.safe_load_all(text) if doc]
    (secret,) = [doc for doc in documents if doc["metadata"]["name"] == "auth-service-secrets"]
    values: dict[str, str] = dict(secret["stringData"])
    optional_part = text.split("# Optional", 1)[1].split("\n---", 1)[0]
    optional = {key for key in values if re.search(rf"^\s+{key}:", optional_part, re.M)}
    return values, optional


def compose_service_environment(service: str) -> dict[str, str]:
    """The environment docker compose gives ``service`` (anchors and merge keys resolved)."""
    compose = yaml.safe_load(COMPOSE_FILE.read_text(encoding="utf-8"))
    environment = compose["services"][service].get("environment") or {}
    return {str(key): str(value) for key, value in environment.items()}


def compose_service_command(service: str) -> list[str]:
    compose = yaml.safe_load(COMPOSE_FILE.read_text(encoding="utf-8"))
    command = compose["services"][service].get("command")
    return [str(word) for word in command] if command else image_command()
