"""Transient safety end to end: while several sources stream to one ASM group, the
controller changes its trees (a link fails and returns, the tree mode is changed by
REST, a new source appears) and no member that keeps a path loses or duplicates a
single datagram of any source.

Ring of 4 switches, two hosts each (h1sN, h2sN on sN). Sources h1s1 and h1s2 stream to
GROUP; members h1s3 and h1s4 joined before the streams start. Mid-stream, in order,
each step waited on a condition with a deadline:

1. a link on a source's tree goes down (Mininet link down); the controller reroutes
   (REST trees without the link); the link comes back and is rediscovered;
2. the tree policy of the group's range is set by REST to "shared", then to "steiner";
3. a third source, h2s4, starts streaming to the group (counted from its seq 0).

Exact accounting from the receivers' records (traffic.summarize against the senders'
`sent` records): every (member, source) pair gets every datagram once, except that a
pair whose tree path crossed the failed link may lose the datagrams sent between the
failure and the reroute (its loss is printed; outside that window it must be complete
too). Duplicates are never allowed. Every missing run is attributed to the event during
which its datagrams were sent (from the sender's fixed schedule), and printed.
"""
from __future__ import annotations

import time
from collections import Counter

from mcast_sdn import topofile, traffic
from mcast_sdn.mnet import wait_until

from .itutil import wait_topology
from .test_delivery import Stream, wait_members

GROUP = "239.31.0.1"
PREFIX = "239.31.0.0/16"
TOKEN = "transient-test-token-0123456789"
RATE = 200.0  # datagrams/s per source
MAX_STREAM_S = 45.0  # hard bound of the long streams (they are stopped after the last event)
THIRD_COUNT = 600  # 3 s at RATE
SLACK_AFTER_REROUTE = 1.0  # s after REST shows the new tree, for entries to reach the datapath


def _ip(h) -> str:
    return h.ip.split("/")[0]


def _view(ctl) -> dict | None:
    return next((g for g in ctl.get("/mcast/v1/groups")["groups"] if g["group"] == GROUP), None)


def _path_links(edges: list[dict], root: int, dst: int) -> set[frozenset] | None:
    """The switch links (as {dpid, dpid}) on the tree path root -> dst, None if dst is off the tree."""
    parent = {e["to"][0]: e["from"][0] for e in edges}
    if dst == root:
        return set()
    if dst not in parent:
        return None
    links, node, hops = set(), dst, 0
    while node != root:
        if node not in parent or hops > 64:
            return None
        links.add(frozenset((parent[node], node)))
        node, hops = parent[node], hops + 1
    return links


def _rx_counts(st: Stream, members) -> dict[tuple[str, str], int]:
    out: dict[tuple[str, str], int] = {}
    for h in members:
        for r in traffic.collect(st.recv[h.name][1]):
            if r.get("event") == "rx":
                k = (h.name, r.get("src"))
                out[k] = out.get(k, 0) + 1
    return out


def _wait_flowing(st: Stream, members, sources, n: int, what: str, stalled: dict, timeout: float = 5.0) -> bool:
    """Until every member has n more datagrams of every source than now (the streams flow).

    Pairs that stop flowing are not waited for again: they go into `stalled`
    ({(member, source): what}) and the test goes on, so the accounting at the end shows
    everything that went wrong, not only the first stall."""
    base = _rx_counts(st, members)
    pairs = [(h.name, _ip(s)) for h in members for s in sources if (h.name, _ip(s)) not in stalled]
    late: list = []

    def ok():
        c = _rx_counts(st, members)
        late[:] = [k for k in pairs if c.get(k, 0) < base.get(k, 0) + n]
        return not late

    try:
        wait_until(ok, timeout, interval=0.2, what=what)
        return True
    except TimeoutError:
        for k in late:
            stalled[k] = what
        print(f"  STALL: {what}: no {n} more datagrams within {timeout}s for {late}")
        return False


def _runs(seqs: list[int]) -> list[tuple[int, int]]:
    out: list[tuple[int, int]] = []
    for s in seqs:
        if out and s == out[-1][1] + 1:
            out[-1] = (out[-1][0], s)
        else:
            out.append((s, s))
    return out


def test_multi_source_stream_survives_link_flap_mode_change_and_new_source(controller, network, tmp_path):
    spec = topofile.ring(4, hosts_per_switch=2)
    hosts = {h.name: h for h in spec.hosts}
    ctl = controller({"rest": {"token": TOKEN}})
    auth = {"Authorization": f"Bearer {TOKEN}", "Content-Type": "application/json"}
    net = network(spec, ctl)
    wait_topology(ctl, spec, timeout=40)
    st = Stream(net, tmp_path)
    try:
        _run_scenario(ctl, auth, spec, hosts, st)
    finally:
        st.stop()


