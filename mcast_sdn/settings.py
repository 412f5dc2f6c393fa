"""Start-up settings of the running controller, from one JSON file.

Why a file named by an environment variable (MCAST_SDN_CONFIG) and not ryu-manager
flags: ryu-manager parses its command line before it imports applications, so an
application cannot add command-line flags of its own. The file is optional; every
value has a default.

Format (every key optional):
    {"core": {"settle": 3.0, "max_hosts_per_port": 64},
     "membership": {"query_interval": 125, "robustness": 2, ...},      # see mcast_sdn.config
     "trees": {"default_mode": "spt", "negative_cache_seconds": 10,
               "policies": [{"prefix": "239.1.0.0/16", "mode": "shared", "rp": 3}]}}
"""
from __future__ import annotations

import json
import os
from dataclasses import dataclass, field, fields

from mcast_sdn.config import MembershipConfig
from mcast_sdn.core import CoreConfig
from mcast_sdn.forwarding import RangePolicy, TreeConfig

ENV = "MCAST_SDN_CONFIG"


@dataclass
class Settings:
    core: CoreConfig = field(default_factory=CoreConfig)
    membership: MembershipConfig = field(default_factory=MembershipConfig)
    trees: TreeConfig = field(default_factory=TreeConfig)
    raw: dict = field(default_factory=dict)


def _dataclass_from(cls, data: dict, where: str):
    if not isinstance(data, dict):
        raise ValueError(f"{where}: expected an object")
    names = {f.name: f for f in fields(cls)}
    kwargs = {}
    for k, v in data.items():
        if k not in names:
            raise ValueError(f"{where}: unknown setting {k!r}")
        kwargs[k] = v
    return cls(**kwargs)


def from_dict(data: dict) -> Settings:
    if not isinstance(data, dict):
        raise ValueError("settings: expected a JSON object")
    unknown = set(data) - {"core", "membership", "trees"}
    if unknown:
        raise ValueError(f"settings: unknown section(s) {sorted(unknown)}")
    s = Settings(raw=data)
    if "core" in data:
        s.core = _dataclass_from(CoreConfig, data["core"], "core")
    if "membership" in data:
        s.membership = MembershipConfig.from_dict(data["membership"])
    if "trees" in data:
        s.trees = trees_from_dict(data["trees"])
    return s


def trees_from_dict(d: dict) -> TreeConfig:
    if not isinstance(d, dict):
        raise ValueError("trees: expected an object")
    unknown = set(d) - {"default_mode", "negative_cache_seconds", "policies"}
    if unknown:
        raise ValueError(f"trees: unknown setting(s) {sorted(unknown)}")
    mode = d.get("default_mode", "spt")
    if mode not in ("spt", "shared", "steiner"):
        raise ValueError(f"trees: unknown default_mode {mode!r}")
    neg = d.get("negative_cache_seconds", 10.0)
    if not isinstance(neg, (int, float)) or isinstance(neg, bool) or not 1 <= neg <= 3600:
        raise ValueError("trees: negative_cache_seconds must be a number in [1, 3600]")
    pols = d.get("policies", [])
    if not isinstance(pols, list):
        raise ValueError("trees: policies must be a list")
    return TreeConfig(tuple(RangePolicy.from_dict(p) for p in pols), mode, float(neg))


def load(path: str | None = None) -> Settings:
    path = path or os.environ.get(ENV)
    if not path:
        return Settings()
    with open(path, encoding="utf-8") as fh:
        return from_dict(json.load(fh))
