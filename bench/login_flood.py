"""`--scenario login-flood`: another user's /me while wrong-password logins flood the service.

Issue 15, F4: logins waiting for a hash used to hold request threads without limit, and every
thread that hashed kept 19 MiB. Here /me runs paced (``--me-rate`` req/s over
``--me-connections``), first alone ("idle"), then beside a flood of wrong-password logins
paced at ``--flood-rate`` (default: twice the argon2 ceiling measured in the same run, so
logins are saturated; ``0``: a closed loop of ``--flood-connections``). Two floods: addresses
without an account ("unknown": a dummy verification each, within LOGIN_UNKNOWN_BUDGET) and
the seeded accounts ("known": a real verification each). Rate limits are off, as in every
bench run: the flood stands for many clients each under its own limit. Reported per phase:
/me p50/p99 and their ratio to idle, the flood's answers (401 / 503 / others) and rate, the
service's own counters (verifications computed, refused for lack of a hash thread, unknown
addresses past the budget), and the RSS of every worker before and after.
"""

from __future__ import annotations

import itertools
import re
import threading
import time
from pathlib import Path
from typing import Any

from . import seed
from .common import CpuAccount, Server, http_request, log, rss_kib, seed_email, wait_for_quiet
from .load import CONTAMINATION, LoadResult, run_wrk, write_pool

FLOODS = ("unknown", "known")
ME_POOL = 2000
#: The target the issue sets: /me p99 under the flood at most twice its idle value.
TARGET_P99_RATIO = 2.0
COUNTERS = {
    "verifications": r'auth_password_hash_duration_seconds_count\{operation="verify"\}',
    "hashes": r'auth_password_hash_duration_seconds_count\{operation="hash"\}',
    "refused_busy": r"auth_password_hash_busy_total\{[^}]*\}",
    "unknown_over_budget": r"auth_login_unknown_over_budget_total",
}


def scrape(server: Server, env: dict[str, str]) -> dict[str, float]:
    """The service's own counters, summed over workers (PROMETHEUS_MULTIPROC_DIR)."""
    status, _, body = http_request(
        server.port,
        "GET",
        "/metrics",
        headers={"Authorization": f"Bearer {env['METRICS_TOKEN']}"},
    )
    if status != 200:
        raise RuntimeError(f"/metrics answered {status}")
    text = body.decode()
    totals = {}
    for name, pattern in COUNTERS.items():
        values = re.findall(rf"^{pattern} ([0-9.e+]+)$", text, re.MULTILINE)
        totals[name] = sum(float(v) for v in values)
    return totals


def rss(server: Server) -> dict[str, int]:
    """VmRSS of every worker, KiB."""
    return {str(pid): kib for pid in server.worker_pids() if (kib := rss_kib(pid)) is not None}


def _me(server: Server, name: str, seconds: float, prefix: str, args: Any) -> LoadResult:
    return run_wrk(
        name,
        server.port,
        seconds,
        "me",
        pool_prefix=prefix,
        connections=args.me_connections,
        threads=2,
        extra_env={"BENCH_RATE": f"{args.me_rate:.3f}"},
    )


def _phase_row(result: LoadResult, idle: LoadResult | None) -> dict[str, Any]:
    row = {
        "rps": result.rps,
        "p50_ms": result.p50_ms,
        "p95_ms": result.p95_ms,
        "p99_ms": result.p99_ms,
        "max_ms": result.max_ms,
        "errors": result.errors,
        "status_codes": result.status_codes,
        "cpu": result.cpu,
        "notes": result.notes,
    }
    if idle is not None:
        row["p50_ratio"] = round(result.p50_ms / idle.p50_ms, 2) if idle.p50_ms else None
        row["p99_ratio"] = round(result.p99_ms / idle.p99_ms, 2) if idle.p99_ms else None
        row["p99_target_met"] = bool(row["p99_ratio"] and row["p99_ratio"] <= TARGET_P99_RATIO)
    return row


def _shared(row: dict[str, Any]) -> float:
    """Share of the machine other processes (or the hypervisor) took during a phase."""
    cpu = row.get("cpu") or {}
    capacity = cpu.get("capacity_s") or 0.0
    return max(cpu.get("other", 0.0), cpu.get("steal", 0.0)) / capacity if capacity else 0.0