def _run_scenario(ctl, auth, spec, hosts, st: Stream) -> None:
    s1, s2, s3 = hosts["h1s1"], hosts["h1s2"], hosts["h2s4"]
    members = [hosts["h1s3"], hosts["h1s4"]]
    member_sw = {h.name: spec.dpid(h.switch) for h in members}
    net = st.net
    for h in members:
        st.receiver(h.name, [GROUP], duration=MAX_STREAM_S + 30)
    st.wait_ready()
    wait_members(ctl, GROUP, {(spec.dpid(h.switch), h.port) for h in members})

    events: list[dict] = []  # name, t0 (before the action), t1 (condition met or deadline); time.time()
    stalled: dict = {}  # (member, source) -> the wait at which it stopped flowing
    failed_waits: list[str] = []

    def event(name: str, action, done, timeout: float):
        e = {"name": name, "t0": time.time()}
        events.append(e)
        action()
        try:
            res = wait_until(done, timeout, interval=0.05, what=name)
        except TimeoutError as exc:
            res = None
            failed_waits.append(str(exc))
            print(f"  FAILED WAIT: {exc}")
        e["t1"] = time.time()
        print(f"  event {name}: {e['t1'] - e['t0']:.3f}s")
        return res

    long_count = int(RATE * MAX_STREAM_S)
    two = [s1, s2]
    t_streams = time.time()
    start = {"name": f"sources {s1.name}, {s2.name} start", "t0": t_streams}
    events.append(start)
    st.sender(s1.name, GROUP, count=long_count, rate=RATE, stream=1, max_seconds=MAX_STREAM_S + 5)
    st.sender(s2.name, GROUP, count=long_count, rate=RATE, stream=2, max_seconds=MAX_STREAM_S + 5)
    assert _wait_flowing(st, members, two, int(RATE), "both streams at both members", stalled, timeout=10), stalled
    start["t1"] = time.time()
    wait_until(lambda: (v := _view(ctl)) and all(_path_links(v["trees"].get(_ip(s), []), spec.dpid(s.switch), d) is not None
                                                 for s in two for d in member_sw.values()),
               5, what="both source trees reach both members")

    # ---- (1) a tree link fails, the controller reroutes; the link returns
    trees = _view(ctl)["trees"]
    paths = {(h.name, _ip(s)): _path_links(trees[_ip(s)], spec.dpid(s.switch), member_sw[h.name]) for h in members for s in two}
    candidates = sorted({l for p in paths.values() for l in p}, key=lambda l: sorted(l))
    # the link that cuts the fewest (member, source) pairs: the rest must not notice a thing
    link = min(candidates, key=lambda l: (sum(l in p for p in paths.values()), sorted(l)))
    affected = {k for k, p in paths.items() if link in p}
    a, b = (f"s{d}" for d in sorted(link))
    print(f"\ntrees before the failure: {trees}\nfailing link {a}-{b}; pairs whose path crossed it: {sorted(affected)}")

    def rerouted():
        v = _view(ctl)
        if not v:
            return False
        for s in two:
            edges = v["trees"].get(_ip(s), [])
            if any(frozenset((e["from"][0], e["to"][0])) == link for e in edges):
                return False
            if any(_path_links(edges, spec.dpid(s.switch), d) is None for d in member_sw.values()):
                return False
        return v

    def link_known():
        return any(frozenset((l["a"][0], l["b"][0])) == link for l in ctl.get("/mcast/v1/topology")["links"])

    v = event(f"link {a}-{b} down", lambda: net.net.configLinkStatus(a, b, "down"), rerouted, 10)
    down = events[-1]
    print(f"  rerouted trees: {v and v['trees']}")
    _wait_flowing(st, members, two, int(RATE * 1.5), "streams after the reroute", stalled)
    event(f"link {a}-{b} up", lambda: net.net.configLinkStatus(a, b, "up"), link_known, 20)
    _wait_flowing(st, members, two, int(RATE * 1.5), "streams after the link returned", stalled)
    print(f"  trees after the link returned: {(_view(ctl) or {}).get('trees')}")

    # ---- (2) tree mode by REST: shared, then steiner
    for mode in ("shared", "steiner"):
        body = {"policies": [{"prefix": PREFIX, "mode": mode}]}

        def put(body=body):
            code, resp = ctl.request("PUT", "/mcast/v1/policy/trees", body, headers=auth)
            assert code == 200, f"PUT tree policy {body}: {code} {resp}"

        def in_mode(mode=mode):
            v = _view(ctl)
            return v and v["mode"] == mode and v["trees"] and v

        v = event(f"mode {mode}", put, in_mode, 10)
        print(f"  {mode}: root {v and v['root']}, trees {v and v['trees']}")
        _wait_flowing(st, members, two, int(RATE * 1.5), f"streams in {mode} mode", stalled)

    # ---- (3) a third source appears
    three = [s1, s2, s3]

    def third_known():
        v = _view(ctl)
        return v and any(s["address"] == _ip(s3) for s in v["sources"]) and v

    p3 = None

    def start_third():
        nonlocal p3
        p3 = st.sender(s3.name, GROUP, count=THIRD_COUNT, rate=RATE, stream=3, max_seconds=THIRD_COUNT / RATE + 10)

    v = event(f"source {s3.name} starts", start_third, third_known, 10)
    print(f"  with the third source: trees {v and v['trees']}")
    c = ctl.get("/mcast/v1/counters")["counters"]
    print("  controller: " + ", ".join(f"{k} {c.get(k, 0)}" for k in (
        "core.tree_moves_versioned", "core.bundle_sent", "core.bundle_error", "core.barrier_timeout", "core.source_packet_buffered")))
    p3.wait(timeout=THIRD_COUNT / RATE + 15)
    _wait_flowing(st, members, two, int(RATE / 2), "streams after the third source", stalled)
    for key in (f"{s1.name}/{GROUP}", f"{s2.name}/{GROUP}"):
        traffic.stop(st.send[key][0])
    t_end = time.time()

    # ---- accounting
    sent = {r["src"]: r for _, out in st.send.values() for r in traffic.collect(out) if r.get("event") == "sent"}
    assert set(sent) == {_ip(s) for s in three}, f"sender summaries: {sent}"
    for src, r in sent.items():
        assert r["errors"] == 0, f"sender {src} had send errors: {r}"
    res: dict = {}

    def complete():
        nonlocal res
        res = st.results()
        return all(res[h.name].get((GROUP, _ip(s)), {}).get("unique", 0) >= sent[_ip(s)]["count"] for h in members for s in three)

    try:
        wait_until(complete, 5, interval=0.3, what="receivers to drain")
    except TimeoutError:
        pass  # accounted below

    def sent_at(src: str, seq: int) -> float:  # the sender's fixed schedule: seq k at t_first + k/rate
        r = sent[src]
        return r["t_first"] + (seq - r["first_seq"]) / r["rate"]

    def cause(t: float) -> str:
        for e in reversed(events):
            if e["t0"] - 0.2 <= t <= e["t1"] + SLACK_AFTER_REROUTE + 1.0:
                return e["name"]
        return "no event (steady state)"

    print(f"\nstreams from t=0 ({t_streams:.3f}); events (s from stream start):")
    for e in events:
        print(f"  {e['name']:<28} {e['t0'] - t_streams:7.3f} .. {e['t1'] - t_streams:7.3f}")
    print(f"  senders stopped at {t_end - t_streams:.3f}; sent: "
          + ", ".join(f"{src} {r['count']} (seq {r['first_seq']}..{r['last_seq']})" for src, r in sorted(sent.items())))
    window = (down["t0"] - 0.05, down["t1"] + SLACK_AFTER_REROUTE)
    problems = []
    records = {h.name: traffic.collect(st.recv[h.name][1]) for h in members}
    print(f"{'member':<7} {'source':<10} {'sent':>5} {'unique':>6} {'dup':>4} {'miss':>5}  losses (seq range @ s from stream start -> event)")
    for h in members:
        for s in three:
            src = _ip(s)
            r = res[h.name].get((GROUP, src), {"unique": 0, "duplicates": 0, "missing": sent[src]["count"],
                                               "missing_seqs": list(range(sent[src]["first_seq"], sent[src]["last_seq"] + 1))})
            runs = _runs(r["missing_seqs"])
            desc = "; ".join(f"{lo}..{hi} ({hi - lo + 1}) sent {sent_at(src, lo) - t_streams:.2f}..{sent_at(src, hi) - t_streams:.2f}s -> {cause(sent_at(src, lo))}"
                             for lo, hi in runs)
            tag = " [path crossed the failed link]" if (h.name, src) in affected else ""
            print(f"{h.name:<7} {src:<10} {sent[src]['count']:>5} {r['unique']:>6} {r['duplicates']:>4} {r['missing']:>5}  {desc}{tag}")
            if r["duplicates"]:
                copies = Counter(q["seq"] for q in records[h.name] if q.get("event") == "rx" and q.get("src") == src)
                dups = sorted(q for q, n in copies.items() if n > 1)
                print(f"{'':<18} duplicated seqs: " + "; ".join(
                    f"{lo}..{hi} sent {sent_at(src, lo) - t_streams:.2f}s -> {cause(sent_at(src, lo))}" for lo, hi in _runs(dups)))
                problems.append(f"{h.name} got {r['duplicates']} duplicates from {src}: seqs {_runs(dups)}")
            if (h.name, src) in affected:
                outside = [q for q in r["missing_seqs"] if not window[0] <= sent_at(src, q) <= window[1]]
                if outside:
                    problems.append(f"{h.name} lost {len(outside)} of {src} outside the link failure's outage: "
                                    f"{_runs(outside)}")
            elif r["missing"]:
                problems.append(f"{h.name} lost {r['missing']} of {src} although it kept a path: {runs}")
    if stalled:
        print(f"stalls (pair -> the wait at which it stopped flowing): {stalled}")
    problems += failed_waits
    assert not problems, "\n".join(problems)
