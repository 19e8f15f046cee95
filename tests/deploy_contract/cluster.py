"""A fake cluster, registry and Terraform for the documented commands to run against.

The contract test puts small executables named ``kubectl``, ``docker`` and ``terraform`` first
on the PATH of the documented commands (and a recording ``gunicorn`` where a document starts the
server in the foreground). Each is ``main()`` below and keeps its state in one directory
(``CONTRACT_CLUSTER_DIR``):

* ``kubectl``: ``create namespace``, ``create secret generic`` (``--from-env-file`` read as
  kubectl reads it, ``--from-file``), ``get secret``, ``apply --kustomize ... --selector``
  (rendered by the real ``kubectl kustomize``, else by :func:`kustomize` here), ``delete job``,
  ``get job ... -o jsonpath=`` (the first look runs the Job's container, as the cluster would),
  ``logs job/...``, ``rollout status`` and ``kustomize``. Anything else fails loudly.
* ``docker``: ``build`` and ``push`` are recorded (there is no engine).
* ``terraform``: ``init`` and ``plan`` run the real terraform on a copy of the root module's
  variables and the app module's, so every variable validation is checked with the values the
  documents produce (no provider, no backend, no network); ``apply`` is recorded, not run;
  ``fmt`` is the real one.

Pods run as local processes: the image's ENV, then ``envFrom`` (ConfigMap, Secret), then
``env``; every volume mount becomes a directory under the cluster directory (Secret volumes
filled with their items) and settings that point into a mount point into that directory;
finally the loopback overrides the test gives (HOST, PORT, the SendGrid host).
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tests.deploy_contract.documents import image_command, yaml

ROOT = Path(__file__).resolve().parents[2]
CLUSTER_DIR_VARIABLE = "CONTRACT_CLUSTER_DIR"
STUBS = ("kubectl", "docker", "terraform")
JOB_TIMEOUT_S = 180


class StubError(Exception):
    """A command the stand-in does not emulate, or one a real cluster would refuse."""


@dataclass
class Cluster:
    root: Path

    # --- state ---------------------------------------------------------------------------

    def _load(self, name: str, default: Any) -> Any:
        path = self.root / f"{name}.json"
        return json.loads(path.read_text()) if path.exists() else default

    def _save(self, name: str, value: Any) -> None:
        (self.root / f"{name}.json").write_text(json.dumps(value, indent=1))

    @property
    def settings(self) -> dict[str, Any]:
        settings: dict[str, Any] = self._load("settings", {})
        return settings

    def configure(self, **settings: Any) -> None:
        self.root.mkdir(parents=True, exist_ok=True)
        self._save("settings", {**self.settings, **settings})

    def log(self, line: str) -> None:
        with (self.root / "calls.log").open("a") as handle:
            handle.write(line + "\n")

    def calls(self) -> list[str]:
        path = self.root / "calls.log"
        return path.read_text().splitlines() if path.exists() else []

    def secrets(self) -> dict[str, dict[str, str]]:
        secrets: dict[str, dict[str, str]] = self._load("secrets", {})
        return secrets

    def save_secret(self, name: str, data: dict[str, str]) -> None:
        secrets = self.secrets()
        if name in secrets:
            raise StubError(f'secrets "{name}" already exists')
        secrets[name] = data
        self._save("secrets", secrets)

    def objects(self, kind: str | None = None) -> list[dict[str, Any]]:
        objects: list[dict[str, Any]] = self._load("objects", [])
        return [o for o in objects if kind is None or o["kind"] == kind]

    def object(self, kind: str, name: str) -> dict[str, Any]:
        matches = [o for o in self.objects(kind) if o["metadata"]["name"] == name]
        if not matches:
            raise StubError(f"{kind}/{name} was never applied")
        return matches[0]

    def apply(self, objects: list[dict[str, Any]]) -> None:
        stored = self.objects()
        for new in objects:
            key = (new["kind"], new["metadata"]["name"])
            stored = [o for o in stored if (o["kind"], o["metadata"]["name"]) != key]
            stored.append(new)
        self._save("objects", stored)

    def docker(self) -> dict[str, list[str]]:
        images: dict[str, list[str]] = self._load("docker", {"built": [], "pushed": []})
        return images

    # --- pods ----------------------------------------------------------------------------

    def config_map(self, name: str) -> dict[str, str]:
        data = self.object("ConfigMap", name).get("data") or {}
        return {str(k): str(v) for k, v in data.items()}

    def secret(self, name: str) -> dict[str, str]:
        secrets = self.secrets()
        if name not in secrets:
            raise StubError(f'secret "{name}" not found: the pod could not start')
        return secrets[name]

    def pod(self, workload: dict[str, Any], name: str) -> tuple[list[str], dict[str, str]]:
        """The command and environment Kubernetes would start ``workload``'s container with."""
        spec = workload["spec"]["template"]["spec"]
        (container,) = spec["containers"]
        env: dict[str, str] = dict(self.settings["image_env"])
        for source in container.get("envFrom", []):
            if "configMapRef" in source:
                env.update(self.config_map(source["configMapRef"]["name"]))
            if "secretRef" in source:
                env.update(self.secret(source["secretRef"]["name"]))
        for item in container.get("env", []):
            env[item["name"]] = str(item["value"])
        mounts = self._mount_volumes(spec, container, self.root / "pods" / name)
        for key, value in env.items():
            for mount_path, host_path in mounts.items():
                if value == mount_path or value.startswith(mount_path.rstrip("/") + "/"):
                    env[key] = str(host_path) + value[len(mount_path.rstrip("/")) :]
        env.update(self.settings["overrides"])
        command = [str(word) for word in container.get("command") or image_command()]
        return command, {**self.settings["base_env"], **env}

    def _mount_volumes(
        self, spec: dict[str, Any], container: dict[str, Any], pod_root: Path
    ) -> dict[str, Path]:
        volumes = {volume["name"]: volume for volume in spec.get("volumes", [])}
        mounts: dict[str, Path] = {}
        for mount in container.get("volumeMounts", []):
            host_path = pod_root / mount["mountPath"].lstrip("/")
            if host_path.exists():
                shutil.rmtree(host_path)
            host_path.mkdir(parents=True)
            volume = volumes[mount["name"]]
            if "secret" in volume:
                data = self.secret(volume["secret"]["secretName"])
                items = volume["secret"].get("items") or [{"key": k, "path": k} for k in data]
                for item in items:
                    if item["key"] not in data:
                        raise StubError(
                            f"secret {volume['secret']['secretName']} has no key {item['key']}"
                        )
                    target = host_path / item["path"]
                    target.write_text(data[item["key"]])
                    target.chmod(0o400)
            elif "emptyDir" not in volume:
                raise StubError(f"volume {mount['name']}: only secret and emptyDir are emulated")
            mounts[mount["mountPath"]] = host_path
        return mounts

    def run_job(self, name: str) -> dict[str, str]:
        command, env = self.pod(self.object("Job", name), f"job-{name}")
        try:
            done = subprocess.run(  # noqa: S603 - the manifest's own command
                command,
                cwd=self.settings["workdir"],
                env=env,
                capture_output=True,
                text=True,
                timeout=JOB_TIMEOUT_S,
                check=False,
            )
            status = "succeeded" if done.returncode == 0 else "failed"
            output = done.stdout + done.stderr
        except subprocess.TimeoutExpired as exc:
            status, output = "failed", f"timed out after {JOB_TIMEOUT_S}s: {exc}"
        result = {"status": status, "log": output}
        jobs = self._load("jobs", {})
        jobs[name] = result
        self._save("jobs", jobs)
        return result


