"""docs/grafana-dashboard.json asks only for metrics that serve and the fronts define."""

from __future__ import annotations

import json
import re
from pathlib import Path

from prometheus_client import REGISTRY

import edge.front_metrics  # noqa: F401 - registers the fronts' metrics
import serve.metrics  # noqa: F401 - registers the origin's metrics

DASHBOARD = Path(__file__).resolve().parents[1] / "docs" / "grafana-dashboard.json"


def _defined() -> set[str]:
    names = set()
    for metric in REGISTRY.collect():
        names.update(sample.name for sample in metric.samples)
        names.add(metric.name)
        if metric.type == "histogram":  # a labelled one has no samples until observed
            names.update(metric.name + s for s in ("_bucket", "_count", "_sum"))
    return names


def test_every_metric_of_the_dashboard_is_defined() -> None:
    dashboard = json.loads(DASHBOARD.read_text())
    exprs = [t["expr"] for p in dashboard["panels"] for t in p.get("targets", [])]
    used = {m for e in exprs for m in re.findall(r"\bsparkcast_[a-z_]+", e)}
    assert used, "the dashboard queries nothing"
    defined = _defined() | {n + "_total" for n in _defined()}
    assert not used - defined, f"not defined by serve or the fronts: {used - defined}"
