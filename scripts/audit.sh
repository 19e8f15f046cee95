#!/usr/bin/env bash
# Vulnerability scans of what the service ships:
#   pip-audit  the runtime dependencies exported from poetry.lock (the exact set the image
#              installs), looked up in the PyPI/OSV advisory databases;
#   trivy      the image when a Docker engine and the image are available, otherwise the
#              repository (poetry.lock and the other lock files), for HIGH and CRITICAL issues.
#
# Both need their advisory databases online. When a scanner or its database cannot be
# reached, this script says "NOT CHECKED: ..." for it: it never reports a pass it did not
# check. Exit status: 1 when a vulnerability was found; 2 under --strict when a scan could
# not run; 0 otherwise.
#
# Usage: scripts/audit.sh [--strict] [--image IMAGE]
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."

readonly PIP_AUDIT_VERSION="2.10.1"
readonly PIP_AUDIT_HOME=".tools/pip-audit"

strict=false
image="${AUDIT_IMAGE:-auth-service:dev}"
found=0
checked=0
not_checked=0
work_dir="$(mktemp -d)"
trap 'rm -rf "${work_dir}"' EXIT

usage() {
    cat <<EOF
Usage: scripts/audit.sh [--strict] [--image IMAGE]

  --strict        exit 2 when a scan could not run (CI: a scan that did not run is a failure)
  --image IMAGE   image for trivy when a Docker engine is available (default: ${image})
  -h, --help      show this help
EOF
}

result() { printf '%-10s %s\n' "$1" "$2"; }

# A scan that ran to completion, whatever it found.
completed() { checked=$((checked + 1)); }

not_checked() {
    result "$1" "NOT CHECKED: $2"
    not_checked=$((not_checked + 1))
}

# The runtime dependency set, pinned with hashes, exactly as the Dockerfile installs it.
# `poetry export` is a plugin: use the first Poetry that has it.
export_requirements() {
    local candidates=(.tools/poetry/bin/poetry) poetry=""
    command -v poetry >/dev/null 2>&1 && candidates+=("$(command -v poetry)")
    local candidate
    for candidate in "${candidates[@]}"; do
        if [[ -x "${candidate}" ]] && "${candidate}" export --help >/dev/null 2>&1; then
            poetry="${candidate}"
            break
        fi
    done
    if [[ -z "${poetry}" ]]; then
        echo "no Poetry with poetry-plugin-export found (run scripts/setup.sh)"
        return 1
    fi
    "${poetry}" export --only main --format requirements.txt --output "${work_dir}/requirements.txt" \
        >"${work_dir}/export.log" 2>&1 || { tail -n 3 "${work_dir}/export.log"; return 1; }
}

pip_audit_bin() {
    if command -v pip-audit >/dev/null 2>&1; then
        command -v pip-audit
        return 0
    fi
    if [[ ! -x "${PIP_AUDIT_HOME}/bin/pip-audit" ]]; then
        echo "installing pip-audit ${PIP_AUDIT_VERSION} into ${PIP_AUDIT_HOME}" >&2
        python3 -m venv "${PIP_AUDIT_HOME}" >/dev/null 2>&1 &&
            "${PIP_AUDIT_HOME}/bin/pip" install --quiet "pip-audit==${PIP_AUDIT_VERSION}" >/dev/null 2>&1 ||
            return 1
    fi
    echo "${PIP_AUDIT_HOME}/bin/pip-audit"
}

run_pip_audit() {
    local reason
    if ! reason="$(export_requirements)"; then
        not_checked pip-audit "could not export the lock file: ${reason}"
        return 0
    fi
    local pip_audit
    if ! pip_audit="$(pip_audit_bin)"; then
        not_checked pip-audit "pip-audit is not installed and could not be installed"
        return 0
    fi

    local report="${work_dir}/pip-audit.json"
    # --disable-pip: the hashed requirements are complete, so nothing is resolved or
    # downloaded; only the advisory service is asked.
    "${pip_audit}" --requirement "${work_dir}/requirements.txt" --require-hashes --disable-pip \
        --progress-spinner off --format json --output "${report}" >"${work_dir}/pip-audit.log" 2>&1 || true

    if [[ ! -s "${report}" ]]; then
        # No report: pip-audit stopped before auditing (typically the advisory service is
        # unreachable). Say so, with its own last words.
        not_checked pip-audit "no report produced; the vulnerability service is probably unreachable: $(
            grep -v '^\s*$' "${work_dir}/pip-audit.log" | tail -n 1 | cut -c1-200)"
        return 0
    fi

    local summary status
    summary="$(python3 - "${report}" <<'PY'
