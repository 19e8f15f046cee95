"""Soak: /me + refresh at a fraction of the measured peak for a long time, worker RSS sampled."""

from __future__ import annotations

import threading
import time
from pathlib import Path
from typing import Any

from . import seed
from .common import Server, log, rss_kib
from .load import CONNECTIONS, THREADS, LoadResult, run_wrk

SAMPLE_EVERY = 5.0


def peak_mix_rps(me_rps: float, refresh_rps: float, me_per_refresh: int) -> float:
    """Peak of the mix: each request of it costs its share of one /me and one refresh."""
    share_me = me_per_refresh / (me_per_refresh + 1)
    return 1.0 / (share_me / me_rps + (1 - share_me) / refresh_rps)


class RssSampler:
    """VmRSS of every gunicorn worker every few seconds (psutil-free: /proc/<pid>/status)."""

    def __init__(self, server: Server) -> None:
        self.server = server
        self.workers: dict[int, dict[str, Any]] = {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, daemon=True)

    def sample(self) -> None:
        live = set(self.server.worker_pids())
        for pid in live:
            kib = rss_kib(pid)
            if kib is None:
                continue
            w = self.workers.setdefault(
                pid, {"start_kib": kib, "max_kib": kib, "last_kib": kib, "end_kib": None}
            )
            w["max_kib"] = max(w["max_kib"], kib)
            w["last_kib"] = kib
        for pid, w in self.workers.items():
            w["alive"] = pid in live

    def _loop(self) -> None:
        while not self._stop.wait(SAMPLE_EVERY):
            self.sample()

    def __enter__(self) -> RssSampler:
        self.sample()
        self._thread.start()
        return self

    def __exit__(self, *_exc: object) -> None:
        self._stop.set()
        self._thread.join()
        self.sample()
        for w in self.workers.values():
            if w.get("alive"):
                w["end_kib"] = w["last_kib"]


def run_soak(
    server: Server,
    env: dict[str, str],
    workdir: Path,
    *,
    seconds: float,
    target_rps: float,
    me_per_refresh: int,
    users: int,
    connections: int = CONNECTIONS,
    threads: int = THREADS,
) -> tuple[LoadResult, dict[int, dict[str, Any]]]:
    """Drive the mix for ``seconds`` at ``target_rps``; returns the load and per-worker RSS."""
    pairs = seed.session_pool(env, threads * (connections // threads + 64), users)
    prefix = workdir / "soak-pool-"
    for thread in range(threads):
        lines = [f"{a}\t{r}" for a, r in pairs[thread::threads]]
        Path(f"{prefix}{thread}.txt").write_text("\n".join(lines) + "\n")
    result: dict[str, LoadResult] = {}
    failure: list[BaseException] = []

    def drive() -> None:
        try:
            result["load"] = run_wrk(
                "soak",
                server.port,
                seconds,
                "soak",
                script="soak.lua",
                connections=connections,
                threads=threads,
                users=users,
                extra_env={
                    "BENCH_POOL": str(prefix),
                    "BENCH_RATE": f"{target_rps:.3f}",
                    "BENCH_ME_PER_REFRESH": str(me_per_refresh),
                },
            )
        except BaseException as exc:  # noqa: BLE001 - handed to the caller
            failure.append(exc)

    log(f"soak: {seconds:.0f}s at {target_rps:.0f} req/s ({me_per_refresh} /me per refresh)")
    with RssSampler(server) as sampler:
        worker = threading.Thread(target=drive)
        worker.start()
        started = time.monotonic()
        while worker.is_alive():
            worker.join(timeout=60)
            if worker.is_alive():
                log(f"  soak {time.monotonic() - started:.0f}s / {seconds:.0f}s")
    if failure:
        raise RuntimeError(f"soak load failed: {failure[0]}") from failure[0]
    return result["load"], sampler.workers
