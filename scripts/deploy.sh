#!/usr/bin/env bash
# Build, push and roll out the auth service to Kubernetes.
#
# Order matters: the schema migration runs to completion with the new image before the
# API and workers are rolled out, so new code never serves an old schema. The Secrets are
# never applied from this repository (secret.yaml is a template); they must exist already.
#
# Run `scripts/deploy.sh --help` for the options.
set -euo pipefail

readonly APP_NAME="auth-service"
readonly SECRETS=(auth-service-secrets auth-service-jwt)
readonly MIGRATION_JOB="auth-service-migrate"
readonly DEPLOYMENTS=(auth-service-api auth-service-worker auth-service-beat)

repo_root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
readonly repo_root
readonly base_dir="${repo_root}/infrastructure/kubernetes"

dry_run=false
skip_build=false
registry="${AUTH_SERVICE_REGISTRY:-}"
namespace="auth-service"
kube_context=""
timeout_seconds=600
tag=""

usage() {
    cat <<EOF
Usage: scripts/deploy.sh [options] TAG

Build and push the image REGISTRY/${APP_NAME}:TAG, run the database migration Job with it,
apply infrastructure/kubernetes with that image, and wait until every Deployment is ready.

Arguments:
  TAG                     image tag to build and deploy (e.g. a git tag or commit sha)

Options:
  --registry REGISTRY     image registry and path, e.g. 123456789012.dkr.ecr.eu-west-1.amazonaws.com
                          (default: \$AUTH_SERVICE_REGISTRY)
  --namespace NAME        Kubernetes namespace (default: ${namespace})
  --context NAME          kubectl context to use (default: the current context)
  --timeout SECONDS       how long to wait for the migration and for each rollout (default: ${timeout_seconds})
  --skip-build            do not build or push; deploy an image that is already in the registry
  --dry-run               print every command instead of running it
  -h, --help              show this help

Prerequisites: docker (logged in to the registry), kubectl with access to the cluster, and
the Secrets ${SECRETS[*]} in the namespace (see docs/deployment.md).
EOF
}

die() {
    echo "deploy: error: $*" >&2
    exit 1
}

log() {
    echo "==> $*"
}

# Runs a command, or only prints it (shell-quoted, copy-pasteable) under --dry-run.
run() {
    if [[ "${dry_run}" == true ]]; then
        printf '+'
        printf ' %q' "$@"
        printf '\n'
    else
        "$@"
    fi
}

kctl() {
    local args=(kubectl)
    if [[ -n "${kube_context}" ]]; then
        args+=(--context "${kube_context}")
    fi
    run "${args[@]}" --namespace "${namespace}" "$@"
}