# --- kustomize ------------------------------------------------------------------------------


def kustomize(directory: Path) -> list[dict[str, Any]]:
    """Render a kustomization with the real ``kubectl kustomize``, else the features used here
    (resources, namespace, images, ``$patch: delete``)."""
    real = os.environ.get("CONTRACT_REAL_KUBECTL")
    if real:
        rendered = subprocess.run(  # noqa: S603 - the real kubectl, our directory
            [real, "kustomize", str(directory)], capture_output=True, text=True, check=True
        ).stdout
        return [doc for doc in yaml.safe_load_all(rendered) if doc]
    return _kustomize_here(directory)


def _kustomize_here(directory: Path) -> list[dict[str, Any]]:
    spec = yaml.safe_load((directory / "kustomization.yaml").read_text())
    objects: list[dict[str, Any]] = []
    for resource in spec.get("resources", []):
        path = directory / resource
        if path.is_dir():
            objects.extend(_kustomize_here(path))
        else:
            objects.extend(doc for doc in yaml.safe_load_all(path.read_text()) if doc)
    for patch in spec.get("patches", []):
        target = yaml.safe_load(patch["patch"])
        if target.get("$patch") == "delete":
            objects = [
                o
                for o in objects
                if (o["kind"], o["metadata"]["name"])
                != (target["kind"], target["metadata"]["name"])
            ]
    for obj in objects:
        if spec.get("namespace") and obj["kind"] != "Namespace":
            obj["metadata"]["namespace"] = spec["namespace"]
        pod = obj.get("spec", {}).get("template", {}).get("spec", {})
        for container in pod.get("containers", []) + pod.get("initContainers", []):
            for image in spec.get("images", []):
                if container["image"].split(":")[0] == image["name"]:
                    container["image"] = f"{image.get('newName', image['name'])}:{image['newTag']}"
    return objects


