"""argon2id calibration: the strongest parameters this machine verifies within a time budget.

``flask auth calibrate-hash --target-ms 50`` measures a grid of memory sizes (19 MiB to 256 MiB)
and pass counts (1 to 4) at parallelism 1, and recommends the strongest point whose median
verification fits the target. "Strongest" is the work an attacker must repeat per guess, memory
times passes (KiB-passes): OWASP's five equivalent argon2id settings (m=47104 t=1, m=19456 t=2,
m=12288 t=3, m=9216 t=4, m=7168 t=5) all cost about the same by that measure. Between equals
the larger memory wins (it is what GPUs and ASICs pay for).

Times are CPU time of the verifying thread (argon2 at p=1 runs on it), so a busy machine does
not make the parameters look dearer than they are; the wall-clock median is shown beside it, and
a warning says when the two differ (the core was shared while measuring).

The measuring is impure and bounded in time; the choice, the pruning of the grid and the report
are pure functions of the measurements, so they are unit-tested without hashing anything.
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field

MEMORY_GRID_KIB: tuple[int, ...] = (19456, 32768, 47104, 65536, 131072, 262144)
TIME_GRID: tuple[int, ...] = (1, 2, 3, 4)
PARALLELISM = 1
#: OWASP Password Storage Cheat Sheet: the weakest (memory KiB, passes) pairs it accepts.
OWASP_MINIMUMS: tuple[tuple[int, int], ...] = (
    (47104, 1),
    (19456, 2),
    (12288, 3),
    (9216, 4),
    (7168, 5),
)
#: A point predicted to take this many times the target is not worth measuring.
SKIP_FACTOR = 3.0
#: Each point is measured for about this long (never fewer than MIN_SAMPLES verifications).
POINT_SECONDS = 0.8
MIN_SAMPLES = 5
MAX_SAMPLES = 15


@dataclass(frozen=True)
class Argon2Params:
    """One argon2id setting: passes, memory in KiB, lanes."""

    time_cost: int
    memory_cost: int
    parallelism: int = PARALLELISM

    @property
    def strength(self) -> int:
        """Memory x passes in KiB-passes: the work an attacker repeats for every guess."""
        return self.memory_cost * self.time_cost

    def meets_owasp_minimum(self) -> bool:
        """At least one of OWASP's equivalent minimum settings (e.g. 19 MiB with 2 passes)."""
        return any(
            self.memory_cost >= memory and self.time_cost >= passes
            for memory, passes in OWASP_MINIMUMS
        )

    def env_lines(self) -> list[str]:
        """The settings the service reads (config.py), one ``NAME=value`` per line."""
        return [
            f"ARGON2_TIME_COST={self.time_cost}",
            f"ARGON2_MEMORY_COST={self.memory_cost}",
            f"ARGON2_PARALLELISM={self.parallelism}",
        ]

    def describe(self) -> str:
        mib = self.memory_cost / 1024
        return f"t={self.time_cost}, m={self.memory_cost} KiB ({mib:g} MiB), p={self.parallelism}"


@dataclass(frozen=True)
class Measurement:
    """The median verification time of one setting on this machine."""

    params: Argon2Params
    median_ms: float
    samples: int
    #: Median wall-clock time; above ``median_ms`` when other processes shared the core.
    wall_ms: float | None = None

    @property
    def shared_core(self) -> bool:
        return self.wall_ms is not None and self.wall_ms > 1.15 * self.median_ms

    @property
    def verifications_per_second(self) -> float:
        """Logins one core can check per second at this setting (nothing else counted)."""
        return 1000.0 / self.median_ms if self.median_ms > 0 else float("inf")


@dataclass
class Calibration:
    """What was measured, what was skipped, and the recommendation (``None``: nothing fits)."""

    target_ms: float
    measurements: list[Measurement] = field(default_factory=list)
    skipped: list[Argon2Params] = field(default_factory=list)
    chosen: Measurement | None = None
    out_of_time: bool = False


def candidate_grid(
    memory_kib: Sequence[int] = MEMORY_GRID_KIB,
    time_costs: Sequence[int] = TIME_GRID,
    parallelism: int = PARALLELISM,
) -> list[Argon2Params]:
    """Every (memory, passes) pair, cheapest first (memory-major, then passes)."""
    return [
        Argon2Params(time_cost=t, memory_cost=m, parallelism=parallelism)
        for m in sorted(memory_kib)
        for t in sorted(time_costs)
    ]


def select_strongest(measurements: Iterable[Measurement], target_ms: float) -> Measurement | None:
    """The strongest measured setting whose median fits ``target_ms``; ``None`` if none does.

    Settings that meet OWASP's minimum are preferred over any that do not; then the highest
    memory x passes; then more memory; then the faster one.
    """
    fitting = [m for m in measurements if m.median_ms <= target_ms]
    if not fitting:
        return None
    return max(
        fitting,
        key=lambda m: (
            m.params.meets_owasp_minimum(),
            m.params.strength,
            m.params.memory_cost,
            -m.median_ms,
        ),
    )


def predict_ms(params: Argon2Params, measurements: Sequence[Measurement]) -> float | None:
    """Time predicted for ``params`` from the measurements so far (time grows with m x t)."""
    if not measurements:
        return None
    rates = [m.median_ms / m.params.strength for m in measurements]
    return statistics.median(rates) * params.strength