def _least_shared(measure: Any, retries: int, what: str) -> dict[str, Any]:
    """Measure again while other processes took more than CONTAMINATION of the machine; keep
    the attempt they disturbed least (a shared machine: colleagues' test suites)."""
    attempts: list[dict[str, Any]] = []
    for attempt in range(retries + 1):
        attempts.append(measure())
        if _shared(attempts[-1]) <= CONTAMINATION:
            break
        if attempt < retries:
            log(f"  {what}: other processes took {_shared(attempts[-1]):.0%}: measuring again")
    best = min(attempts, key=_shared)
    best["shared_cpu"] = round(_shared(best), 3)
    best["attempts_shared_cpu"] = [round(_shared(a), 3) for a in attempts]
    return best


def flood_phase(
    server: Server,
    env: dict[str, str],
    kind: str,
    prefix: str,
    idle: LoadResult,
    args: Any,
    run_id: str,
) -> dict[str, Any]:
    """/me for ``args.duration`` s inside a flood that started ``args.warmup`` s earlier."""
    flood_seconds = args.warmup + args.duration + 2
    flood: dict[str, LoadResult] = {}
    failure: list[BaseException] = []

    def drive() -> None:
        try:
            flood["result"] = run_wrk(
                f"flood-{kind}",
                server.port,
                flood_seconds,
                f"flood_{kind}",
                users=args.users,
                run_id=f"{run_id}{kind[0]}",
                connections=args.flood_connections,
                threads=2,
                extra_env={"BENCH_RATE": f"{args.flood_rate:.3f}"} if args.flood_rate else None,
            )
        except BaseException as exc:  # noqa: BLE001 - handed to the caller
            failure.append(exc)

    wait_for_quiet(args.quiet_timeout)
    before = scrape(server, env)
    worker = threading.Thread(target=drive)
    worker.start()
    time.sleep(args.warmup)
    with CpuAccount(server.pid) as cpu:
        me = _me(server, f"me-flood-{kind}", args.duration, prefix, args)
    me.account(cpu.summary())
    worker.join(timeout=flood_seconds + 120)
    if failure:
        raise RuntimeError(f"flood failed: {failure[0]}") from failure[0]
    after = scrape(server, env)
    result = flood["result"]
    row = _phase_row(me, idle)
    row["flood"] = {
        "kind": kind,
        "connections": args.flood_connections,
        "rate": args.flood_rate or None,
        "seconds": flood_seconds,
        "rps": result.rps,
        "requests": result.requests,
        "p50_ms": result.p50_ms,
        "p99_ms": result.p99_ms,
        "max_ms": result.max_ms,
        "status_codes": result.status_codes,
        "socket_errors": result.socket_errors,
        "counters": {k: round(after[k] - before.get(k, 0.0)) for k in after},
    }
    row["rss_kib_after"] = rss(server)
    log(
        f"  flood {kind}: {result.rps}/s {result.status_codes}; /me p50 {me.p50_ms} "
        f"p99 {me.p99_ms} ms (x{row['p99_ratio']} of idle), counters {row['flood']['counters']}"
    )
    return row


def run_login_flood(
    server: Server, env: dict[str, str], workdir: Path, args: Any, run_id: str
) -> dict[str, Any]:
    """Idle /me, then /me inside each flood of ``args.floods``; RSS of the workers throughout."""
    pairs = seed.session_pool(env, ME_POOL, args.users)
    prefix = write_pool(workdir, "me-flood", [a for a, _ in pairs], 2)
    status, _, body = http_request(
        server.port, "GET", "/api/v1/auth/me", headers={"Authorization": f"Bearer {pairs[0][0]}"}
    )
    if status != 200:
        raise RuntimeError(f"/me smoke check: {status} {body[:300]!r}")
    wrong = {"email": seed_email(0), "password": "bench-wrong-password"}
    status, _, body = http_request(server.port, "POST", "/api/v1/auth/login", body=wrong)
    if status != 401:
        raise RuntimeError(f"wrong-password smoke check: {status} {body[:300]!r}")
    _me(server, "me-warmup", args.warmup, prefix, args)
    results: dict[str, Any] = {
        "me_rate": args.me_rate,
        "me_connections": args.me_connections,
        "duration": args.duration,
        "warmup": args.warmup,
        "target_p99_ratio": TARGET_P99_RATIO,
        "rss_kib_before": rss(server),
    }
    log(f"/me idle: {args.me_rate:.0f} req/s paced over {args.me_connections} connections")
    idles: dict[int, LoadResult] = {}

    def measure_idle() -> dict[str, Any]:
        wait_for_quiet(args.quiet_timeout)
        with CpuAccount(server.pid) as cpu:
            result = _me(server, "me-idle", args.duration, prefix, args)
        result.account(cpu.summary())
        row = _phase_row(result, None)
        idles[id(row)] = result
        log(f"  /me idle: p50 {result.p50_ms} p99 {result.p99_ms} ms, errors {result.errors}")
        return row

    results["idle"] = _least_shared(measure_idle, args.retries, "/me idle")
    idle = idles[id(results["idle"])]
    results["floods"] = {}
    ids = itertools.count()
    for kind in args.flood_list:
        log(f"flood {kind}: {args.flood_connections} connections of wrong-password logins")

        def measure(kind: str = kind) -> dict[str, Any]:
            # a fresh run id per attempt: the unknown flood's addresses are never reused
            return flood_phase(server, env, kind, prefix, idle, args, f"{run_id}{next(ids)}")

        results["floods"][kind] = _least_shared(measure, args.retries, f"flood {kind}")
    results["rss_kib_after"] = rss(server)
    return results


