"""Where the CPU went, from py-spy's collapsed stacks (``py-spy record --format raw``).

    .venv/bin/python bench/profile_summary.py bench/results/<name>-profiles/me.txt

Prints the share of on-CPU samples under each category (argon2, JWT signing, JWT parsing and
verifying, SQLAlchemy, the PostgreSQL driver, Redis, marshmallow, logging, Flask/Werkzeug,
gunicorn) and the heaviest functions, inclusive and self. Idle samples (a worker waiting on a
socket) are left out by py-spy unless --idle was given, so the shares are of CPU time.
"""

from __future__ import annotations

import argparse
import re
import sys
from collections import Counter
from pathlib import Path

# First match wins, tested against each frame from the innermost outwards.
CATEGORIES: list[tuple[str, re.Pattern[str]]] = [
    ("argon2 (password hashing)", re.compile(r"argon2")),
    (
        "JWT sign",
        re.compile(r"\b(sign|_sign|encode)\b.*(jwt|cryptography)|jwt/api_jw[st]\.py.*encode"),
    ),
    ("JWT parse + verify", re.compile(r"jwt/(api_jws|api_jwt|algorithms|utils)\.py")),
    ("SQLAlchemy ORM/Core", re.compile(r"sqlalchemy/")),
    ("psycopg2 (DB driver, round trips)", re.compile(r"psycopg2")),
    ("Redis client", re.compile(r"redis/")),
    ("marshmallow", re.compile(r"marshmallow/")),
    ("logging", re.compile(r"logging/|pythonjsonlogger|logging_setup")),
    ("prometheus", re.compile(r"prometheus")),
    ("flask-jwt-extended", re.compile(r"flask_jwt_extended/")),
    ("Flask / Werkzeug", re.compile(r"flask/|werkzeug/|flask_talisman|flask_cors|flask_limiter")),
    ("gunicorn (HTTP, sockets)", re.compile(r"gunicorn/")),
]


def load(paths: list[Path]) -> list[tuple[list[str], int]]:
    stacks = []
    for path in paths:
        for line in path.read_text(errors="replace").splitlines():
            frames, _, count = line.rpartition(" ")
            if frames and count.isdigit():
                stacks.append((frames.split(";"), int(count)))
    return stacks


def categorise(frames: list[str]) -> str:
    for frame in reversed(frames):
        for name, pattern in CATEGORIES:
            if pattern.search(frame):
                return name
    return "other (application code, interpreter)"


def summary(stacks: list[tuple[list[str], int]], top: int = 25) -> str:
    total = sum(count for _, count in stacks) or 1
    categories: Counter[str] = Counter()
    inclusive: Counter[str] = Counter()
    own: Counter[str] = Counter()
    for frames, count in stacks:
        categories[categorise(frames)] += count
        for frame in set(frames):
            inclusive[frame] += count
        own[frames[-1]] += count
    lines = [f"{total} samples", "", "by category (innermost matching frame):"]
    lines += [f"  {100 * n / total:5.1f}%  {name}" for name, n in categories.most_common()]
    lines += ["", f"top {top} inclusive:"]
    lines += [f"  {100 * n / total:5.1f}%  {frame}" for frame, n in inclusive.most_common(top)]
    lines += ["", f"top {top} self:"]
    lines += [f"  {100 * n / total:5.1f}%  {frame}" for frame, n in own.most_common(top)]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("files", type=Path, nargs="+")
    p.add_argument("--top", type=int, default=25)
    args = p.parse_args(argv)
    print(summary(load(args.files), args.top))
    return 0


if __name__ == "__main__":
    sys.exit(main())
