#!/usr/bin/env bash
# Local developer set-up. Safe to run again at any time: every step checks before it acts.
#
#   1. installs Poetry (with its export plugin) into .tools/poetry if it is missing
#   2. installs the project and its dev dependencies into .venv (poetry install)
#   3. copies .env.example to .env if there is no .env yet (an existing .env is never touched)
#   4. applies the database migrations (flask db upgrade) unless --no-migrate is given
#
# Run `scripts/setup.sh --help` for the options.
set -euo pipefail

readonly POETRY_VERSION="2.5.1"
readonly POETRY_PLUGIN_EXPORT_VERSION="1.10.1"
readonly MIN_PYTHON="3.11"

repo_root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
readonly repo_root
readonly poetry_home="${repo_root}/.tools/poetry"
readonly poetry="${poetry_home}/bin/poetry"

migrate=true
python_bin="${PYTHON:-python3}"

usage() {
    cat <<EOF
Usage: scripts/setup.sh [--no-migrate] [--python PATH]

Prepares a development checkout: Poetry in .tools/poetry, the project in .venv, a .env
from .env.example, and an up-to-date database schema.

Options:
  --no-migrate    skip 'flask db upgrade' (e.g. when PostgreSQL is not running yet)
  --python PATH   Python ${MIN_PYTHON}+ used to create the Poetry environment (default: \$PYTHON or python3)
  -h, --help      show this help
EOF
}

log() {
    echo "==> $*"
}

die() {
    echo "setup: error: $*" >&2
    exit 1
}

parse_args() {
    while [[ $# -gt 0 ]]; do
        case "$1" in
            --no-migrate) migrate=false; shift ;;
            --python) python_bin="${2:?--python needs a value}"; shift 2 ;;
            -h | --help) usage; exit 0 ;;
            *) usage >&2; die "unknown argument: $1" ;;
        esac
    done
}

check_python() {
    command -v "${python_bin}" >/dev/null 2>&1 || die "${python_bin} not found; install Python ${MIN_PYTHON} or newer"
    if ! "${python_bin}" -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else 1)'; then
        die "$("${python_bin}" --version 2>&1) is too old; the project needs Python ${MIN_PYTHON}+"
    fi
}

install_poetry() {
    if [[ -x "${poetry}" ]]; then
        log "Poetry present: $("${poetry}" --version)"
    else
        log "Installing Poetry ${POETRY_VERSION} into .tools/poetry"
        "${python_bin}" -m venv "${poetry_home}"
        "${poetry_home}/bin/pip" install --quiet "poetry==${POETRY_VERSION}"
    fi
    # `poetry export` (used by scripts/audit.sh and the Docker build) is a plugin.
    if ! "${poetry}" export --help >/dev/null 2>&1; then
        log "Installing poetry-plugin-export ${POETRY_PLUGIN_EXPORT_VERSION}"
        "${poetry_home}/bin/pip" install --quiet "poetry-plugin-export==${POETRY_PLUGIN_EXPORT_VERSION}"
    fi
}

install_project() {
    log "Installing the project and its dev dependencies into .venv"
    (cd "${repo_root}" && POETRY_VIRTUALENVS_IN_PROJECT=true "${poetry}" install --no-interaction)
}

create_env_file() {
    if [[ -f "${repo_root}/.env" ]]; then
        log ".env exists; left unchanged"
    elif [[ -f "${repo_root}/.env.example" ]]; then
        cp "${repo_root}/.env.example" "${repo_root}/.env"
        chmod 600 "${repo_root}/.env"
        log "Created .env from .env.example; review it before running the service"
    else
        die ".env.example is missing; cannot create .env"
    fi
}

run_migrations() {
    if [[ "${migrate}" != true ]]; then
        log "Skipping migrations (--no-migrate)"
        return
    fi
    log "Applying database migrations"
    # Flask loads .env itself (python-dotenv), so DATABASE_URL comes from there.
    if ! (cd "${repo_root}" && .venv/bin/flask --app auth_microservice_app.app db upgrade); then
        die "migrations failed: is PostgreSQL running and DATABASE_URL in .env right? (rerun with --no-migrate to skip)"
    fi
}

main() {
    parse_args "$@"
    check_python
    install_poetry
    install_project
    create_env_file
    run_migrations
    log "Done. Start the service with 'make run' and run the tests with 'make test'."
}

main "$@"
