#!/usr/bin/env bash
# Offline checks of the deployment files: Dockerfile, Kubernetes manifests, compose and
# monitoring YAML, shell scripts and Terraform. Prints one result line per tool and exits
# non-zero if any check failed. A check whose tool is absent says SKIP and why; it never
# reports a pass it did not run. What these checks do not cover: docs/deployment.md (make test
# runs its deploy steps: tests/integration/test_deploy_contract.py).
#
# Usage: bash scripts/lint-infra.sh     (from anywhere; it works from the repository root)
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."

readonly VENV_BIN=".venv/bin"
readonly K8S_DIR="infrastructure/kubernetes"
readonly TF_DIR="infrastructure/terraform"
readonly K8S_VERSION="1.33.0"

failures=0
work_dir="$(mktemp -d)"
trap 'rm -rf "${work_dir}"' EXIT

pass() { printf '%-22s PASS  %s\n' "$1" "$2"; }
skip() { printf '%-22s SKIP  %s\n' "$1" "$2"; }
fail() {
    printf '%-22s FAIL  %s\n' "$1" "$2"
    failures=$((failures + 1))
}

# Runs "$@" with its output captured; on failure prints the output indented under the
# result line, so a clean run stays one line per tool.
check() {
    local name="$1" ok_message="$2" fail_message="$3"
    shift 3
    local log="${work_dir}/${name//[^a-zA-Z0-9]/_}.log"
    if "$@" >"${log}" 2>&1; then
        pass "${name}" "${ok_message}"
    else
        fail "${name}" "${fail_message}"
        sed 's/^/    /' "${log}"
    fi
}

venv_tool() {
    local tool="${VENV_BIN}/$1"
    if [[ ! -x "${tool}" ]]; then
        fail "$1" "${tool} missing: run 'make install' (or scripts/setup.sh) first"
        return 1
    fi
}

# --- Dockerfile -------------------------------------------------------------------------
lint_dockerfile() {
    venv_tool hadolint || return 0
    check hadolint "Dockerfile" "Dockerfile has findings" "${VENV_BIN}/hadolint" --no-color Dockerfile
}

# --- Kubernetes -------------------------------------------------------------------------
lint_kubernetes() {
    local manifests=()
    local file
    for file in "${K8S_DIR}"/*.yaml; do
        [[ "$(basename "${file}")" == "kustomization.yaml" ]] || manifests+=("${file}")
    done

    if venv_tool kubernetes-validate; then
        check kubernetes-validate \
            "${#manifests[@]} manifests valid against Kubernetes ${K8S_VERSION} (strict)" \
            "manifests do not validate against Kubernetes ${K8S_VERSION}" \
            "${VENV_BIN}/kubernetes-validate" --strict --quiet -k "${K8S_VERSION}" "${manifests[@]}"
    fi

    if ! command -v kubectl >/dev/null 2>&1; then
        skip "kustomize" "kubectl not installed: the kustomization was not rendered"
        return 0
    fi
    local rendered="${work_dir}/rendered.yaml"
    if kubectl kustomize "${K8S_DIR}" >"${rendered}" 2>"${work_dir}/kustomize.err"; then
        local objects
        objects="$(grep -c '^kind:' "${rendered}" || true)"
        # The rendered output is what a cluster receives: validate it too.
        check kustomize "renders ${objects} objects; rendered output valid (strict)" \
            "rendered kustomization does not validate" \
            "${VENV_BIN}/kubernetes-validate" --strict --quiet -k "${K8S_VERSION}" "${rendered}"
    else
        fail kustomize "kubectl kustomize ${K8S_DIR} failed"
        sed 's/^/    /' "${work_dir}/kustomize.err"
    fi
}

# --- YAML -------------------------------------------------------------------------------
lint_yaml() {
    venv_tool yamllint || return 0
    local targets=("${K8S_DIR}" docker-compose.yml .yamllint)
    [[ -d .github/workflows ]] && targets+=(.github/workflows)
    # Prometheus and Grafana configuration, wherever the repository keeps it.
    local file monitoring=0
    while IFS= read -r -d '' file; do
        targets+=("${file}")
        monitoring=$((monitoring + 1))
    done < <(find . \( -path ./.venv -o -path ./.tools -o -path ./.git -o -path ./node_modules \) -prune \
        -o -type f \( -name '*.yml' -o -name '*.yaml' \) \
        \( -path '*prometheus*' -o -path '*grafana*' -o -path '*monitoring*' -o -path '*alert*' \) \
        -print0)
    check yamllint "kubernetes, compose, .yamllint, workflows, ${monitoring} monitoring file(s)" \
        "YAML has findings" "${VENV_BIN}/yamllint" --strict -c .yamllint "${targets[@]}"
}

# --- Shell ------------------------------------------------------------------------------
ensure_shellcheck() {
    command -v shellcheck >/dev/null 2>&1 && return 0
    if [[ "$(id -u)" -eq 0 ]] && command -v apt-get >/dev/null 2>&1; then
        echo "shellcheck missing: installing the Debian package" >&2
        if ! apt-get install -y -qq shellcheck >/dev/null 2>&1; then
            apt-get update -qq >/dev/null 2>&1 || true
            apt-get install -y -qq shellcheck >/dev/null 2>&1 || true
        fi
    fi
    command -v shellcheck >/dev/null 2>&1
}

lint_shell() {
    local scripts=(scripts/*.sh)
    if ! ensure_shellcheck; then
        fail shellcheck "shellcheck is not installed (apt-get install shellcheck)"
        return 0
    fi
    check shellcheck "${#scripts[@]} scripts" "scripts have findings" \
        shellcheck --severity=style "${scripts[@]}"
}

# --- Terraform --------------------------------------------------------------------------
lint_terraform() {
    if command -v terraform >/dev/null 2>&1; then
        check "terraform fmt" "${TF_DIR} is formatted" \
            "${TF_DIR} needs 'terraform fmt -recursive'" \
            terraform fmt -recursive -check -diff "${TF_DIR}"
    else
        skip "terraform fmt" "terraform not installed: formatting not checked"
    fi
    [[ -x "${VENV_BIN}/python" ]] || { fail check_terraform "${VENV_BIN}/python missing"; return 0; }
    # Prints its own summary line; shown on success too since it says what it covered.
    local log="${work_dir}/check_terraform.log"
    if "${VENV_BIN}/python" scripts/check_terraform.py "${TF_DIR}" >"${log}" 2>&1; then
        pass check_terraform "$(tail -n 1 "${log}" | sed 's/^check_terraform: OK: //'); variables typed, described, declared and used"
    else
        fail check_terraform "Terraform variable/module checks failed"
        sed 's/^/    /' "${log}"
    fi
}

main() {
    echo "Infrastructure lint ($(pwd))"
    lint_dockerfile
    lint_kubernetes
    lint_yaml
    lint_shell
    lint_terraform
    if ((failures > 0)); then
        echo "RESULT: ${failures} check(s) FAILED"
        exit 1
    fi
    echo "RESULT: all checks that ran passed (see SKIP lines for any that could not run)"
}

main "$@"