parse_args() {
    while [[ $# -gt 0 ]]; do
        case "$1" in
            --registry) registry="${2:?--registry needs a value}"; shift 2 ;;
            --namespace) namespace="${2:?--namespace needs a value}"; shift 2 ;;
            --context) kube_context="${2:?--context needs a value}"; shift 2 ;;
            --timeout) timeout_seconds="${2:?--timeout needs a value}"; shift 2 ;;
            --skip-build) skip_build=true; shift ;;
            --dry-run) dry_run=true; shift ;;
            -h | --help) usage; exit 0 ;;
            --) shift; break ;;
            -*) usage >&2; die "unknown option: $1" ;;
            *)
                [[ -z "${tag}" ]] || die "only one TAG may be given (got '${tag}' and '$1')"
                tag="$1"
                shift
                ;;
        esac
    done
    if [[ $# -gt 0 ]]; then
        [[ -z "${tag}" && $# -eq 1 ]] || die "only one TAG may be given"
        tag="$1"
    fi

    [[ -n "${tag}" ]] || { usage >&2; die "missing TAG"; }
    # Docker's tag grammar; refusing "latest" keeps every deploy traceable and revertible.
    [[ "${tag}" =~ ^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$ ]] || die "invalid image tag: ${tag}"
    [[ "${tag}" != "latest" ]] || die "refusing to deploy the mutable tag 'latest'"
    [[ -n "${registry}" ]] || die "no registry: pass --registry or set AUTH_SERVICE_REGISTRY"
    [[ "${timeout_seconds}" =~ ^[1-9][0-9]*$ ]] || die "--timeout must be a positive integer"
    [[ "${namespace}" =~ ^[a-z0-9]([-a-z0-9]*[a-z0-9])?$ ]] || die "invalid namespace: ${namespace}"
}

require_tools() {
    local tools=(kubectl)
    [[ "${skip_build}" == true ]] || tools+=(docker)
    local tool
    for tool in "${tools[@]}"; do
        command -v "${tool}" >/dev/null 2>&1 || die "${tool} is not installed"
    done
}

build_and_push() {
    local image="$1"
    local revision build_date
    revision="$(git -C "${repo_root}" rev-parse --verify --quiet HEAD)" || revision=unknown
    build_date="$(date -u +%Y-%m-%dT%H:%M:%SZ)"

    log "Building ${image}"
    run docker build \
        --pull \
        --tag "${image}" \
        --build-arg "VERSION=${tag}" \
        --build-arg "VCS_REF=${revision}" \
        --build-arg "BUILD_DATE=${build_date}" \
        "${repo_root}"
    log "Pushing ${image}"
    run docker push "${image}"
}

# Writes a kustomize overlay that points the base at the new image and leaves out the
# placeholder Secrets, so a deploy can never overwrite the real ones.
write_overlay() {
    local overlay_dir="$1" image_name="$2"
    # The overlay lives beside the base: kustomize accepts only relative paths to a base.
    cat >"${overlay_dir}/kustomization.yaml" <<EOF
apiVersion: kustomize.config.k8s.io/v1beta1
kind: Kustomization
namespace: ${namespace}
resources:
  - ../$(basename "${base_dir}")
images:
  - name: ${APP_NAME}
    newName: ${image_name}
    newTag: "${tag}"
patches:
EOF
    local secret
    for secret in "${SECRETS[@]}"; do
        cat >>"${overlay_dir}/kustomization.yaml" <<EOF
  - patch: |-
      \$patch: delete
      apiVersion: v1
      kind: Secret
      metadata:
        name: ${secret}
EOF
    done
    if [[ "${dry_run}" == true ]]; then
        echo "# generated overlay ${overlay_dir}/kustomization.yaml:"
        sed 's/^/#   /' "${overlay_dir}/kustomization.yaml"
    fi
}

check_secrets() {
    log "Checking that the Secrets exist in namespace ${namespace}"
    if ! kctl get secret "${SECRETS[@]}" --output name; then
        die "missing Secret(s) ${SECRETS[*]} in namespace ${namespace}: create them first (docs/deployment.md, 'Secrets')"
    fi
}

run_migration() {
    local overlay_dir="$1"
    log "Running the database migration Job ${MIGRATION_JOB}"
    # A Job's pod template is immutable: remove the previous run before applying the new one.
    kctl delete job "${MIGRATION_JOB}" --ignore-not-found --wait=true
    kctl apply --kustomize "${overlay_dir}" --selector app.kubernetes.io/component=migration

    if [[ "${dry_run}" == true ]]; then
        echo "# then poll until the Job completes (exit 0) or fails (print its logs, exit 1):"
        kctl get job "${MIGRATION_JOB}" --output 'jsonpath={.status.succeeded}/{.status.failed}'
        return 0
    fi

    local deadline=$((SECONDS + timeout_seconds))
    local succeeded failed
    while true; do
        succeeded="$(kctl get job "${MIGRATION_JOB}" --output 'jsonpath={.status.succeeded}')"
        failed="$(kctl get job "${MIGRATION_JOB}" \
            --output 'jsonpath={.status.conditions[?(@.type=="Failed")].status}')"
        if [[ "${succeeded:-0}" -ge 1 ]]; then
            log "Migration completed"
            kctl logs "job/${MIGRATION_JOB}" --tail=20 || true
            return 0
        fi
        if [[ "${failed}" == "True" ]]; then
            kctl logs "job/${MIGRATION_JOB}" --tail=200 || true
            die "migration Job failed; nothing was rolled out"
        fi
        if ((SECONDS >= deadline)); then
            kctl logs "job/${MIGRATION_JOB}" --tail=200 || true
            die "migration Job did not finish within ${timeout_seconds}s; nothing was rolled out"
        fi
        sleep 5
    done
}

apply_manifests() {
    local overlay_dir="$1"
    # "!=" also matches objects without the label (the Namespace): everything that is not
    # a workload or the migration goes first.
    log "Applying namespace and configuration"
    kctl apply --kustomize "${overlay_dir}" --selector \
        'app.kubernetes.io/component!=api,app.kubernetes.io/component!=worker,app.kubernetes.io/component!=beat,app.kubernetes.io/component!=migration'
}

roll_out() {
    local overlay_dir="$1"
    local component
    log "Rolling out the API, workers and beat"
    for component in api worker beat; do
        kctl apply --kustomize "${overlay_dir}" --selector "app.kubernetes.io/component=${component}"
    done

    local deployment
    for deployment in "${DEPLOYMENTS[@]}"; do
        log "Waiting for deployment/${deployment}"
        if ! kctl rollout status "deployment/${deployment}" --timeout="${timeout_seconds}s"; then
            die "deployment/${deployment} did not become ready; inspect it with 'kubectl -n ${namespace} describe deployment/${deployment}' and revert with 'kubectl -n ${namespace} rollout undo deployment/${deployment}'"
        fi
    done
}

main() {
    parse_args "$@"
    [[ "${dry_run}" == true ]] || require_tools

    local image_name="${registry%/}/${APP_NAME}"
    local image="${image_name}:${tag}"

    local overlay_dir
    overlay_dir="$(mktemp -d "$(dirname "${base_dir}")/.deploy-overlay.XXXXXX")"
    # shellcheck disable=SC2064  # expand now: the variable is local to main
    trap "rm -rf '${overlay_dir}'" EXIT
    write_overlay "${overlay_dir}" "${image_name}"

    if [[ "${skip_build}" == true ]]; then
        log "Skipping build; deploying existing image ${image}"
    else
        build_and_push "${image}"
    fi

    check_secrets
    apply_manifests "${overlay_dir}"
    run_migration "${overlay_dir}"
    roll_out "${overlay_dir}"
    log "Deployed ${image} to namespace ${namespace}"
}

main "$@"
