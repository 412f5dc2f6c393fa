"""A small OpenFlow 1.3 switch emulator speaking TCP, for control-plane benchmarks.

Each emulated switch is one TCP connection to the controller. It answers what Ryu
needs to bring a switch up (HELLO, FEATURES_REPLY, PORT_DESC multipart reply,
GET_CONFIG_REPLY, ECHO and BARRIER replies), generates PACKET_INs on request (IGMP
reports, first multicast packets of a source), and counts and timestamps every
FLOW_MOD / GROUP_MOD / PACKET_OUT it receives. LLDP PACKET_OUTs on a port that the
emulated topology links to another emulated switch come back as a PACKET_IN at the
peer, so Ryu's link discovery sees the links. Nothing is forwarded otherwise: there
is no data plane, only the control channel (which is what is measured).

Clock: ``time.perf_counter()`` in this process, for both the PacketIn send time and
the FlowMod receive time, so latencies need no clock sync.
"""
from __future__ import annotations

import socket
import struct
import threading
import time

OFP_VERSION = 4
HELLO, ERROR, ECHO_REQUEST, ECHO_REPLY = 0, 1, 2, 3
FEATURES_REQUEST, FEATURES_REPLY = 5, 6
GET_CONFIG_REQUEST, GET_CONFIG_REPLY, SET_CONFIG = 7, 8, 9
PACKET_IN, FLOW_REMOVED, PORT_STATUS, PACKET_OUT, FLOW_MOD, GROUP_MOD = 10, 11, 12, 13, 14, 15
MULTIPART_REQUEST, MULTIPART_REPLY = 18, 19
BARRIER_REQUEST, BARRIER_REPLY = 20, 21
ROLE_REQUEST, ROLE_REPLY = 24, 25
EXPERIMENTER = 4
ONF_EXPERIMENTER_ID = 0x4F4E4600
ONF_ET_BUNDLE_CONTROL, ONF_ET_BUNDLE_ADD = 2300, 2301
MP_DESC, MP_PORT_DESC = 0, 13
OFPP_CONTROLLER = 0xFFFFFFFD
OFPP_FLOOD = 0xFFFFFFFB
OFPP_ALL = 0xFFFFFFFC
OFP_NO_BUFFER = 0xFFFFFFFF
HDR = struct.Struct("!BBHI")


def _port_desc(port_no: int, dpid: int) -> bytes:
    mac = struct.pack("!HI", dpid & 0xFFFF, port_no)  # unique per switch and port
    name = f"e{dpid}-{port_no}".encode()[:15]
    # port_no, pad4, hw_addr, pad2, name[16], config, state, curr, advertised, supported, peer, curr_speed, max_speed
    return struct.pack("!I4x6s2x16sIIIIIIII", port_no, mac, name, 0, 4, 0x2000, 0, 0, 0, 10_000_000, 10_000_000)


def _packet_in(xid: int, cookie: int, in_port: int, data: bytes, table_id: int = 0, reason: int = 1) -> bytes:
    oxm = struct.pack("!HBBI", 0x8000, 0 << 1, 4, in_port)  # OXM_OF_IN_PORT
    match = struct.pack("!HH", 1, 4 + len(oxm)) + oxm
    match += b"\x00" * ((8 - len(match) % 8) % 8)
    body = struct.pack("!IHBBQ", OFP_NO_BUFFER, len(data), reason, table_id, cookie) + match + b"\x00\x00" + data
    return HDR.pack(OFP_VERSION, PACKET_IN, HDR.size + len(body), xid) + body


