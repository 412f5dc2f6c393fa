"""`mcast-sdn`: launch the controller the way `ryu-manager` does, with our defaults.

Equivalent to `ryu-manager --observe-links mcast_sdn.app [your args]`, but it applies
the eventlet compatibility patch itself (see `mcast_sdn.compat`), so it also works in an
environment where the set-up script's .pth file was not written.
"""
from __future__ import annotations

import sys


def main(argv: list[str] | None = None) -> None:
    from mcast_sdn import compat

    compat.install()
    args = list(sys.argv[1:] if argv is None else argv)
    if "--observe-links" not in args:
        args.insert(0, "--observe-links")
    if not any(a.startswith("mcast_sdn") or a.endswith(".py") for a in args if not a.startswith("-")):
        args.append("mcast_sdn.app")
    from ryu.cmd import manager

    sys.argv = ["ryu-manager"] + args
    manager.main()


if __name__ == "__main__":
    main()
