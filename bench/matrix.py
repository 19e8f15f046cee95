"""Variants side by side: JWT algorithms and gunicorn worker models, same machine, same seeding.

    .venv/bin/python bench/matrix.py algorithms      # RS256 / ES256 / EdDSA on refresh and /me
    .venv/bin/python bench/matrix.py workers         # gthread vs sync, workers x threads
    .venv/bin/python bench/matrix.py recycling       # GUNICORN_MAX_REQUESTS 1000 (default) vs 0
    .venv/bin/python bench/matrix.py all --duration 10

Each variant is one bench/run.py run (its own result files, named matrix-<study>-<variant>);
the comparison goes to bench/results/matrix-<study>.md. Variants run interleaved in rounds
(--rounds), so a slow spell on a shared machine does not land on one variant only; the best
valid round of each is compared, with its CPU-bound capacity beside it.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
RESULTS = REPO / "bench" / "results"

STUDIES: dict[str, dict[str, Any]] = {
    "algorithms": {
        "endpoints": "me,refresh",
        "variants": {
            "RS256": ["--jwt-alg", "RS256"],
            "ES256": ["--jwt-alg", "ES256"],
            "EdDSA": ["--jwt-alg", "EdDSA"],
        },
    },
    "workers": {
        "endpoints": "jwks,me,refresh,login",
        "variants": {
            "gthread-5x4": ["--worker-class", "gthread", "--workers", "5", "--threads", "4"],
            "gthread-3x4": ["--worker-class", "gthread", "--workers", "3", "--threads", "4"],
            "gthread-2x8": ["--worker-class", "gthread", "--workers", "2", "--threads", "8"],
            "sync-5": ["--worker-class", "sync", "--workers", "5"],
            "sync-9": ["--worker-class", "sync", "--workers", "9"],
        },
    },
    "recycling": {
        "endpoints": "jwks,me,refresh",
        "variants": {
            "max-requests-1000": ["--max-requests", "1000"],
            "max-requests-0": ["--max-requests", "0"],
        },
        "bare": True,
    },
}


def run_variant(
    study: str, variant: str, extra: list[str], args: argparse.Namespace, round_: int
) -> dict[str, Any] | None:
    name = f"matrix-{study}-{variant}-r{round_}"
    spec = STUDIES[study]
    command = [
        sys.executable,
        str(REPO / "bench" / "run.py"),
        "--users",
        str(args.users),
        "--duration",
        str(args.duration),
        "--endpoints",
        spec["endpoints"],
        "--name",
        name,
        "--results-dir",
        str(args.results_dir / "matrix"),
        "--quiet-timeout",
        str(args.quiet_timeout),
        "--retries",
        str(args.retries),
        *([] if spec.get("bare") else ["--skip-bare"]),
        *extra,
    ]
    print(f"[matrix] {name}: {' '.join(extra)}", flush=True)
    subprocess.run(command, cwd=REPO, check=False)  # noqa: S603 - our own bench
    path = args.results_dir / "matrix" / f"{name}.json"
    return json.loads(path.read_text()) if path.exists() else None


def best_rounds(runs: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """Per endpoint, the round with the most req/s among valid ones (sharing only slows)."""
    best: dict[str, dict[str, Any]] = {}
    for run in runs:
        for endpoint, row in run.get("endpoints", {}).items():
            current = best.get(endpoint)
            if row["valid"] and (current is None or row["rps"] > current["rps"]):
                best[endpoint] = row
    return best


def table(study: str, results: dict[str, list[dict[str, Any]]]) -> str:
    endpoints = STUDIES[study]["endpoints"].split(",")
    lines = [
        f"# Matrix: {study}",
        "",
        "Best valid round per variant and endpoint; capacity = cores / attributed CPU per "
        "request (what the machine would serve if nothing else ran on it).",
        "",
        "| variant | endpoint | req/s | p50 ms | p99 ms | errors | service CPU ms/req "
        "| capacity req/s | shared CPU |",
        "|---|---|---:|---:|---:|---:|---:|---:|---|",
    ]
    for variant, runs in results.items():
        best = best_rounds(runs)
        for endpoint in endpoints:
            row = best.get(endpoint)
            if row is None:
                lines.append(f"| {variant} | {endpoint} | no valid round | | | | | | |")
                continue
            cpu = row.get("cpu_ms_per_request") or {}
            lines.append(
                f"| {variant} | {endpoint} | {row['rps']:.1f} | {row['p50_ms']:.1f} | "
                f"{row['p99_ms']:.1f} | {row['errors']} | {cpu.get('service', 0):.2f} | "
                f"{row.get('capacity_rps') or 0:.0f} | "
                f"{'yes' if row.get('contaminated') else 'no'} |"
            )
    bare = [
        (variant, run["ceilings"]["bare"])
        for variant, runs in results.items()
        for run in runs
        if "bare" in run.get("ceilings", {})
    ]
    if bare:
        lines += [
            "",
            "| variant | bare Flask req/s | p99 ms | capacity req/s |",
            "|---|---:|---:|---:|",
        ]
        lines += [
            f"| {v} | {b['rps']:.1f} | {b['p99_ms']:.1f} | {b.get('capacity_rps') or 0:.0f} |"
            for v, b in bare
        ]
    jwt = [
        (variant, runs[0]["ceilings"]["jwt"])
        for variant, runs in results.items()
        if runs and "jwt" in runs[0].get("ceilings", {})
    ]
    if study == "algorithms" and jwt:
        lines += [
            "",
            "| variant | PyJWT sign CPU ms | PyJWT verify CPU ms | sign/s one process "
            "| verify/s one process |",
            "|---|---:|---:|---:|---:|",
        ]
        lines += [
            f"| {v} | {j.get('cpu_ms_per_sign', 0):.3f} | {j.get('cpu_ms_per_verify', 0):.3f} | "
            f"{j['sign_per_s_one_process']:.0f} | {j['verify_per_s_one_process']:.0f} |"
            for v, j in jwt
        ]
    lines += ["", f"Written {time.strftime('%Y-%m-%dT%H:%M:%SZ', time.gmtime())}.", ""]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("study", choices=[*STUDIES, "all"])
    p.add_argument("--users", type=int, default=10_000)
    p.add_argument("--duration", type=float, default=10)
    p.add_argument("--rounds", type=int, default=2)
    p.add_argument("--retries", type=int, default=2)
    p.add_argument("--quiet-timeout", type=float, default=300)
    p.add_argument("--results-dir", type=Path, default=RESULTS)
    args = p.parse_args(argv)
    studies = list(STUDIES) if args.study == "all" else [args.study]
    for study in studies:
        results: dict[str, list[dict[str, Any]]] = {v: [] for v in STUDIES[study]["variants"]}
        for round_ in range(1, args.rounds + 1):
            for variant, extra in STUDIES[study]["variants"].items():
                run = run_variant(study, variant, extra, args, round_)
                if run is not None:
                    results[variant].append(run)
        out = args.results_dir / f"matrix-{study}.md"
        out.write_text(table(study, results))
        print(out.read_text())
    return 0


if __name__ == "__main__":
    sys.exit(main())