def _offered(flood: dict[str, Any]) -> str:
    if flood.get("rate"):
        return f"{flood['rate']:.0f}/s paced, {flood['connections']} conns"
    return f"closed loop, {flood['connections']} conns"


def section(flood: dict[str, Any]) -> list[str]:
    """The scenario's Markdown: /me per phase, the floods, and worker RSS."""
    idle = flood["idle"]
    lines = [
        "## Login flood: /me beside wrong-password logins",
        "",
        f"/me paced at {flood['me_rate']:.0f} req/s over {flood['me_connections']} connections, "
        f"{flood['duration']} s per phase; each flood starts {flood['warmup']} s before its /me "
        f"phase. Target: /me p99 under a flood <= {flood['target_p99_ratio']:g} x idle.",
        "",
        "| phase | /me p50 ms | /me p99 ms | /me max ms | p50 x idle | p99 x idle | target "
        "| /me errors | flood req/s done | flood answers | verifications | refused (503) "
        "| unknown past budget | CPU taken by others |",
        "|---|---:|---:|---:|---:|---:|---|---:|---:|---|---:|---:|---:|---:|",
        f"| idle | {idle['p50_ms']:.2f} | {idle['p99_ms']:.2f} | {idle['max_ms']:.1f} | 1 | 1 | "
        f"| {idle['errors']} | | | | | | {idle.get('shared_cpu', 0):.0%} |",
    ]
    for kind, row in flood["floods"].items():
        f = row["flood"]
        c = f["counters"]
        lines.append(
            f"| flood {kind} ({_offered(f)}) | {row['p50_ms']:.2f} | "
            f"{row['p99_ms']:.2f} | {row['max_ms']:.1f} | {row['p50_ratio']} | "
            f"{row['p99_ratio']} | {'met' if row['p99_target_met'] else 'missed'} | "
            f"{row['errors']} | {f['rps']:.1f} | {f['status_codes']} | "
            f"{c.get('verifications', 0):.0f} | {c.get('refused_busy', 0):.0f} | "
            f"{c.get('unknown_over_budget', 0):.0f} | {row.get('shared_cpu', 0):.0%} |"
        )
    lines += [
        "",
        "Flood answers: 401 = checked (or answered as if), 503 = no hash thread within "
        "ARGON2_QUEUE_TIMEOUT. Counters are the service's own, over the whole flood.",
        "",
        "| worker pid | RSS before MiB | "
        + " | ".join(f"after {k} flood MiB" for k in flood["floods"])
        + " | growth MiB |",
        "|---:|---:|" + "---:|" * len(flood["floods"]) + "---:|",
    ]
    for pid, before in flood["rss_kib_before"].items():
        afters = [row["rss_kib_after"].get(pid) for row in flood["floods"].values()]
        end = flood["rss_kib_after"].get(pid)
        cells = " | ".join(f"{a / 1024:.1f}" if a else "gone" for a in afters)
        growth = f"{(end - before) / 1024:+.1f}" if end else "-"
        lines.append(f"| {pid} | {before / 1024:.1f} | {cells} | {growth} |")
    lines.append("")
    return lines