import json
import sys

report = json.load(open(sys.argv[1], encoding="utf-8"))
deps = report.get("dependencies", [])
vulnerable = [d for d in deps if d.get("vulns")]
skipped = [d for d in deps if d.get("skip_reason")]
for dep in vulnerable:
    for vuln in dep["vulns"]:
        fixes = ", ".join(vuln.get("fix_versions") or []) or "no fix yet"
        print(f"    {dep['name']} {dep.get('version', '?')}: {vuln['id']} (fixed in: {fixes})")
for dep in skipped[:5]:
    print(f"    {dep['name']}: not checked ({dep['skip_reason']})")
if len(skipped) > 5:
    print(f"    ... and {len(skipped) - 5} more not checked")
audited = len(deps) - len(skipped)
print(f"STATUS {len(vulnerable)} {audited} {len(skipped)}")
PY
)"
    status="$(grep '^STATUS ' <<<"${summary}")"
    grep -v '^STATUS ' <<<"${summary}" || true
    local vulnerable audited skipped
    read -r _ vulnerable audited skipped <<<"${status}"
    ((audited > 0)) && completed
    if ((vulnerable > 0)); then
        result pip-audit "FAIL: ${vulnerable} of ${audited} runtime packages have known vulnerabilities"
        found=$((found + 1))
    elif ((audited > 0)); then
        result pip-audit "PASS: ${audited} runtime packages checked, no known vulnerabilities"
    fi
    if ((skipped > 0)); then
        # pip-audit marks a package "skipped" when the advisory service has no answer for
        # it; offline that is every package.
        not_checked pip-audit "${skipped} of $((audited + skipped)) package(s) could not be audited (see above)"
    fi
}

docker_engine_has_image() {
    command -v docker >/dev/null 2>&1 &&
        docker info >/dev/null 2>&1 &&
        docker image inspect "${image}" >/dev/null 2>&1
}

run_trivy() {
    if ! command -v trivy >/dev/null 2>&1; then
        not_checked trivy "trivy is not installed (https://trivy.dev); the image was not scanned"
        return 0
    fi
    local target=(fs --scanners vuln .) what="repository lock files"
    if docker_engine_has_image; then
        target=(image "${image}")
        what="image ${image}"
    fi
    # --exit-code 3 marks "vulnerabilities found", so any other non-zero status means trivy
    # itself failed (e.g. no vulnerability database).
    local status=0
    trivy "${target[@]}" --severity HIGH,CRITICAL --ignore-unfixed --exit-code 3 --no-progress \
        >"${work_dir}/trivy.log" 2>&1 || status=$?
    [[ "${status}" == 0 || "${status}" == 3 ]] && completed
    case "${status}" in
        0) result trivy "PASS: ${what}: no fixable HIGH or CRITICAL vulnerabilities" ;;
        3)
            sed 's/^/    /' "${work_dir}/trivy.log"
            result trivy "FAIL: ${what}: HIGH or CRITICAL vulnerabilities found"
            found=$((found + 1))
            ;;
        *)
            not_checked trivy "${what}: trivy failed (exit ${status}), probably no vulnerability database: $(
                grep -v '^\s*$' "${work_dir}/trivy.log" | tail -n 1 | cut -c1-200)"
            ;;
    esac
    if [[ "${target[0]}" == fs ]]; then
        not_checked "trivy" "the image itself (OS packages) was not scanned: no Docker engine or no image ${image}"
    fi
}

main() {
    while [[ $# -gt 0 ]]; do
        case "$1" in
            --strict) strict=true; shift ;;
            --image) image="${2:?--image needs a value}"; shift 2 ;;
            -h | --help) usage; exit 0 ;;
            *) usage >&2; echo "audit: unknown argument: $1" >&2; exit 64 ;;
        esac
    done

    run_pip_audit
    run_trivy

    if ((found > 0)); then
        echo "RESULT: vulnerabilities found"
        exit 1
    fi
    if ((checked == 0)); then
        echo "RESULT: NOT CHECKED: no scan could run, so nothing is known about vulnerabilities"
        [[ "${strict}" == true ]] && exit 2
        exit 0
    fi
    if ((not_checked > 0)); then
        echo "RESULT: no vulnerabilities found by ${checked} scan(s); ${not_checked} part(s) NOT CHECKED"
        [[ "${strict}" == true ]] && exit 2
        exit 0
    fi
    echo "RESULT: every scan ran; no vulnerabilities found"
}

main "$@"
