"""The compose file's nginx configuration, read the way its tests read it (no server needed)."""

from __future__ import annotations

import re
from pathlib import Path

NGINX_CONF = Path(__file__).resolve().parents[1] / "infrastructure" / "nginx" / "nginx.conf"


def nginx_directive(name: str) -> str:
    """The value of a directive the configuration sets exactly once."""
    values = re.findall(
        rf"^\s*{name}\s+([^;{{]+);", NGINX_CONF.read_text(encoding="utf-8"), re.MULTILINE
    )
    assert len(values) == 1, f"{NGINX_CONF} sets {name} {len(values)} times, expected once"
    return str(values[0]).strip()
