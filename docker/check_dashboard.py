"""Fail when the Grafana dashboard queries a metric the binaries do not register.

Each `miner_*` / `validator_*` series in docker/grafana/dashboards/*.json, less the suffixes Prometheus
adds (`_total`, `_bucket`, `_sum`, `_count`), must be registered as `registry.register("<name>", …)`
in miner/src/metrics.rs or validator/src/metrics.rs (both registries carry the crate name as prefix).
"""
import glob
import json
import re
import sys

registered = set()
for crate in ("miner", "validator"):
    with open(f"{crate}/src/metrics.rs", encoding="utf-8") as f:
        src = f.read()
    for name in re.findall(r'register\(\s*"([a-z_]+)"', src):
        registered.add(f"{crate}_{name}")

missing = []
for path in glob.glob("docker/grafana/dashboards/*.json"):
    with open(path, encoding="utf-8") as f:
        dashboard = json.load(f)
    for panel in dashboard["panels"]:
        for target in panel.get("targets", []):
            for series in re.findall(r"\b((?:miner|validator)_[a-z_]+)", target["expr"]):
                base = re.sub(r"_(total|bucket|sum|count)$", "", series)
                if base not in registered:
                    missing.append(f"{path}: panel '{panel['title']}' queries {series}, not registered")
if missing:
    print("\n".join(missing), file=sys.stderr)
    sys.exit(1)
print(f"  dashboards: every queried series is registered ({len(registered)} metrics known)")
