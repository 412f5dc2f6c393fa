#!/usr/bin/env python3
"""Run ryu-manager under cProfile: SIGUSR1 starts profiling, SIGTERM writes it and exits.

    python bench/ryu_profiled.py OUT.prof /path/to/ryu-manager [ryu-manager options] APP...

Used by the profile section (bench/sec_profile.py) to profile the real app under the
stock ryu-manager while the OpenFlow switch emulator drives it.
"""
import cProfile
import os
import signal
import sys

out = sys.argv[1]
sys.argv = ["ryu-manager"] + sys.argv[3:]
prof = cProfile.Profile()


def _stop(*_):
    prof.disable()
    prof.dump_stats(out)
    os._exit(0)


signal.signal(signal.SIGTERM, _stop)
signal.signal(signal.SIGUSR1, lambda *_: prof.enable())  # start-up and connection set-up excluded
from ryu.cmd.manager import main  # noqa: E402

main()
_stop()
