"""wrk runs: one scenario, fixed duration, loopback only; the numbers come back as a dict."""

from __future__ import annotations

import json
import shutil
import subprocess
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from .common import EMAIL_DOMAIN, LUA_DIR, SEED_PASSWORD, USER_AGENT

CONNECTIONS = 16
THREADS = 2
TIMEOUT = "10s"
#: Share of the machine's CPU that other processes may take before a measurement is retried.
CONTAMINATION = 0.08
#: A closed loop of 16 connections keeps 2 cores busy; a CPU-bound ceiling measured with the
#: machine less busy than this stalled outside the measured code (seen: the hypervisor).
SATURATED = 0.7


@dataclass
class LoadResult:
    """One endpoint under load: throughput, latency and every kind of error."""

    name: str
    requests: int
    duration_s: float
    rps: float
    p50_ms: float
    p95_ms: float
    p99_ms: float
    p999_ms: float
    max_ms: float
    non2xx: int
    socket_errors: int
    status_codes: dict[str, int]
    error_sample: str = ""
    pool_size: int = 0
    pool_used: int = 0
    pool_dry: bool = False
    notes: list[str] = field(default_factory=list)
    counters: dict[str, int] = field(default_factory=dict)
    cpu: dict[str, float] = field(default_factory=dict)

    def account(self, cpu: dict[str, float]) -> None:
        """Attach where the CPU went; say so when other jobs (or the hypervisor) took a share."""
        self.cpu = cpu
        capacity = cpu.get("capacity_s") or 0
        if capacity and cpu["other"] > CONTAMINATION * capacity:
            self.notes.append(
                f"other processes used {cpu['other']:.1f} of {capacity:.0f} core-seconds "
                "during this measurement (shared machine)"
            )
        if capacity and cpu["steal"] > CONTAMINATION * capacity:
            self.notes.append(f"hypervisor steal {cpu['steal']:.1f} of {capacity:.0f} core-seconds")

    @property
    def cpu_ms(self) -> dict[str, float]:
        """CPU milliseconds per request: the service alone, and everything this request made
        run on the machine (service, PostgreSQL, Redis, wrk), other people's jobs excluded."""
        if not self.cpu or not self.requests:
            return {}
        attributed = sum(self.cpu.get(k, 0.0) for k in ("service", "postgres", "redis", "bench"))
        return {
            "service": round(1000 * self.cpu.get("service", 0.0) / self.requests, 3),
            "attributed": round(1000 * attributed / self.requests, 3),
        }

    @property
    def capacity_rps(self) -> float | None:
        """req/s this machine's cores would serve if nothing else ran: cores / CPU per request.

        Meaningful when the run kept the CPU busy (16 connections do, on 2 cores); it is what a
        shared machine does not change, so ratios of capacities survive other people's jobs.
        """
        per_request = self.cpu_ms.get("attributed")
        cores = self.cpu.get("capacity_s", 0.0) / self.cpu["wall_s"] if self.cpu else 0.0
        if not per_request or not cores:
            return None
        return round(1000 * cores / per_request, 1)

    @property
    def contaminated(self) -> bool:
        capacity = self.cpu.get("capacity_s") or 0
        return bool(capacity) and (
            self.cpu["other"] > CONTAMINATION * capacity
            or self.cpu["steal"] > CONTAMINATION * capacity
        )

    @property
    def unsaturated(self) -> bool:
        """The machine's cores were not kept busy: not a CPU-bound figure."""
        capacity = self.cpu.get("capacity_s") or 0
        return bool(capacity) and self.cpu.get("process", 0.0) < SATURATED * capacity

    @property
    def errors(self) -> int:
        return self.non2xx + self.socket_errors

    @property
    def valid(self) -> bool:
        return self.errors == 0 and not self.pool_dry

    def as_dict(self) -> dict[str, Any]:
        return {
            **asdict(self),
            "errors": self.errors,
            "valid": self.valid,
            "contaminated": self.contaminated,
            "unsaturated": self.unsaturated,
            "cpu_ms_per_request": self.cpu_ms,
            "capacity_rps": self.capacity_rps,
        }


