"""What an app did, read from its own metrics (each test app has its own registry)."""

from __future__ import annotations

from typing import Any


def verifications(app: Any) -> float:
    """argon2 verifications this app has run (its password-hash histogram's count)."""
    for metric in app.extensions["auth_metrics"].password_hash.collect():
        for sample in metric.samples:
            if sample.name.endswith("_count") and sample.labels["operation"] == "verify":
                return float(sample.value)
    return 0.0