class EmuSwitch:
    def __init__(self, net: "EmuNet", dpid: int, ports):
        self.net = net
        self.dpid = dpid
        self.ports = sorted(ports)
        self.sock: socket.socket | None = None
        self.lock = threading.Lock()
        self.xid = 1
        self.ready = threading.Event()  # controller in MAIN (saw a FLOW_MOD or a BARRIER after port desc)
        self.thread: threading.Thread | None = None
        self.closed = False

    # -- sending
    def send(self, data: bytes) -> None:
        with self.lock:
            if self.sock is not None and not self.closed:
                self.sock.sendall(data)

    def packet_in(self, in_port: int, data: bytes, cookie: int = 0, table_id: int = 0) -> float:
        with self.lock:
            self.xid += 1
            msg = _packet_in(self.xid, cookie, in_port, data, table_id)
            t = time.perf_counter()
            if self.sock is not None and not self.closed:
                self.sock.sendall(msg)
        return t

    # -- receiving
    def connect(self, host: str, port: int, timeout: float = 10.0) -> None:
        deadline = time.monotonic() + timeout
        while True:
            try:
                self.sock = socket.create_connection((host, port), timeout=2.0)
                break
            except OSError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.1)
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.sock.settimeout(None)
        self.send(HDR.pack(OFP_VERSION, HELLO, 8, 1))
        self.thread = threading.Thread(target=self._loop, name=f"emu-{self.dpid}", daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.closed = True
        try:
            if self.sock is not None:
                self.sock.shutdown(socket.SHUT_RDWR)
                self.sock.close()
        except OSError:
            pass

    def _recv_exact(self, n: int) -> bytes | None:
        buf = b""
        while len(buf) < n:
            try:
                chunk = self.sock.recv(n - len(buf))
            except OSError:
                return None
            if not chunk:
                return None
            buf += chunk
        return buf

    def _loop(self) -> None:
        while not self.closed:
            hdr = self._recv_exact(8)
            if hdr is None:
                break
            version, mtype, length, xid = HDR.unpack(hdr)
            body = self._recv_exact(length - 8) if length > 8 else b""
            if body is None:
                break
            now = time.perf_counter()
            try:
                self._handle(mtype, xid, body, now)
            except Exception as e:  # keep the emulator alive; count it
                self.net.count("emu_error:" + type(e).__name__, now)

    def _handle(self, mtype: int, xid: int, body: bytes, now: float) -> None:
        net = self.net
        if mtype == HELLO:
            return
        if mtype == ECHO_REQUEST:
            self.send(HDR.pack(OFP_VERSION, ECHO_REPLY, 8 + len(body), xid) + body)
        elif mtype == FEATURES_REQUEST:
            b = struct.pack("!QIBB2xII", self.dpid, 0, 254, 0, 0x4F, 0)
            self.send(HDR.pack(OFP_VERSION, FEATURES_REPLY, 8 + len(b), xid) + b)
        elif mtype == GET_CONFIG_REQUEST:
            self.send(HDR.pack(OFP_VERSION, GET_CONFIG_REPLY, 12, xid) + struct.pack("!HH", 0, 0xFFFF))
        elif mtype == MULTIPART_REQUEST:
            (mp_type,) = struct.unpack_from("!H", body, 0)
            if mp_type == MP_PORT_DESC:
                payload = b"".join(_port_desc(p, self.dpid) for p in self.ports)
            elif mp_type == MP_DESC:
                payload = struct.pack("!256s256s256s32s256s", b"mcast-sdn bench", b"ofemu", b"0.1", b"0", b"emu")
            else:
                payload = b""
            b = struct.pack("!HH4x", mp_type, 0) + payload
            self.send(HDR.pack(OFP_VERSION, MULTIPART_REPLY, 8 + len(b), xid) + b)
        elif mtype == BARRIER_REQUEST:
            self.send(HDR.pack(OFP_VERSION, BARRIER_REPLY, 8, xid))
            net.count("barrier", now)
        elif mtype == ROLE_REQUEST:
            self.send(HDR.pack(OFP_VERSION, ROLE_REPLY, 8 + len(body), xid) + body)
        elif mtype == FLOW_MOD:
            self.ready.set()
            net.mod("flow_mod", self.dpid, now)
        elif mtype == GROUP_MOD:
            net.mod("group_mod", self.dpid, now)
        elif mtype == PACKET_OUT:
            self._packet_out(body, now)
        elif mtype == SET_CONFIG:
            return
        elif mtype == EXPERIMENTER and len(body) >= 8:
            self._experimenter(xid, body, now)
        else:
            net.count(f"msg_{mtype}", now)

    def _experimenter(self, xid: int, body: bytes, now: float) -> None:
        """ONF bundles (OpenFlow 1.3 extension 230): OPEN/COMMIT answered, each bundled
        FlowMod/GroupMod counted like a plain one (applied at once, as OVS does on commit)."""
        exp_id, exp_type = struct.unpack_from("!II", body, 0)
        if exp_id != ONF_EXPERIMENTER_ID:
            self.net.count("msg_experimenter", now)
        elif exp_type == ONF_ET_BUNDLE_CONTROL and len(body) >= 16:
            bundle_id, ctype, flags = struct.unpack_from("!IHH", body, 8)
            reply = struct.pack("!IIIHH", exp_id, exp_type, bundle_id, ctype + 1, flags)
            self.send(HDR.pack(OFP_VERSION, EXPERIMENTER, 8 + len(reply), xid) + reply)
            self.net.count("bundle_ctrl", now)
        elif exp_type == ONF_ET_BUNDLE_ADD and len(body) >= 24:
            inner = body[16:24]
            _v, itype, _l, _x = HDR.unpack(inner)
            if itype == FLOW_MOD:
                self.ready.set()
                self.net.mod("flow_mod", self.dpid, now)
            elif itype == GROUP_MOD:
                self.net.mod("group_mod", self.dpid, now)

    def _packet_out(self, body: bytes, now: float) -> None:
        buffer_id, in_port, alen = struct.unpack_from("!IIH", body, 0)
        actions = body[16:16 + alen]
        data = body[16 + alen:]
        lldp = len(data) >= 14 and data[12:14] == b"\x88\xcc"
        self.net.count("packet_out_lldp" if lldp else "packet_out", now)
        if not lldp:
            return
        off = 0
        while off + 4 <= len(actions):
            atype, alen1 = struct.unpack_from("!HH", actions, off)
            if atype == 0 and alen1 >= 16:
                (port,) = struct.unpack_from("!I", actions, off + 4)
                peer = self.net.links.get((self.dpid, port))
                if peer is not None:
                    sw = self.net.switches[peer[0]]
                    sw.packet_in(peer[1], data, cookie=0xFFFFFFFFFFFFFFFF)
            off += max(alen1, 8)


class EmuNet:
    """Emulated switches (dpid -> ports) and links ((dpid, port) <-> (dpid, port))."""

    def __init__(self, switches: dict[int, list[int]], links=()):
        self.switches = {d: EmuSwitch(self, d, ps) for d, ps in switches.items()}
        self.links: dict[tuple[int, int], tuple[int, int]] = {}
        for a, b in links:
            self.links[a] = b
            self.links[b] = a
        self._lock = threading.Lock()
        self.counts: dict[str, int] = {}
        self.mods: list[tuple[float, str, int]] = []  # (time, kind, dpid)
        self.last_mod = 0.0
        self.responses = 0  # FlowMods + GroupMods + non-LLDP PacketOuts
        self.last_any = 0.0
        self.cond = threading.Condition(self._lock)

    def count(self, what: str, now: float) -> None:
        with self.cond:
            self.counts[what] = self.counts.get(what, 0) + 1
            if what == "packet_out":
                self.responses += 1
                self.last_any = now
                self.cond.notify_all()

    def wait_responses(self, n: int, timeout: float) -> bool:
        """Wait until at least n responses (FlowMods, GroupMods, non-LLDP PacketOuts) in total."""
        deadline = time.monotonic() + timeout
        with self.cond:
            while self.responses < n:
                left = deadline - time.monotonic()
                if left <= 0:
                    return False
                self.cond.wait(left)
        return True

    def settle(self, n_before: int, n_expected: int, quiet: float = 0.3, timeout: float = 20.0) -> None:
        """After sending n_expected PacketIns that each draw at least one response: wait for
        those responses, then for `quiet` seconds without any (phases must not overlap)."""
        self.wait_responses(n_before + n_expected, timeout)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with self._lock:
                last = self.last_any
            if time.perf_counter() - last >= quiet:
                return
            time.sleep(quiet / 4)

    def mod(self, kind: str, dpid: int, now: float) -> None:
        with self.cond:
            self.counts[kind] = self.counts.get(kind, 0) + 1
            self.mods.append((now, kind, dpid))
            self.last_mod = now
            self.responses += 1
            self.last_any = now
            self.cond.notify_all()

    def n_mods(self) -> int:
        with self._lock:
            return len(self.mods)

    def wait_mods(self, n: int, timeout: float) -> bool:
        """Wait until at least n mods were received in total."""
        deadline = time.monotonic() + timeout
        with self.cond:
            while len(self.mods) < n:
                left = deadline - time.monotonic()
                if left <= 0:
                    return False
                self.cond.wait(left)
        return True

    def wait_quiet(self, quiet: float, timeout: float) -> float:
        """Wait until no mod arrived for `quiet` seconds; returns the time of the last mod."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with self._lock:
                last = self.last_mod
            if time.perf_counter() - last >= quiet:
                return last
            time.sleep(min(quiet / 4, 0.05))
        return self.last_mod

    def connect(self, host: str, port: int) -> None:
        for sw in self.switches.values():
            sw.connect(host, port)

    def close(self) -> None:
        for sw in self.switches.values():
            sw.close()
