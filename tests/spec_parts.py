"""Parts of specs that tests build in code: what they need to be valid but do not test."""

from __future__ import annotations

from typing import Any


def small_serving(service: str) -> dict[str, Any]:
    """One small sklearn model reading ``service``: the serving section of a feature-store test's spec."""
    return {
        "latency_p99_ms": 100,
        "throughput_rps": 10,
        "models": [
            {
                "name": "ranker",
                "framework": "sklearn",
                "feature_service": service,
                "outputs": [{"name": "score", "dtype": "fp32", "dims": [1]}],
            }
        ],
    }
