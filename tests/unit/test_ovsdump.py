"""ovs-ofctl dump parsing: text as printed by Open vSwitch 3.1 -> model entries."""
from mcast_sdn.ofmodel import Output, ToController, ToGroup
from mcast_sdn.ovsdump import parse_flows, parse_groups

FLOWS = """OFPST_FLOW reply (OF1.3) (xid=0x2):
 cookie=0x4d43010000000000, duration=5.2s, table=0, n_packets=0, n_bytes=0, priority=1000,ip,nw_proto=2 actions=CONTROLLER:65535
 cookie=0x4d43010000000000, duration=1.0s, table=0, n_packets=3, n_bytes=9, priority=1002,icmp6,in_port=1,icmp_type=143 actions=meter:1,CONTROLLER:65535
 priority=900,dl_dst=01:80:c2:00:00:00/ff:ff:ff:ff:ff:f0 actions=drop
 priority=200,in_port=3,dl_src=00:00:00:00:00:01 actions=goto_table:1
 table=1, priority=60,ipv6,ipv6_dst=ff02::/16 actions=goto_table:3
 table=1, priority=50,ip,nw_dst=224.0.0.0/4 actions=goto_table:2
 table=2, hard_timeout=10, priority=310,ip,in_port=1,nw_src=10.0.0.1,nw_dst=239.1.1.1 actions=drop
 table=2, priority=300,ipv6,in_port=1,ipv6_src=fc00::1,ipv6_dst=ff15::1 actions=group:3
 table=3, priority=10,in_port=2 actions=output:1,output:3
"""
GROUPS = """OFPST_GROUP_DESC reply (OF1.3) (xid=0x2):
 group_id=3,type=all,bucket=actions=output:1,bucket=actions=output:2
 group_id=4,type=all
"""


def test_flows_parse_into_model_entries():
    f = {(x.table, x.priority, x.match): x for x in parse_flows(FLOWS)}
    assert len(f) == 9
    igmp = f[(0, 1000, (("eth_type", 0x0800), ("ip_proto", 2)))]
    assert igmp.actions == (ToController(65535),) and igmp.cookie == 0x4D43010000000000
    mld = f[(0, 1002, (("eth_type", 0x86DD), ("icmpv6_type", 143), ("in_port", 1), ("ip_proto", 58)))]
    assert mld.meter == 1
    assert f[(0, 900, (("eth_dst", ("01:80:c2:00:00:00", "ff:ff:ff:ff:ff:f0")),))].actions == ()
    assert f[(0, 200, (("eth_src", "00:00:00:00:00:01"), ("in_port", 3)))].goto == 1
    assert f[(1, 60, (("eth_type", 0x86DD), ("ipv6_dst", ("ff02::", "ffff::"))))].goto == 3
    assert f[(1, 50, (("eth_type", 0x0800), ("ipv4_dst", ("224.0.0.0", "240.0.0.0"))))].goto == 2
    neg = f[(2, 310, (("eth_type", 0x0800), ("in_port", 1), ("ipv4_dst", "239.1.1.1"), ("ipv4_src", "10.0.0.1")))]
    assert neg.hard_timeout == 10 and neg.actions == ()
    assert f[(2, 300, (("eth_type", 0x86DD), ("in_port", 1), ("ipv6_dst", "ff15::1"), ("ipv6_src", "fc00::1")))].actions == (ToGroup(3),)
    assert f[(3, 10, (("in_port", 2),))].actions == (Output(1), Output(3))


def test_groups_parse():
    g = {x.group_id: x for x in parse_groups(GROUPS)}
    assert g[3].buckets == ((Output(1),), (Output(2),)) and g[3].type == "all"
    assert g[4].buckets == ()
