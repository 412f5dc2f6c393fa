"""Make Ryu 4.34 run on Python >= 3.10 with a current eventlet.

Why: `ryu/app/wsgi.py` does `from eventlet.wsgi import ALREADY_HANDLED` at import
time, and `ryu-manager` imports that module before it loads any application. Every
eventlet release that runs on Python 3.10+ removed the constant, so the stock
`ryu-manager` dies with ImportError before our app could fix anything.

The fix lives here, not in site-packages: `install()` adds the missing constant to
`eventlet.wsgi` (an empty body iterable, which is what a WSGI server needs for a
response the application already wrote, i.e. Ryu's websocket path).  To get it
applied before `ryu-manager` imports Ryu, the set-up script writes a one-line
`mcast_sdn_compat.pth` into the venv's site-packages (`python -m mcast_sdn.compat
--install`). The .pth line only registers a lazy import hook: eventlet is patched
when something imports `eventlet.wsgi`, so other programs in the venv pay nothing.
"""
from __future__ import annotations

import importlib.abc
import importlib.util
import os
import sys
import sysconfig

PTH_NAME = "mcast_sdn_compat.pth"
PTH_LINE = "import mcast_sdn.compat as _m; _m.install_hook()\n"


def _patch(module) -> None:
    if not hasattr(module, "ALREADY_HANDLED"):
        module.ALREADY_HANDLED = []


class _Finder(importlib.abc.MetaPathFinder):
    """Patches eventlet.wsgi right after it is executed."""

    def find_spec(self, fullname, path, target=None):
        if fullname != "eventlet.wsgi":
            return None
        sys.meta_path.remove(self)
        try:
            spec = importlib.util.find_spec(fullname)
        finally:
            sys.meta_path.insert(0, self)
        if spec is None or spec.loader is None:
            return spec
        loader = spec.loader
        orig_exec = loader.exec_module

        def exec_module(module, _orig=orig_exec):
            _orig(module)
            _patch(module)

        loader.exec_module = exec_module
        return spec


def install_hook() -> None:
    """Register the lazy patch (idempotent); patch at once if eventlet.wsgi is loaded."""
    mod = sys.modules.get("eventlet.wsgi")
    if mod is not None:
        _patch(mod)
        return
    if not any(isinstance(f, _Finder) for f in sys.meta_path):
        sys.meta_path.insert(0, _Finder())


def install() -> None:
    """Patch now (imports eventlet.wsgi)."""
    install_hook()
    import eventlet.wsgi  # noqa: F401  (triggers the hook)

    _patch(sys.modules["eventlet.wsgi"])


def write_pth() -> str:
    site = sysconfig.get_paths()["purelib"]
    path = os.path.join(site, PTH_NAME)
    with open(path, "w", encoding="ascii") as fh:
        fh.write(PTH_LINE)
    return path


if __name__ == "__main__":
    if "--install" in sys.argv[1:]:
        print("wrote", write_pth())
    else:
        print(__doc__)