def matches(selector: str, labels: dict[str, str]) -> bool:
    for requirement in filter(None, selector.split(",")):
        if "!=" in requirement:
            key, value = requirement.split("!=", 1)
            if labels.get(key) == value:
                return False
        else:
            key, value = requirement.split("=", 1)
            if labels.get(key) != value:
                return False
    return True


# --- kubectl ----------------------------------------------------------------------------------


def read_env_file(path: Path) -> dict[str, str]:
    """As ``kubectl create secret --from-env-file`` reads it: NAME=value, taken literally."""
    data: dict[str, str] = {}
    for raw in path.read_text().splitlines():
        line = raw.lstrip()
        if not line or line.startswith("#"):
            continue
        if "=" not in line:
            raise StubError(f"{path}: {line!r} is not NAME=value")
        name, value = line.split("=", 1)
        data[name] = value
    return data


def _option(args: list[str], *names: str) -> list[str]:
    """Every value of the options ``names`` (``--name value`` or ``--name=value``)."""
    values = []
    for i, arg in enumerate(args):
        for name in names:
            if arg == name and i + 1 < len(args):
                values.append(args[i + 1])
            elif arg.startswith(name + "="):
                values.append(arg.split("=", 1)[1])
    return values


def kubectl(cluster: Cluster, args: list[str]) -> int:
    words: list[str] = []
    skip = False
    for arg in args:  # global flags: the fake cluster has one namespace and one context
        if skip:
            skip = False
        elif arg in ("-n", "--namespace", "--context"):
            skip = True
        elif not arg.startswith(("--namespace=", "--context=")):
            words.append(arg)
    handler = KUBECTL.get(tuple(words[:2])) or KUBECTL.get(tuple(words[:1]))
    if handler is None:
        raise StubError(f"kubectl {' '.join(args)}: not emulated by the contract test")
    return handler(cluster, words)


def _kubectl_kustomize(cluster: Cluster, words: list[str]) -> int:
    print(yaml.safe_dump_all(kustomize(Path(words[1]))), end="")
    return 0


def _create_namespace(cluster: Cluster, words: list[str]) -> int:
    cluster.log(f"namespace {words[2]} created")
    return 0


def _create_secret(cluster: Cluster, words: list[str]) -> int:
    if words[2] != "generic":
        raise StubError("kubectl create secret: only generic is emulated")
    name, data = words[3], {}
    for env_file in _option(words, "--from-env-file"):
        data.update(read_env_file(Path(env_file)))
    for source in _option(words, "--from-file"):
        key, _, path = source.partition("=")
        data[key] = Path(path).read_text()
    cluster.save_secret(name, data)
    print(f"secret/{name} created")
    return 0


def _get_secret(cluster: Cluster, words: list[str]) -> int:
    names = [w for w in words[2:] if not w.startswith("-") and w != "name"]
    missing = [n for n in names if n not in cluster.secrets()]
    for found in sorted(set(names) - set(missing)):
        print(f"secret/{found}")
    if missing:
        print(f'Error from server (NotFound): secrets "{missing[0]}" not found', file=sys.stderr)
        return 1
    return 0


