"""Transient-safety checker: walk live packets through every intermediate state of an `Out`.

Why: end states can be right while the moments in between lose or duplicate packets
(a switch that receives a stream before its entry exists, a switch that accepts it on
two ports). The adapter sends an `Out` stage by stage and waits for barriers between
stages, but inside a stage the switches apply their lists in any relative order, and
each switch applies its list one message at a time (a `Bundle` at once). This module
replays exactly that on the fake data plane and checks every state it can reach.

Rules, per live source S (walked from its first hop), at every intermediate state:

* nobody gets two copies, no link carries two copies (no loop);
* nobody outside old-members ∪ new-members gets a copy;
* every member that gets S both before and after the change gets its copy;
* a source that was not forwarded before (new: its packets went to the controller at
  the first hop) is either still punted there, or delivered to all its new members:
  never to some of them (the controller re-injects what it was sent once the tree is
  confirmed, so a punted packet is not lost; one forwarded into a half tree is).

"Before" and "after" are walked on the links as they are after the event (a link that
went down carries nothing in either).
"""
from __future__ import annotations

import random
from dataclasses import dataclass

from mcast_sdn.fakedp import FakeNetwork
from mcast_sdn.ofmodel import TABLE_MCAST, Barrier, PacketOut, SwitchState, apply


@dataclass(frozen=True)
class LiveSource:
    name: str
    dpid: int
    port: int
    pkt: dict  # fake data plane packet fields


@dataclass
class Expect:
    old: set
    new: set
    held_before: bool  # punted at the first hop before the change (a new source)


def _steps(changes) -> list:
    """One switch's list as the steps it is applied in (a Bundle is one step)."""
    return [c for c in changes if not isinstance(c, (Barrier, PacketOut))]


class Checker:
    def __init__(self, links: dict, host_ports: set, sources: list[LiveSource], required: dict | None = None) -> None:
        self.links = links
        self.host_ports = host_ports
        self.sources = sources
        # source name -> ports that must get it at every state, whatever the end state says
        # (a scenario whose membership does not change: a wrong end state is a loss too)
        self.required = required or {}
        self.states_checked = 0

    def _walk(self, tables, s: LiveSource):
        net = FakeNetwork(tables, self.links, max_hops=5000)
        try:
            res = net.inject(s.dpid, s.port, s.pkt)
        except RuntimeError:
            return None
        return res

    def _delivered(self, res) -> dict:
        return {p: c for p, c in res.delivered.items() if p in self.host_ports}

    def expectations(self, before: dict, after: dict) -> dict[str, Expect]:
        exp = {}
        for s in self.sources:
            ro, rn = self._walk(before, s), self._walk(after, s)
            old = set(self._delivered(ro)) if ro is not None else set()
            new = set(self._delivered(rn)) if rn is not None else set()
            held = ro is not None and not old and any(d == s.dpid and t == TABLE_MCAST for d, _p, t in ro.to_controller)
            exp[s.name] = Expect(old, new, held)
        return exp

    def violations(self, tables: dict, exp: dict[str, Expect]) -> list[str]:
        self.states_checked += 1
        bad = []
        for s in self.sources:
            e = exp[s.name]
            res = self._walk(tables, s)
            if res is None:
                bad.append(f"{s.name}: packet loops")
                continue
            got = self._delivered(res)
            dup = {p: c for p, c in got.items() if c > 1}
            if dup:
                bad.append(f"{s.name}: duplicates at {sorted(dup.items())}")
            if res.tagged:
                bad.append(f"{s.name}: version tag delivered to hosts {sorted(res.tagged)}")
            twice = {p: c for p, c in res.link_copies.items() if c > 1}
            if twice:
                bad.append(f"{s.name}: links carried two copies {sorted(twice.items())}")
            leak = set(got) - e.old - e.new
            if leak:
                bad.append(f"{s.name}: delivered to non-members {sorted(leak)}")
            if e.held_before:
                punted = any(d == s.dpid and t == TABLE_MCAST for d, _p, t in res.to_controller)
                if not (punted and not got) and set(got) != e.new:
                    bad.append(f"{s.name}: new source forwarded into a partial tree: got {sorted(got)}, members {sorted(e.new)}")
            else:
                lost = ((e.old & e.new) | self.required.get(s.name, set())) - set(got)
                if lost:
                    bad.append(f"{s.name}: lost at unaffected members {sorted(lost)}")
        return bad

    def check(self, before: dict[int, SwitchState], out, orders: int = 8, seed: int = 0, stop_at_first: bool = True) -> list[str]:
        """Apply `out` to copies of `before` in `orders` interleavings per stage (plus
        switch-sorted and reverse-sorted), checking every intermediate state."""
        rnd = random.Random(seed)
        after = {d: st.copy() for d, st in before.items()}
        stages = out.stages()
        for st in stages:
            for d, ch in st.items():
                if d in after:
                    apply(after[d], _steps(ch))
        exp = self.expectations(before, after)
        problems: list[str] = []
        cur = {d: st.copy() for d, st in before.items()}
        for si, stage in enumerate(stages):
            steps = {d: _steps(ch) for d, ch in stage.items() if d in cur}
            seq = [d for d in sorted(steps) for _ in steps[d]]
            variants = [seq, [d for d in sorted(steps, reverse=True) for _ in steps[d]]]
            for _ in range(orders):
                v = list(seq)
                rnd.shuffle(v)
                variants.append(v)
            for vi, order in enumerate(variants):
                tables = {d: st.copy() for d, st in cur.items()}
                pos = dict.fromkeys(steps, 0)
                for i, d in enumerate(order):
                    c = steps[d][pos[d]]
                    pos[d] += 1
                    apply(tables[d], [c])
                    for b in self.violations(tables, exp):
                        problems.append(f"stage {si}, order {vi}, step {i} (switch {d}: {type(c).__name__}): {b}")
                        if stop_at_first:
                            return problems
            for d, ch in steps.items():
                apply(cur[d], ch)
        return problems
