"""Start-up settings of the running controller, from one JSON file.

Why a file named by an environment variable (MCAST_SDN_CONFIG) and not ryu-manager
flags: ryu-manager parses its command line before it imports applications, so an
application cannot add command-line flags of its own. The file is optional; every
value has a default.

Format: {"core": {"settle": 3.0, "max_hosts_per_port": 64}, ...}
"""
from __future__ import annotations

import json
import os
from dataclasses import dataclass, field, fields

from mcast_sdn.core import CoreConfig

ENV = "MCAST_SDN_CONFIG"


@dataclass
class Settings:
    core: CoreConfig = field(default_factory=CoreConfig)
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
    s = Settings(raw=data)
    if "core" in data:
        s.core = _dataclass_from(CoreConfig, data["core"], "core")
    return s


def load(path: str | None = None) -> Settings:
    path = path or os.environ.get(ENV)
    if not path:
        return Settings()
    with open(path, encoding="utf-8") as fh:
        return from_dict(json.load(fh))