def write_pool(directory: Path, name: str, tokens: list[str], threads: int = THREADS) -> str:
    """Split ``tokens`` into one file per wrk thread; returns the prefix the Lua script reads."""
    directory.mkdir(parents=True, exist_ok=True)
    prefix = directory / f"{name}-pool-"
    for thread in range(threads):
        Path(f"{prefix}{thread}.txt").write_text("\n".join(tokens[thread::threads]) + "\n")
    return str(prefix)


def run_wrk(
    name: str,
    port: int,
    duration: float,
    scenario: str,
    *,
    path: str = "",
    pool_prefix: str = "",
    users: int = 0,
    run_id: str = "",
    connections: int = CONNECTIONS,
    threads: int = THREADS,
    script: str = "scenario.lua",
    extra_env: dict[str, str] | None = None,
) -> LoadResult:
    """Run wrk against 127.0.0.1:``port`` and parse the JSON line the Lua ``done()`` prints."""
    wrk = shutil.which("wrk")
    if wrk is None:
        raise RuntimeError("wrk is not installed (apt-get install -y wrk)")
    env = {
        "PATH": "/usr/bin:/bin",
        "BENCH_LUA_DIR": str(LUA_DIR),
        "BENCH_SCENARIO": scenario,
        "BENCH_PATH": path,
        "BENCH_POOL": pool_prefix,
        "BENCH_USERS": str(users),
        "BENCH_THREADS": str(threads),
        "BENCH_RUN_ID": run_id,
        "BENCH_PASSWORD": SEED_PASSWORD,
        "BENCH_EMAIL_DOMAIN": EMAIL_DOMAIN,
        "BENCH_USER_AGENT": USER_AGENT,
        **(extra_env or {}),
    }
    cmd = [
        wrk,
        f"-t{threads}",
        f"-c{connections}",
        f"-d{max(1, round(duration))}s",
        f"--timeout={TIMEOUT}",
        "-s",
        str(LUA_DIR / script),
        f"http://127.0.0.1:{port}",
    ]
    out = subprocess.run(  # noqa: S603 - wrk with fixed arguments, loopback only
        cmd, env=env, capture_output=True, text=True, timeout=duration + 120, check=False
    )
    line = next((x for x in out.stdout.splitlines() if x.startswith("BENCH_JSON ")), None)
    if line is None:
        raise RuntimeError(f"wrk failed ({out.returncode}): {out.stderr or out.stdout}")
    return parse(name, json.loads(line[len("BENCH_JSON ") :]))


def parse(name: str, data: dict[str, Any]) -> LoadResult:
    latency = data["latency_us"]
    socket = data["socket_errors"]
    threads = data["threads"]
    codes: dict[str, int] = {}
    for thread in threads:
        for code, count in (thread.get("codes") or {}).items():
            codes[code] = codes.get(code, 0) + int(count)
    duration = data["duration_us"] / 1e6
    return LoadResult(
        name=name,
        requests=int(data["requests"]),
        duration_s=round(duration, 2),
        rps=round(data["requests"] / duration, 1) if duration else 0.0,
        p50_ms=round(latency["p50"] / 1000, 2),
        p95_ms=round(latency["p95"] / 1000, 2),
        p99_ms=round(latency["p99"] / 1000, 2),
        p999_ms=round(latency["p999"] / 1000, 2),
        max_ms=round(latency["max"] / 1000, 2),
        non2xx=sum(int(t.get("non2xx") or 0) for t in threads),
        # wrk's "status" errors are responses >= 400, already in non2xx: not counted twice.
        socket_errors=sum(int(socket[k]) for k in ("connect", "read", "write", "timeout")),
        status_codes=codes,
        error_sample=next((t["sample"] for t in threads if t.get("sample")), ""),
        pool_size=sum(int(t.get("pool_size") or 0) for t in threads),
        pool_used=sum(int(t.get("used") or 0) for t in threads),
        pool_dry=any(int(t.get("dry") or 0) for t in threads),
        counters=_extra_counters(threads),
    )


KNOWN = {"non2xx", "codes", "sample", "dry", "used", "pool_size"}


def _extra_counters(threads: list[dict[str, Any]]) -> dict[str, int]:
    """Sums of the numeric per-thread values a script added (the soak's me and refreshes)."""
    totals: dict[str, int] = {}
    for thread in threads:
        for key, value in thread.items():
            if key not in KNOWN and isinstance(value, int | float):
                totals[key] = totals.get(key, 0) + int(value)
    return totals
