"""Results as Markdown, JSON and a PNG chart; targets judged against the same run's ceilings."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

REFRESH_TARGET_RPS = 960.0  # 4 x Keycloak's 120 refreshes/s per vCPU, on 2 vCPU

# endpoint: (ceiling name, minimum ratio or absolute rps, p99 limit in ms)
TARGETS: dict[str, dict[str, Any]] = {
    "login": {"ceiling": "argon2", "min_ratio": 0.85},
    "me": {"ceiling": "bare", "min_ratio": 0.55, "max_p99_ms": 25.0},
    "refresh": {"ceiling": None, "min_rps": REFRESH_TARGET_RPS},
    "jwks": {"ceiling": "bare", "min_ratio": 0.9},
}
# Shown for context, without a target.
CONTEXT_CEILINGS = {
    "register": "argon2",
    "logout": "bare",
    "client_credentials": "bare",
    "introspect": "bare",
}
PATHS = {
    "jwks": "GET /.well-known/jwks.json",
    "me": "GET /api/v1/auth/me",
    "refresh": "POST /api/v1/auth/refresh",
    "logout": "POST /api/v1/auth/logout",
    "login": "POST /api/v1/auth/login",
    "register": "POST /api/v1/auth/register",
    "client_credentials": "POST /oauth2/token (client_credentials)",
    "introspect": "POST /oauth2/introspect",
}


def ceiling_value(
    results: dict[str, Any], name: str | None, *, capacity: bool = False
) -> float | None:
    """A ceiling as measured (req/s), or as CPU-bound capacity (what idle cores would give)."""
    ceilings = results.get("ceilings", {})
    if name == "argon2" and "argon2" in ceilings:
        key = "capacity_per_s" if capacity else "verify_per_s"
        value = ceilings["argon2"].get(key)
    elif name == "bare" and "bare" in ceilings:
        key = "capacity_rps" if capacity else "rps"
        values = [ceilings[k].get(key) for k in ("bare", "bare_after") if k in ceilings]
        # measured before and after the endpoints: their mean (older results have one)
        value = sum(values) / len(values) if all(values) else None
    else:
        return None
    return float(value) if value else None


def _ratio(value: float | None, ceiling: float | None) -> float | None:
    return round(value / ceiling, 3) if value and ceiling else None


def judge(results: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """Each endpoint's ratio to its ceiling and, where the issue sets one, met / missed.

    Judged twice: on the measured req/s (the issue's definition), and on CPU-bound capacities
    (cores / CPU per request), which other jobs on a shared machine do not distort.
    """
    verdicts: dict[str, dict[str, Any]] = {}
    for name, row in results.get("endpoints", {}).items():
        target = TARGETS.get(name, {})
        ceiling_name = target.get("ceiling") or CONTEXT_CEILINGS.get(name)
        ceiling = ceiling_value(results, ceiling_name)
        ceiling_capacity = ceiling_value(results, ceiling_name, capacity=True)
        verdict: dict[str, Any] = {
            "ceiling": ceiling_name,
            "ceiling_value": ceiling,
            "ratio": _ratio(row["rps"], ceiling),
            "ceiling_capacity": ceiling_capacity,
            "ratio_capacity": _ratio(row.get("capacity_rps"), ceiling_capacity),
        }
        if target:
            checks, wanted = _checks(row["rps"], row["p99_ms"], target, verdict["ratio"])
            verdict["target"] = " and ".join(wanted)
            verdict["met"] = all(checks)
            verdict["status"] = (
                "INVALID" if not row["valid"] else ("met" if verdict["met"] else "missed")
            )
            capacity_checks, _ = _checks(
                row.get("capacity_rps") or 0.0, row["p99_ms"], target, verdict["ratio_capacity"]
            )
            verdict["met_capacity"] = all(capacity_checks)
        verdicts[name] = verdict
    return verdicts


def _checks(
    rps: float, p99_ms: float, target: dict[str, Any], ratio: float | None
) -> tuple[list[bool], list[str]]:
    checks: list[bool] = []
    wanted: list[str] = []
    if "min_ratio" in target:
        checks.append(ratio is not None and ratio >= target["min_ratio"])
        wanted.append(f"ratio >= {target['min_ratio']}")
    if "min_rps" in target:
        checks.append(rps >= target["min_rps"])
        wanted.append(f">= {target['min_rps']:.0f}/s")
    if "max_p99_ms" in target:
        checks.append(p99_ms <= target["max_p99_ms"])
        wanted.append(f"p99 <= {target['max_p99_ms']:.0f} ms")
    return checks, wanted


def _rps_cell(row: dict[str, Any]) -> str:
    cell = f"{row['rps']:.1f}"
    if not row["valid"]:
        why = f"{row['errors']} errors" if row["errors"] else "token pool ran dry"
        cell += f" **INVALID** ({why})"
    if row.get("contaminated"):
        cell += " (shared CPU)"
    return cell


def _num(value: float | None, fmt: str = "{:.2f}") -> str:
    return fmt.format(value) if value is not None else "-"


def endpoint_table(results: dict[str, Any]) -> str:
    verdicts = judge(results)
    lines = [
        "| endpoint | req/s | p50 ms | p95 ms | p99 ms | errors | ceiling | ratio | target "
        "| verdict | CPU ms/req service / all | capacity req/s | ratio (capacity) "
        "| verdict (capacity) |",
        "|---|---:|---:|---:|---:|---:|---|---:|---|---|---:|---:|---:|---|",
    ]
    for name, row in results.get("endpoints", {}).items():
        v = verdicts[name]
        ceiling = (
            f"{v['ceiling']} {v['ceiling_value']:.1f}/s" if v["ceiling_value"] is not None else "-"
        )
        cpu = row.get("cpu_ms_per_request") or {}
        cpu_cell = f"{cpu['service']:.2f} / {cpu['attributed']:.2f}" if cpu else "-"
        capacity_verdict = "-"
        if "met_capacity" in v:
            capacity_verdict = "met" if v["met_capacity"] else "missed"
        lines.append(
            f"| {PATHS.get(name, name)} | {_rps_cell(row)} | {row['p50_ms']:.1f} | "
            f"{row['p95_ms']:.1f} | {row['p99_ms']:.1f} | {row['errors']} | {ceiling} | "
            f"{_num(v['ratio'])} | {v.get('target', '-')} | {v.get('status', '-')} | {cpu_cell} | "
            f"{_num(row.get('capacity_rps'), '{:.0f}')} | {_num(v['ratio_capacity'])} | "
            f"{capacity_verdict} |"
        )
    return "\n".join(lines)


def ceilings_table(results: dict[str, Any]) -> str:
    c = results.get("ceilings", {})
    lines = ["| ceiling | value |", "|---|---|"]
    if "argon2" in c:
        a = c["argon2"]
        lines.append(
            f"| argon2id verify, {a['processes']} processes | {a['verify_per_s']:.1f}/s "
            f"({a['verify_per_s_one_process']:.1f}/s in one process, "
            f"{a['ms_per_verify_one_process']} ms each; {a.get('cpu_ms_per_verify', 0):.1f} ms "
            f"CPU each: capacity {_num(a.get('capacity_per_s'), '{:.0f}')}/s) |"
        )
    if "jwt" in c:
        j = c["jwt"]
        lines.append(
            f"| PyJWT {j['alg']} sign, {j['processes']} processes | {j['sign_per_s']:.0f}/s "
            f"({j['sign_per_s_one_process']:.0f}/s in one) |"
        )
        lines.append(
            f"| PyJWT {j['alg']} verify, {j['processes']} processes | {j['verify_per_s']:.0f}/s "
            f"({j['verify_per_s_one_process']:.0f}/s in one) |"
        )
    for key, when in (("bare", ""), ("bare_after", ", after the endpoints")):
        if key not in c:
            continue
        b = c[key]
        valid = "" if b["valid"] else f" **INVALID** ({b['errors']} errors)"
        cpu = b.get("cpu_ms_per_request") or {}
        lines.append(
            f"| bare Flask JSON endpoint (same gunicorn, same wrk{when}) | {b['rps']:.1f}/s{valid}"
            f"{' (shared CPU)' if b.get('contaminated') else ''}"
            f"{' (cores not saturated)' if b.get('unsaturated') else ''}"
            f", p99 {b['p99_ms']:.1f} ms; "
            f"{cpu.get('service', 0):.3f} ms CPU per request in gunicorn, "
            f"{cpu.get('attributed', 0):.3f} with wrk: capacity "
            f"{_num(b.get('capacity_rps'), '{:.0f}')}/s |"
        )
    return "\n".join(lines)


def machine_section(results: dict[str, Any]) -> str:
    m = results["machine"]
    g = m["gunicorn"]
    a = m["argon2"]
    seed = results.get("seed", {})
    rows = [
        ("CPU", f"{m['nproc']} x {m['cpu_model']} (nproc {m['nproc_usable']})"),
        ("memory", f"{m['memory_gib']} GiB"),
        ("kernel / Python", f"{m['kernel']} / {m['python']}"),
        (
            "PostgreSQL / Redis",
            f"{m['postgresql']} (synchronous_commit={m['postgresql_synchronous_commit']}) / "
            f"{m['redis']}",
        ),
        (
            "gunicorn",
            f"{m['gunicorn_version']}: {g['workers']} x {g['worker_class']}"
            f", {g['threads']} threads, max_requests {g['max_requests']}"
            f" (+{g['max_requests_jitter']})"
            f", keepalive {g['keepalive']} s",
        ),
        (
            "load generator",
            f"{m['wrk']}: {results['load']['threads']} threads, "
            f"{results['load']['connections']} connections, {results['load']['duration']} s per "
            f"endpoint after {results['load']['warmup']} s warm-up, same machine",
        ),
        ("JWT", m["jwt_alg"]),
        ("extra settings", ", ".join(results.get("extra_env", [])) or "none"),
        ("argon2id", f"t={a['time_cost']}, m={a['memory_cost_kib']} KiB, p={a['parallelism']}"),
        ("users / revoked tokens", f"{seed.get('users', 0):,} / {seed.get('revoked', 0):,}"),
        (
            "commit",
            f"{m['git']['commit'][:12]}"
            + (
                f" (app files being edited: {', '.join(m['git']['app_files_modified'])})"
                if m["git"]["app_files_modified"]
                else ""
            ),
        ),
    ]
    return "\n".join(["| | |", "|---|---|", *[f"| {k} | {v} |" for k, v in rows]])


def markdown(results: dict[str, Any]) -> str:
    parts = [
        f"# Load benchmark: {results['name']}",
        "",
        f"Run {results['started']} with `{results['command']}` "
        f"({results.get('elapsed_s', 0):.0f} s in all).",
        "",
    ]
    if results.get("endpoints") or not results.get("login_flood"):
        parts += [
            "## Endpoints",
            "",
            endpoint_table(results),
            "",
            "A figure with any error (non-2xx response, socket error or timeout) is marked "
            "INVALID.",
            "",
        ]
    if results.get("login_flood"):
        from .login_flood import section

        parts += section(results["login_flood"])
    parts += [
        "## Ceilings (same run, same machine)",
        "",
        ceilings_table(results),
        "",
        "## Machine and configuration",
        "",
        machine_section(results),
        "",
    ]
    parts += _notes_section(results)
    if results.get("soak"):
        parts += soak_section(results["soak"])
    return "\n".join(parts)


def _notes_section(results: dict[str, Any]) -> list[str]:
    notes = []
    for name, row in results.get("endpoints", {}).items():
        for note in row.get("notes", []):
            notes.append(f"- {name}: {note}")
        if row.get("status_codes"):
            notes.append(f"- {name}: status codes {row['status_codes']}: {row['error_sample']!r}")
    if results.get("seed", {}).get("migration_warning"):
        notes.append(f"- migrations: {results['seed']['migration_warning']}")
    for key, value in results.get("seed", {}).items():
        if key.endswith("_s"):
            notes.append(f"- seeding: {key[:-2].replace('_', ' ')} took {value:.1f} s")
    footprint = results.get("seed", {}).get("footprint")
    if footprint:
        notes.append(
            f"- after seeding: database {footprint.get('database_mib')} MiB "
            f"(largest tables, MiB: {footprint.get('tables_mib')}); Redis DB 14 "
            f"{footprint.get('redis_keys')} keys, server memory "
            f"{footprint.get('redis_used_memory_mib')} MiB"
        )
    if results.get("talisman"):
        notes.append(f"- Talisman force_https: {results['talisman']}")
    notes += _log_notes(results)
    return ["## Notes", "", *notes, ""] if notes else []


def _log_notes(results: dict[str, Any]) -> list[str]:
    notes = []
    if results.get("server_log_problem_count"):
        notes.append(
            f"- server log: {results['server_log_problem_count']} problem lines (5xx access "
            "lines, ERROR lines, tracebacks); the first ones:"
        )
    notes += [f"- server log: {line}" for line in results.get("server_log_problems", [])]
    return notes


def soak_section(soak: dict[str, Any]) -> list[str]:
    lines = [
        "## Soak",
        "",
        f"{soak['seconds']} s of /me + refresh ({soak['me_per_refresh']} /me per refresh) paced at "
        f"{soak['target_rps']:.0f} req/s ({soak['fraction']:.0%} of the measured peak of that mix, "
        f"{soak['peak_mix_rps']:.0f}/s); max_requests off so a leak cannot hide behind recycling.",
        "",
        f"Achieved {soak['load']['rps']:.1f} req/s, p50 {soak['load']['p50_ms']:.1f} ms, p99 "
        f"{soak['load']['p99_ms']:.1f} ms, errors {soak['load']['errors']} "
        f"({soak['load']['status_codes'] or 'none'}); {soak.get('refreshes', 0)} refreshes, "
        f"{soak.get('me', 0)} /me.",
        "",
        "| worker pid | RSS start MiB | RSS end MiB | RSS max MiB | growth MiB |",
        "|---:|---:|---:|---:|---:|",
    ]
    for pid, w in soak["workers"].items():
        end = w["end_kib"] if w["end_kib"] is not None else w["last_kib"]
        lines.append(
            f"| {pid} | {w['start_kib'] / 1024:.1f} | {end / 1024:.1f} | {w['max_kib'] / 1024:.1f} "
            f"| {(end - w['start_kib']) / 1024:+.1f} |"
        )
    lines.append("")
    return lines


def chart(results: dict[str, Any], path: Path) -> None:
    """Throughput next to its ceiling, and p99, per endpoint."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    verdicts = judge(results)
    names = list(results.get("endpoints", {}))
    rows = [results["endpoints"][n] for n in names]
    ceilings = [verdicts[n]["ceiling_value"] or 0 for n in names]
    capacities = [r.get("capacity_rps") or 0 for r in rows]
    ceiling_capacities = [verdicts[n]["ceiling_capacity"] or 0 for n in names]
    fig, (left, right) = plt.subplots(1, 2, figsize=(13, 0.7 * len(names) + 2.5))
    y = list(range(len(names)))
    left.barh([i + 0.2 for i in y], ceilings, height=0.4, color="#cccccc", label="ceiling")
    colors = ["#2b7bba" if r["valid"] else "#d62728" for r in rows]
    left.barh(
        [i - 0.2 for i in y],
        [r["rps"] for r in rows],
        height=0.4,
        color=colors,
        label="measured (red: INVALID)",
    )
    left.scatter(
        capacities,
        [i - 0.2 for i in y],
        marker="D",
        color="black",
        s=14,
        zorder=3,
        label="capacity (cores / CPU per request)",
    )
    left.scatter(
        ceiling_capacities,
        [i + 0.2 for i in y],
        marker="D",
        color="#888888",
        s=14,
        zorder=3,
        label="ceiling capacity",
    )
    for i, (row, name) in enumerate(zip(rows, names, strict=True)):
        ratio = verdicts[name]["ratio"]
        text = f"{row['rps']:.0f}/s" + (f" ({ratio:.2f})" if ratio is not None else "")
        left.text(row["rps"], i - 0.2, " " + text, va="center", fontsize=8)
    left.set_xscale("log")
    left.set_yticks(y, [PATHS.get(n, n) for n in names], fontsize=8)
    left.invert_yaxis()
    left.set_xlabel("requests/s (log scale)")
    left.set_title("throughput vs ceiling (argon2 for login/register, bare Flask otherwise)")
    left.legend(fontsize=8, loc="lower right")
    right.barh(y, [r["p99_ms"] for r in rows], color=colors)
    right.axvline(25, color="#ff7f0e", linestyle="--", label="/me p99 target 25 ms")
    right.set_xscale("log")
    right.set_yticks(y, ["" for _ in names])
    right.invert_yaxis()
    right.set_xlabel("p99 latency, ms (log scale)")
    right.set_title("p99 latency")
    right.legend(fontsize=8)
    fig.suptitle(f"auth service load bench: {results['name']}", fontsize=11)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def write(results: dict[str, Any], directory: Path) -> dict[str, Path]:
    directory.mkdir(parents=True, exist_ok=True)
    base = directory / results["name"]
    results["verdicts"] = judge(results)
    paths = {"md": base.with_suffix(".md"), "json": base.with_suffix(".json")}
    paths["json"].write_text(json.dumps(results, indent=2, sort_keys=False, default=str) + "\n")
    paths["md"].write_text(markdown(results))
    if results.get("endpoints"):
        paths["png"] = base.with_suffix(".png")
        chart(results, paths["png"])
    return paths
