"""Parse `ovs-ofctl -O OpenFlow13 dump-flows/dump-groups` text into `ofmodel` entries.

Why: tests (and operators) can then run the fake data plane on what a real Open vSwitch
actually holds, and compare it with what the controller believes it installed. It
covers the match fields and actions mcast-sdn uses; anything else is kept as an
unknown field so a comparison fails loudly rather than silently.
"""
from __future__ import annotations

import ipaddress
import re
import subprocess

from mcast_sdn.ofmodel import FlowEntry, GroupEntry, Output, SwitchState, ToController, ToGroup

_PROTO_WORDS = {
    "ip": {"eth_type": 0x0800},
    "ipv6": {"eth_type": 0x86DD},
    "arp": {"eth_type": 0x0806},
    "icmp": {"eth_type": 0x0800, "ip_proto": 1},
    "icmp6": {"eth_type": 0x86DD, "ip_proto": 58},
    "udp": {"eth_type": 0x0800, "ip_proto": 17},
    "tcp": {"eth_type": 0x0800, "ip_proto": 6},
}
_FIELD = {
    "in_port": "in_port",
    "dl_src": "eth_src",
    "dl_dst": "eth_dst",
    "dl_type": "eth_type",
    "nw_src": "ipv4_src",
    "nw_dst": "ipv4_dst",
    "nw_proto": "ip_proto",
    "ipv6_src": "ipv6_src",
    "ipv6_dst": "ipv6_dst",
    "icmp_type": "icmpv6_type",
    "icmpv6_type": "icmpv6_type",
}
_OFPP = {"CONTROLLER": 0xFFFFFFFD, "LOCAL": 0xFFFFFFFE, "IN_PORT": 0xFFFFFFF8, "TABLE": 0xFFFFFFF9}


def _value(field: str, text: str):
    if field in ("ipv4_src", "ipv4_dst", "ipv6_src", "ipv6_dst"):
        if "/" in text:
            net = ipaddress.ip_network(text, strict=False)
            return (str(net.network_address), str(net.netmask))
        return str(ipaddress.ip_address(text))
    if field in ("eth_src", "eth_dst"):
        if "/" in text:
            v, m = text.split("/")
            return (v.lower(), m.lower())
        return text.lower()
    return int(text, 0)


def _split_top(text: str) -> list[str]:
    """Split on commas that are not inside parentheses."""
    out, depth, cur = [], 0, ""
    for ch in text:
        if ch == "(":
            depth += 1
        elif ch == ")":
            depth -= 1
        if ch == "," and depth == 0:
            out.append(cur)
            cur = ""
        else:
            cur += ch
    if cur:
        out.append(cur)
    return [x.strip() for x in out if x.strip()]


def _actions(text: str):
    acts, goto, meter = [], None, None
    for a in _split_top(text):
        if a == "drop":
            continue
        if a.startswith("output:"):
            acts.append(Output(int(a.split(":", 1)[1])))
        elif a.startswith("CONTROLLER:"):
            acts.append(ToController(int(a.split(":", 1)[1])))
        elif a.startswith("group:"):
            acts.append(ToGroup(int(a.split(":", 1)[1])))
        elif a.startswith("goto_table:"):
            goto = int(a.split(":", 1)[1])
        elif a.startswith("meter:"):
            meter = int(a.split(":", 1)[1])
        elif a.isdigit():
            acts.append(Output(int(a)))
        elif a in _OFPP:
            acts.append(Output(_OFPP[a]))
        else:
            acts.append(("unknown", a))
    return tuple(acts), goto, meter


def parse_flows(text: str) -> list[FlowEntry]:
    flows = []
    for line in text.splitlines():
        line = line.strip()
        if not line or line.startswith("OFPST") or " actions=" not in line:
            continue
        head, acts = line.split(" actions=", 1)
        fields: dict = {}
        table, priority, cookie, hard, idle = 0, 32768, 0, 0, 0
        for part in _split_top(head):
            if "=" not in part:
                if part in _PROTO_WORDS:
                    fields.update(_PROTO_WORDS[part])
                continue
            k, v = part.split("=", 1)
            if k == "table":
                table = int(v)
            elif k == "priority":
                priority = int(v)
            elif k == "cookie":
                cookie = int(v, 0)
            elif k == "hard_timeout":
                hard = int(v)
            elif k == "idle_timeout":
                idle = int(v)
            elif k in ("duration", "n_packets", "n_bytes", "idle_age", "hard_age", "reset_counts", "send_flow_rem"):
                continue
            elif k in _FIELD:
                fields[_FIELD[k]] = _value(_FIELD[k], v)
            else:
                fields[k] = v
        actions, goto, meter = _actions(acts)
        flows.append(FlowEntry(table, priority, tuple(sorted(fields.items())), actions, goto, cookie, idle, hard, meter))
    return flows


def parse_groups(text: str) -> list[GroupEntry]:
    groups = []
    for line in text.splitlines():
        line = line.strip()
        m = re.match(r"group_id=(\d+),type=(\w+)(.*)", line)
        if not m:
            continue
        buckets = []
        for b in m.group(3).split(",bucket=")[1:] if ",bucket=" in m.group(3) else []:
            b = b.replace("actions=", "")
            acts, _, _ = _actions(b)
            buckets.append(acts)
        groups.append(GroupEntry(int(m.group(1)), tuple(buckets), m.group(2)))
    return groups


def dump_switch(bridge: str) -> SwitchState:
    """What an OVS bridge holds now (all flows, all groups), as model entries."""
    f = subprocess.run(["ovs-ofctl", "-O", "OpenFlow13", "dump-flows", bridge], capture_output=True, text=True, check=True).stdout
    g = subprocess.run(["ovs-ofctl", "-O", "OpenFlow13", "dump-groups", bridge], capture_output=True, text=True, check=True).stdout
    flows = parse_flows(f)
    return SwitchState({fl.key: fl for fl in flows}, {gr.group_id: gr for gr in parse_groups(g)})
