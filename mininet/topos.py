"""Mininet ``--custom`` file: the mcast-sdn topologies for ``mn``.

    sudo mn --custom mininet/topos.py --topo abilene --controller remote
    sudo mn --custom mininet/topos.py --topo linear,5
    sudo mn --custom mininet/topos.py --topo fattree,4
    sudo mn --custom mininet/topos.py --topo file,topologies/geant.json,use_tc=1

Each entry of `topos` returns a `mcast_sdn.mntopo.SpecTopo`, so switches get their
spec dpids, OpenFlow 1.3 and the spec's port numbers. ``use_tc=1`` (any entry) turns
on TCLink delay/bandwidth from the spec.

Why this file looks the way it does:
- ``mn`` does not import this file, it ``exec``s it in a fresh dict, so ``__file__``
  is not defined; the repository root is found from the code object's file name and
  put on ``sys.path`` so that ``import mcast_sdn`` works without installing it.
- this directory must not get an ``__init__.py``: it is called ``mininet`` and would
  then shadow the real Mininet package for anything run from the repository root.
- ``mn`` copies every global name of this file into its own globals, so helpers are
  underscore-named and nothing here reuses a name ``mn`` has (Topo, Mininet, ...).
"""
import os
import sys

_REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(
    globals().get("__file__") or sys._getframe().f_code.co_filename)))
if _REPO_ROOT not in sys.path:
    sys.path.insert(0, _REPO_ROOT)

import mcast_sdn.mntopo as _mntopo  # noqa: E402


def _flag(value):
    """``mn`` passes ``use_tc=1`` as 1 and ``use_tc=true`` as the string 'true'."""
    if isinstance(value, str):
        return value.strip().lower() in ("1", "true", "yes", "on")
    return bool(value)


def _generated(generator, *defaults):
    """Positional args override the defaults in order (``leafspine,4`` = 4 spines,
    4 leaves, 2 hosts each); keyword args override by name."""
    def make(*args, use_tc=False, **params):
        names = _GEN_ARGS[generator]
        if len(args) > len(names):
            raise ValueError(f"{generator} takes at most {len(names)} positional "
                             f"arguments ({', '.join(names)}), got {args}")
        kwargs = dict(zip(names, defaults))
        kwargs.update(zip(names, args))
        kwargs.update(params)
        return _mntopo.spec_topo(generator, use_tc=_flag(use_tc), **kwargs)
    make.__name__ = generator
    return make


def _named(name):
    def make(use_tc=False):
        return _mntopo.spec_topo(name, use_tc=_flag(use_tc))
    make.__name__ = name
    return make


def _file(path, use_tc=False):
    """Any topology file (a path) or name that `mcast_sdn.topofile.load` knows."""
    return _mntopo.spec_topo(str(path), use_tc=_flag(use_tc))


# Positional argument names of each generator, so ``--topo tree,3,2`` works as in
# Mininet's own TreeTopo (depth, fanout).
_GEN_ARGS = {
    "linear": ("n", "hosts_per_switch"),
    "ring": ("n", "hosts_per_switch"),
    "tree": ("depth", "fanout"),
    "fat_tree": ("k",),
    "leaf_spine": ("spines", "leaves", "hosts_per_leaf"),
    "mesh": ("n", "hosts_per_switch"),
}

topos = {
    "linear": _generated("linear", 3),
    "ring": _generated("ring", 4),
    "tree": _generated("tree", 2, 2),
    "fattree": _generated("fat_tree", 4),
    "leafspine": _generated("leaf_spine", 2, 4, 2),
    "mesh": _generated("mesh", 4),
    "abilene": _named("abilene"),
    "geant": _named("geant"),
    "file": _file,
}