def _delete_job(cluster: Cluster, words: list[str]) -> int:
    jobs = cluster._load("jobs", {})
    jobs.pop(words[2], None)
    cluster._save("jobs", jobs)
    return 0


def _logs(cluster: Cluster, words: list[str]) -> int:
    kind, _, name = words[1].partition("/")
    if kind != "job":
        raise StubError("kubectl logs: only job/NAME is emulated")
    print(cluster._load("jobs", {}).get(name, {}).get("log", ""))
    return 0


def _rollout_status(cluster: Cluster, words: list[str]) -> int:
    kind, _, name = words[2].partition("/")
    cluster.object(kind.capitalize(), name)  # raises when it was never applied
    cluster.log(f"rollout status {words[2]}")
    print(f"{words[2]} successfully rolled out (the contract test starts its pods itself)")
    return 0


def _apply(cluster: Cluster, words: list[str]) -> int:
    directories = _option(words, "--kustomize", "-k")
    if not directories:
        raise StubError("kubectl apply: only --kustomize is emulated")
    selector = (_option(words, "--selector", "-l") or [""])[0]
    objects = [
        o
        for o in kustomize(Path(directories[0]))
        if matches(selector, o["metadata"].get("labels") or {})
    ]
    cluster.apply(objects)
    for obj in objects:
        cluster.log(f"applied {obj['kind']}/{obj['metadata']['name']}")
        print(f"{obj['kind'].lower()}/{obj['metadata']['name']} configured")
    return 0


def _get_job(cluster: Cluster, words: list[str]) -> int:
    name, output = words[2], (_option(words, "--output", "-o") or [""])[0]
    job = cluster._load("jobs", {}).get(name) or cluster.run_job(name)
    cluster.log(f"job {name} {job['status']}")
    succeeded = "1" if job["status"] == "succeeded" else ""
    failed = "1" if job["status"] == "failed" else ""
    template = output.removeprefix("jsonpath=")
    text = (
        template.replace("{.status.succeeded}", succeeded)
        .replace("{.status.failed}", failed)
        .replace('{.status.conditions[?(@.type=="Failed")].status}', "True" if failed else "")
    )
    print(text, end="")
    return 0


KUBECTL: dict[tuple[str, ...], Callable[[Cluster, list[str]], int]] = {
    ("kustomize",): _kubectl_kustomize,
    ("create", "namespace"): _create_namespace,
    ("create", "secret"): _create_secret,
    ("get", "secret"): _get_secret,
    ("apply",): _apply,
    ("delete", "job"): _delete_job,
    ("get", "job"): _get_job,
    ("logs",): _logs,
    ("rollout", "status"): _rollout_status,
}


# --- docker ---------------------------------------------------------------------------------


def docker(cluster: Cluster, args: list[str]) -> int:
    images = cluster.docker()
    if args[0] == "build":
        (tag,) = _option(args, "--tag", "-t")
        images["built"].append(tag)
    elif args[0] == "push":
        if args[1] not in images["built"]:
            raise StubError(f"docker push {args[1]}: no such image was built")
        images["pushed"].append(args[1])
    else:
        raise StubError(f"docker {' '.join(args)}: not emulated by the contract test")
    cluster._save("docker", images)
    cluster.log(f"docker {args[0]} {images['built'][-1]}")
    print(f"(contract test) docker {args[0]}: recorded, no engine")
    return 0


# --- terraform ------------------------------------------------------------------------------


def terraform(cluster: Cluster, args: list[str]) -> int:
    real = os.environ.get("CONTRACT_REAL_TERRAFORM")
    if not real:
        raise StubError("terraform is not installed: its variable validations cannot be checked")
    chdir = Path((_option(args, "-chdir") or ["."])[0])
    args = [a for a in args if not a.startswith("-chdir")]
    handler = TERRAFORM.get(args[0])
    if handler is None:
        raise StubError(f"terraform {' '.join(args)}: not emulated by the contract test")
    return handler(cluster, real, chdir, args)


def _terraform_fmt(cluster: Cluster, real: str, chdir: Path, args: list[str]) -> int:
    return subprocess.call([real, f"-chdir={chdir}", *args])  # noqa: S603 - the real one