def worth_measuring(
    params: Argon2Params, measurements: Sequence[Measurement], target_ms: float
) -> bool:
    """False when a cheaper point with at least this memory and passes already missed the target
    (costs only grow), or when the prediction says it would take over SKIP_FACTOR x the target."""
    for m in measurements:
        if (
            m.median_ms > target_ms
            and m.params.memory_cost <= params.memory_cost
            and m.params.time_cost <= params.time_cost
        ):
            return False
    predicted = predict_ms(params, measurements)
    return predicted is None or predicted <= SKIP_FACTOR * target_ms


def samples_for(predicted_ms: float | None) -> int:
    """Enough verifications for a stable median in about POINT_SECONDS."""
    if predicted_ms is None or predicted_ms <= 0:
        return MIN_SAMPLES
    return max(MIN_SAMPLES, min(MAX_SAMPLES, int(POINT_SECONDS * 1000 / predicted_ms)))


def measure(params: Argon2Params, samples: int) -> Measurement:
    """Hash once, then time ``samples`` verifications of the right password (what a login does).

    The median is of the thread's CPU time; the wall-clock median is kept beside it.
    """
    from argon2 import PasswordHasher, Type

    hasher = PasswordHasher(
        time_cost=params.time_cost,
        memory_cost=params.memory_cost,
        parallelism=params.parallelism,
        type=Type.ID,
    )
    password = "calibration-password-of-typical-length"  # noqa: S105 - thrown away
    digest = hasher.hash(password)
    cpu, wall = [], []
    for _ in range(samples):
        cpu_started, wall_started = time.thread_time(), time.perf_counter()
        hasher.verify(digest, password)
        cpu.append((time.thread_time() - cpu_started) * 1000)
        wall.append((time.perf_counter() - wall_started) * 1000)
    return Measurement(params, statistics.median(cpu), samples, wall_ms=statistics.median(wall))


def calibrate(
    target_ms: float,
    *,
    grid: Sequence[Argon2Params] | None = None,
    budget_seconds: float = 25.0,
    measure_fn: Callable[[Argon2Params, int], Measurement] = measure,
    clock: Callable[[], float] = time.monotonic,
) -> Calibration:
    """Measure the grid cheapest first, skipping what cannot fit, within ``budget_seconds``."""
    result = Calibration(target_ms=target_ms)
    deadline = clock() + budget_seconds
    for params in grid if grid is not None else candidate_grid():
        if not worth_measuring(params, result.measurements, target_ms):
            result.skipped.append(params)
            continue
        if clock() >= deadline:
            result.out_of_time = True
            result.skipped.append(params)
            continue
        predicted = predict_ms(params, result.measurements)
        result.measurements.append(measure_fn(params, samples_for(predicted)))
    result.chosen = select_strongest(result.measurements, target_ms)
    return result


def report(
    result: Calibration,
    *,
    concurrent_hashes: int | None = None,
    current: Argon2Params | None = None,
) -> str:
    """The measurements, the recommendation and the env lines, as the CLI prints them."""
    lines = [
        f"argon2id verification on this machine (target {result.target_ms:g} ms, median CPU time):"
    ]
    for m in result.measurements:
        mark = "fits" if m.median_ms <= result.target_ms else "over"
        wall = f", wall {m.wall_ms:.1f} ms" if m.wall_ms is not None else ""
        lines.append(
            f"  t={m.params.time_cost} m={m.params.memory_cost:>6} KiB  "
            f"{m.median_ms:8.1f} ms  {mark}  ({m.samples} runs{wall})"
        )
    if any(m.shared_core for m in result.measurements):
        lines.append(
            "  note: wall-clock times exceed CPU times: other processes shared the CPU; "
            "logins on a machine this busy take longer than the CPU times above"
        )
    if result.skipped:
        lines.append(f"  {len(result.skipped)} costlier settings skipped (they cannot fit)")
    if result.out_of_time:
        lines.append("  the time budget ran out before the whole grid was measured")
    if current is not None:
        lines.append(f"configured now: {current.describe()}")
    chosen = result.chosen
    if chosen is None:
        lines.append(
            f"No setting of the grid verifies within {result.target_ms:g} ms here: keep the "
            "current parameters, or raise --target-ms (logins then cost more CPU)."
        )
        return "\n".join(lines)
    lines.append(
        f"strongest within {result.target_ms:g} ms: {chosen.params.describe()}: median "
        f"{chosen.median_ms:.1f} ms, about {chosen.verifications_per_second:.0f} logins/s per core"
    )
    if not chosen.params.meets_owasp_minimum():
        lines.append(
            "WARNING: below OWASP's minimum (e.g. t=2 with 19 MiB): this machine is too slow "
            "for the target; raise --target-ms rather than weaken the hash."
        )
    if concurrent_hashes:
        total_mib = chosen.params.memory_cost * concurrent_hashes / 1024
        lines.append(
            f"memory: {chosen.params.memory_cost / 1024:g} MiB per login in progress; "
            f"{concurrent_hashes} at once (workers x threads) hold up to {total_mib:.0f} MiB"
        )
    lines.append("set:")
    lines.extend(f"  {line}" for line in chosen.params.env_lines())
    return "\n".join(lines)
