"""100,000 random and mutated IGMP/MLD frames through the parser AND the state machine AND
the controller core (the whole punt path): nothing raises, every frame is either state or a
counted drop, and the membership/forwarding invariants hold at the end."""
from __future__ import annotations

import random

from mcast_sdn import topofile
from mcast_sdn.config import MembershipConfig
from mcast_sdn.core import Core, CoreConfig
from mcast_sdn.fakedp import connect
from mcast_sdn.messages import Drop, Parsed
from mcast_sdn.ofmodel import COOKIE_PUNT, diff
from mcast_sdn.packets import parse_frame

from .test_packets_fuzz import fix_checksums, mutate, seed_frames

N = 100_000


def test_mutated_frames_through_parser_state_machine_and_core():
    rng = random.Random(20261125)
    seeds = seed_frames()
    spec = topofile.linear(2, hosts_per_switch=2)
    core = Core(CoreConfig(settle=0.0, punt_per_second=1e9, punt_per_port_per_second=1e9),
                MembershipConfig(max_groups_per_port=64, max_sources_per_group=16))
    connect(core, spec)
    core.tick(0.1)
    host_ports = [(spec.dpid(h.switch), h.port) for h in spec.hosts]
    parsed = dropped = 0
    now = 1.0
    for i in range(N):
        frame = mutate(rng, rng.choice(seeds), seeds)
        if rng.random() < 0.5:
            try:
                frame = fix_checksums(frame)
            except Exception:
                pass
        res = parse_frame(frame)
        assert isinstance(res, (Parsed, Drop))
        if isinstance(res, Parsed):
            parsed += 1
        else:
            dropped += 1
        d, p = host_ports[i % len(host_ports)]
        core.packet_in(now, d, p, COOKIE_PUNT, frame)
        if i % 997 == 0:
            now += rng.choice((0.01, 0.5, 3.0, 30.0))
            core.tick(now)
    core.tick(now + 1000.0)
    counters = core.members.counters()
    assert parsed > 5_000 and dropped > 5_000, (parsed, dropped)
    # every frame the parser refused is counted: by the core (runts) or the membership drops
    assert core.counters["drop_runt"] + sum(v for k, v in counters.items() if k.startswith("drop.")) >= dropped
    # state invariants: limits respected, every group's interest consistent, switches converged
    for (d, p) in core.members.ports():
        assert len(core.members.interest(d, p)) <= 64
        for g, interest in core.members.interest(d, p).items():
            assert len(interest.sources) <= 16
    for d, inst in core.installed.items():
        assert diff(core.desired(now + 1000.0, d), inst) == []
    print(f"\n{N} frames: {parsed} parsed, {dropped} dropped by the parser; membership drops "
          f"{ {k: v for k, v in counters.items() if k.startswith('drop.')} }")