def _terraform_init(cluster: Cluster, real: str, chdir: Path, args: list[str]) -> int:
    copy = cluster.root / "terraform"
    _variables_only_copy(chdir, copy)
    return subprocess.call(  # noqa: S603 - the real terraform, on our copy
        [real, f"-chdir={copy}", "init", "-backend=false", "-input=false", "-no-color"],
        stdout=subprocess.DEVNULL,
    )


def _terraform_plan(cluster: Cluster, real: str, chdir: Path, args: list[str]) -> int:
    copy = cluster.root / "terraform"
    if not copy.exists():
        raise StubError("terraform plan before terraform init")
    kept: list[str] = []
    options = iter(args[1:])
    for option in options:
        if option == "-out":
            next(options, None)  # the plan file: there is nothing to apply it to
        elif not option.startswith("-out="):
            kept.append(option)
    code = subprocess.call(  # noqa: S603 - the real terraform, on our copy
        [real, f"-chdir={copy}", "plan", "-input=false", "-no-color", *kept]
    )
    if code == 0:
        tf_vars = {k[7:]: v for k, v in os.environ.items() if k.startswith("TF_VAR_")}
        cluster._save("terraform-plan", {"vars": tf_vars, "args": kept})
    return code


def _terraform_apply(cluster: Cluster, real: str, chdir: Path, args: list[str]) -> int:
    if not (cluster.root / "terraform-plan.json").exists():
        raise StubError("terraform apply without a successful plan")
    cluster.log("terraform apply (needs AWS: the contract test writes the Secrets itself)")
    print("(contract test) terraform apply needs AWS: recorded, not run")
    return 0


TERRAFORM: dict[str, Callable[[Cluster, str, Path, list[str]], int]] = {
    "fmt": _terraform_fmt,
    "init": _terraform_init,
    "plan": _terraform_plan,
    "apply": _terraform_apply,
}


def _variables_only_copy(module: Path, copy: Path) -> None:
    """The root module's variables and the app module's, wired as main.tf wires them: real
    validations, no provider, no resource, no backend."""
    import hcl2

    if copy.exists():
        shutil.rmtree(copy)
    (copy / "modules" / "app").mkdir(parents=True)
    shutil.copy(module / "variables.tf", copy / "variables.tf")
    shutil.copy(module / "modules" / "app" / "variables.tf", copy / "modules/app/variables.tf")
    with (module / "main.tf").open() as handle:
        main = hcl2.load(handle)
    (call,) = [block['"app"'] for block in main["module"] if '"app"' in block]
    lines = ['module "app" {', '  source = "./modules/app"']
    for name, value in call.items():
        if name == "source" or name.startswith("__"):  # python-hcl2's own markers
            continue
        variable = re.fullmatch(r"\$\{var\.(\w+)\}", str(value))
        lines.append(f"  {name} = " + (f"var.{variable.group(1)}" if variable else '"x"'))
    (copy / "main.tf").write_text("\n".join([*lines, "}", ""]))


# --- the recording gunicorn -------------------------------------------------------------------


def gunicorn(cluster: Cluster, args: list[str]) -> int:
    """A document that starts the server in the foreground: record how, the test serves it."""
    cluster._save("gunicorn", {"argv": args, "env": dict(os.environ), "cwd": os.getcwd()})
    print("(contract test) gunicorn recorded; the test starts it")
    return 0


COMMANDS = {"kubectl": kubectl, "docker": docker, "terraform": terraform, "gunicorn": gunicorn}


def main(name: str, args: list[str]) -> int:
    cluster = Cluster(Path(os.environ[CLUSTER_DIR_VARIABLE]))
    cluster.log(f"$ {name} {' '.join(args)}")
    try:
        return COMMANDS[name](cluster, args)
    except (StubError, subprocess.CalledProcessError, OSError) as exc:
        print(f"{name}: {exc}", file=sys.stderr)
        cluster.log(f"! {name}: {exc}")
        return 1


def install_stub(name: str, directory: Path) -> Path:
    """An executable ``directory/name`` that runs :func:`main` for ``name``."""
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / name
    path.write_text(
        f"#!{sys.executable}\n"
        "import sys\n"
        f"sys.path.insert(0, {str(ROOT)!r})\n"
        "from tests.deploy_contract.cluster import main\n"
        f"raise SystemExit(main({name!r}, sys.argv[1:]))\n"
    )
    path.chmod(0o755)
    return path
