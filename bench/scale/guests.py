#!/usr/bin/env python3
"""Many guests at once, for bench/bridge-scale and scenario 58: each guest is
a hybrid-vsock socket of the bridge (one CID per socket, as a Firecracker or
Cloud Hypervisor host has one per VM), reached as its VMM would reach it.

hold PATTERN FIRST COUNT INTERVAL DURATION
    One connection per guest (CIDs FIRST .. FIRST+COUNT-1, socket
    PATTERN % cid), each an NFSv4.1 client of its own (EXCHANGE_ID,
    CREATE_SESSION as it opens), then a COMPOUND of SEQUENCE, PUTROOTFH
    and GETATTR at once and every INTERVAL seconds (staggered over the
    interval) for DURATION seconds: the trickle of an idle guest's NFS
    client (lease renewal and attribute checks), with a file handle
    presented, as a mounted guest's connection has. A
    connection the server or the bridge closes is not reopened: it is
    counted as lost. Prints "ramp ..." once every connection has had its
    first answer, a "progress ..." line a minute, and at the end one
    "hold ..." line (key value pairs) with calls, answers, errors, lost
    connections and round-trip times (median, 99th percentile, max, ms).

    nfsd's client ids: Linux's nfsd (6.1 at least) numbers new clients
    with an unsynchronized counter, so two EXCHANGE_IDs handled at the
    same moment on two CPUs can get the same client id; the second
    CREATE_SESSION then fails with NFS4ERR_CLID_INUSE (the record it finds
    is the other guest's, from another address) or replays the other
    guest's session. A guest told a client id another guest holds does
    its EXCHANGE_ID again before any CREATE_SESSION, and one whose
    CREATE_SESSION gets CLID_INUSE does too; the latter is an error unless
    its client id was given to another guest as well. Both are counted
    (clientid_duplicates, setup_retries), as are the NFS errors the guests
    were sent (nfs_error_replies: what the bridge's count should be).

flood PATTERN FIRST COUNT DURATION HELD
    Hostile guests: for DURATION seconds (or until SIGTERM) each guest (CIDs FIRST ..) opens
    connections as fast as one process can, keeps its newest HELD open
    and closes the older ones (each open one also gets an NFS NULL call).
    Prints one "flood ..." line: connections opened and how many the
    bridge closed at once (refused).

Exits 0 whatever it measured (the caller judges), 2 on bad usage.
"""
import errno
import heapq
import os
import resource
import selectors
import signal
import socket
import struct
import sys
import time

NFS_PROGRAM, NFS_V4, COMPOUND = 100003, 4, 1
OP_GETATTR, OP_PUTROOTFH, OP_EXCHANGE_ID, OP_CREATE_SESSION, OP_SEQUENCE = 9, 24, 42, 43, 53
BOOT = int(time.time())


def auth_sys():
    machine = b"scale-guest"
    body = struct.pack(">II", 0, len(machine)) + machine + b"\0" * (-len(machine) % 4)
    body += struct.pack(">III", 0, 0, 0)  # uid 0, gid 0, no groups
    return struct.pack(">II", 1, len(body)) + body


CRED = auth_sys()


def opaque(data):
    return struct.pack(">I", len(data)) + data + b"\0" * (-len(data) % 4)


def compound(xid, ops, count):
    """A record-marked NFSv4.1 COMPOUND call (AUTH_SYS, tag "")."""
    call = struct.pack(">IIIIII", xid, 0, 2, NFS_PROGRAM, NFS_V4, COMPOUND) + CRED + struct.pack(">II", 0, 0)
    call += struct.pack(">III", 0, 1, count) + ops
    return struct.pack(">I", 0x80000000 | len(call)) + call


def exchange_id(xid, cid):
    # client owner (boot verifier, owner id), no flags, SP4_NONE, no implementation id
    ops = struct.pack(">IQ", OP_EXCHANGE_ID, BOOT) + opaque(b"bridge-scale guest %d" % cid) + struct.pack(">III", 0, 0, 0)
    return compound(xid, ops, 1)


def channel(maxrequest, maxresponse, cached, operations, requests):
    return struct.pack(">IIIIIII", 0, maxrequest, maxresponse, cached, operations, requests, 0)


def create_session(xid, clientid, sequence):
    ops = struct.pack(">IQII", OP_CREATE_SESSION, clientid, sequence, 0)
    ops += channel(1048576, 1048576, 4096, 8, 1) + channel(4096, 4096, 0, 2, 1)
    ops += struct.pack(">III", 0x40000000, 1, 0)  # callback program, one AUTH_NONE
    return compound(xid, ops, 1)


def trickle(xid, sessionid, sequence):
    # SEQUENCE (slot 0; renews the lease), PUTROOTFH, GETATTR {type}
    ops = struct.pack(">I", OP_SEQUENCE) + sessionid + struct.pack(">IIII", sequence, 0, 0, 0)
    ops += struct.pack(">I", OP_PUTROOTFH) + struct.pack(">III", OP_GETATTR, 1, 1 << 1)
    return compound(xid, ops, 3)


def null_call(xid):
    call = struct.pack(">IIIIII", xid, 0, 2, NFS_PROGRAM, NFS_V4, 0) + struct.pack(">IIII", 0, 0, 0, 0)
    return struct.pack(">I", 0x80000000 | len(call)) + call


def reply_status(body):
    """(xid, why, first operation's result) of an RPC reply; why is None
    for an accepted call whose COMPOUND (if any) succeeded."""
    if len(body) < 24:
        return None, "short reply", b""
    xid, msg_type, reply_stat = struct.unpack(">III", body[:12])
    if msg_type != 1 or reply_stat != 0:
        return xid, "RPC denied", b""
    verifier_length = struct.unpack(">I", body[16:20])[0]
    offset = 20 + verifier_length + (-verifier_length % 4)
    accept_stat = struct.unpack(">I", body[offset:offset + 4])[0]
    if accept_stat != 0:
        return xid, "accept_stat %d" % accept_stat, b""
    rest = body[offset + 4:]
    if not rest:
        return xid, None, b""  # NULL
    status, tag_length = struct.unpack(">II", rest[:8])
    if status != 0:
        return xid, "NFS status %d" % status, b""
    rest = rest[8 + tag_length + (-tag_length % 4):]
    # resarray count, then the first result: its operation and status
    return xid, None, rest[12:]


def raise_nofile():
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))


def percentile(values, fraction):
    if not values:
        return 0.0
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))]


class Guest:
    def __init__(self, index, cid, sock):
        self.index, self.cid, self.sock = index, cid, sock
        self.buffer = b""
        self.sent_at = None
        self.xid = 0
        self.next = 0.0
        self.answered_once = False
        self.lost = None
        # NFSv4.1 session setup, then trickle calls
        self.stage = "exchange"
        self.clientid = 0
        self.sequence = 0
        self.sessionid = b""
        self.sent_at_copy = 0.0
        self.setup_retries = 0


def hold(pattern, first, count, interval, duration):
    raise_nofile()
    selector = selectors.DefaultSelector()
    guests, failures = [], 0
    start = time.monotonic()
    for index in range(count):
        cid = first + index
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            sock.connect(pattern % cid)
        except OSError as error:
            print("guest %d: connect: %s" % (cid, error), file=sys.stderr)
            sock.close()
            failures += 1
            continue
        sock.setblocking(False)
        guest = Guest(index, cid, sock)
        guests.append(guest)
        selector.register(sock, selectors.EVENT_READ, guest)
    opened = time.monotonic()
    calls = answers = errors = first_answers = setup_calls = 0
    rtts, ramp_done = [], False
    xid = 0x5ca1e000
    # The hold counts from the moment every guest has had its first answer
    # (the ramp takes a few seconds alone, a minute on a busy host).
    end = float("inf")
    next_progress, next_sweep = opened + 60, opened + 1
    pending_timeout = 60.0
    # (due time, index): the next call of each guest waiting for its turn.
    due = [(opened, guest.index) for guest in guests]
    heapq.heapify(due)
    by_index = {guest.index: guest for guest in guests}
    pending = {}  # index -> guest with a call in flight
    lost_count = 0
    # nfsd's client ids as the guests were told them: id -> guests' CIDs
    issued = {}
    duplicates = nfs_error_replies = 0
    clid_inuse = []  # (cid, client id) of CREATE_SESSIONs refused with CLID_INUSE
    MAX_SETUP_RETRIES = 3

    def again(guest, now, reason):
        """EXCHANGE_ID afresh, at once (nfsd replaces the unconfirmed
        record and its duplicated client id); False past the retries."""
        if guest.setup_retries >= MAX_SETUP_RETRIES:
            return False
        guest.setup_retries += 1
        print("guest %d: %s; EXCHANGE_ID again" % (guest.cid, reason), file=sys.stderr)
        guest.stage = "exchange"
        heapq.heappush(due, (now, guest.index))
        return True

    def lose(guest, now, why):
        nonlocal lost_count
        if guest.lost is None:
            lost_count += 1
            guest.lost = (now - opened, why)
            selector.unregister(guest.sock)
            guest.sock.close()
            pending.pop(guest.index, None)

    while True:
        now = time.monotonic()
        if now >= end and not pending:
            break
        while due and due[0][0] <= now and now < end:
            _, index = heapq.heappop(due)
            guest = by_index[index]
            if guest.lost is not None:
                continue
            xid += 1
            guest.xid = xid
            if guest.stage == "exchange":
                message = exchange_id(xid, guest.cid)
            elif guest.stage == "session":
                message = create_session(xid, guest.clientid, guest.sequence)
            else:
                message = trickle(xid, guest.sessionid, guest.sequence)
            try:
                guest.sock.sendall(message)
            except OSError as error:
                lose(guest, now, "send: %s" % error)
                continue
            guest.sent_at = guest.sent_at_copy = now
            pending[index] = guest
            if guest.stage == "ready":
                calls += 1
            else:
                setup_calls += 1
        if now >= next_sweep:
            for guest in [g for g in pending.values() if now - g.sent_at > pending_timeout]:
                errors += 1
                lose(guest, now, "no answer in %d s" % pending_timeout)
            next_sweep = now + 1
        if not ramp_done and first_answers + lost_count >= len(guests):
            ramp_done = True
            end = now + duration
            print("ramp: %d connections opened in %.1f s, all first calls answered after %.1f s" % (
                len(guests), opened - start, now - start), flush=True)
        if now >= next_progress:
            print("progress: t %.0f s calls %d answers %d errors %d lost %d rtt_p50_ms %.1f rtt_p99_ms %.1f" % (
                now - opened, calls, answers, errors, lost_count, 1000 * percentile(rtts, 0.5),
                1000 * percentile(rtts, 0.99)), flush=True)
            next_progress += 60
        wake = min(next_sweep, next_progress, end if now < end else now + 1)
        if due and now < end:
            wake = min(wake, due[0][0])
        for key, _ in selector.select(max(0.0, wake - now)):
            guest = key.data
            try:
                data = guest.sock.recv(65536)
            except OSError as error:
                if error.errno in (errno.EAGAIN, errno.EINTR):
                    continue
                lose(guest, time.monotonic(), "recv: %s" % error)
                continue
            if not data:
                lose(guest, time.monotonic(), "closed by the server side")
                continue
            guest.buffer += data
            while len(guest.buffer) >= 4:
                length = struct.unpack(">I", guest.buffer[:4])[0] & 0x7FFFFFFF
                if len(guest.buffer) < 4 + length:
                    break
                body, guest.buffer = guest.buffer[4:4 + length], guest.buffer[4 + length:]
                got, why, result = reply_status(body)
                arrived = time.monotonic()
                if got != guest.xid or guest.sent_at is None:
                    errors += 1
                    continue
                guest.sent_at = None
                pending.pop(guest.index, None)
                if why and why.startswith("NFS status "):
                    nfs_error_replies += 1
                if guest.stage == "session" and why == "NFS status 10017":
                    clid_inuse.append((guest.cid, guest.clientid))
                    if again(guest, arrived, "CREATE_SESSION with client id %#x: NFS4ERR_CLID_INUSE" % guest.clientid):
                        continue
                if guest.stage != "ready":
                    # Session setup: EXCHANGE_ID gives the client id and
                    # sequence, CREATE_SESSION the session id; next call at once.
                    if why or len(result) < 16:
                        errors += 1
                        lose(guest, arrived, "%s failed: %s (xid %#x, client id %#x)" % (
                            "EXCHANGE_ID" if guest.stage == "exchange" else "CREATE_SESSION", why or "short result",
                            got, guest.clientid))
                        continue
                    if guest.stage == "exchange":
                        guest.clientid, guest.sequence = struct.unpack(">QI", result[:12])
                        holders = issued.setdefault(guest.clientid, set())
                        others = holders - {guest.cid}
                        holders.add(guest.cid)
                        if others:
                            duplicates += 1
                            if again(guest, arrived, "the server gave client id %#x to guest %s too" % (
                                    guest.clientid, " and ".join(str(c) for c in sorted(others)))):
                                continue
                            errors += 1
                            lose(guest, arrived, "EXCHANGE_ID kept giving client ids other guests hold")
                            continue
                        guest.stage = "session"
                    else:
                        guest.sessionid, guest.sequence = result[:16], 1
                        guest.stage = "ready"
                    heapq.heappush(due, (arrived, guest.index))
                    continue
                guest.sequence += 1
                if why:
                    errors += 1
                    print("guest %d at %.1f s: %s (xid %#x, client id %#x, session %s, slot sequence %d)" % (
                        guest.cid, arrived - opened, why, got, guest.clientid, guest.sessionid.hex(), guest.sequence - 1),
                        file=sys.stderr)
                else:
                    answers += 1
                    rtts.append(arrived - guest.sent_at_copy)
                if not guest.answered_once:
                    guest.answered_once = True
                    first_answers += 1
                    # Later calls spread evenly over the interval.
                    guest.next = opened + interval * (1 + guest.index / max(1, len(guests)))
                else:
                    guest.next += interval
                heapq.heappush(due, (guest.next, guest.index))
    # A CLID_INUSE is the duplicated-id race only if the id went to
    # another guest too; otherwise it is an error.
    for cid, clientid in clid_inuse:
        if len(issued.get(clientid, ())) < 2:
            errors += 1
            print("guest %d: CLID_INUSE for client id %#x, which no other guest was given" % (cid, clientid), file=sys.stderr)
    lost = [g for g in guests if g.lost is not None]
    for guest in lost[:10]:
        print("lost: guest %d at %.0f s: %s" % (guest.cid, guest.lost[0], guest.lost[1]), file=sys.stderr)
    print("hold: guests %d connect_failures %d opened_s %.1f setup_calls %d calls %d answers %d errors %d lost %d rtt_p50_ms %.1f rtt_p99_ms %.1f rtt_max_ms %.1f held_s %.0f clientid_duplicates %d setup_retries %d nfs_error_replies %d" % (
        count, failures, opened - start, setup_calls, calls, answers, errors, len(lost), 1000 * percentile(rtts, 0.5),
        1000 * percentile(rtts, 0.99), 1000 * (max(rtts) if rtts else 0), time.monotonic() - opened,
        duplicates, sum(guest.setup_retries for guest in guests), nfs_error_replies), flush=True)
    for guest in guests:
        if guest.lost is None:
            guest.sock.close()


def flood(pattern, first, count, duration, held):
    raise_nofile()
    stopped = []
    signal.signal(signal.SIGTERM, lambda *_: stopped.append(True))
    began = time.monotonic()
    per_guest = {cid: [] for cid in range(first, first + count)}
    opened = refused = busy = failed = 0
    end = time.monotonic() + duration
    xid = 0xf100d000
    while time.monotonic() < end and not stopped:
        for cid, socks in per_guest.items():
            sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            sock.setblocking(False)
            try:
                sock.connect(pattern % cid)
            except BlockingIOError:
                busy += 1  # the listener's backlog is full
                sock.close()
                continue
            except OSError as error:
                failed += 1
                if failed <= 5:
                    print("flood guest %d: %s" % (cid, error), file=sys.stderr)
                sock.close()
                continue
            opened += 1
            xid += 1
            try:
                sock.send(null_call(xid))
            except OSError:
                pass
            socks.append(sock)
            while len(socks) > held:
                old = socks.pop(0)
                # Closed by the bridge already (refused): EOF or a reset.
                try:
                    if old.recv(4096) == b"":
                        refused += 1
                except BlockingIOError:
                    pass  # neither answered nor closed yet
                except OSError:
                    refused += 1
                old.close()
    print("flood: guests %d seconds %.0f opened %d closed_at_once %d backlog_full %d connect_failed %d rate_per_s %.0f" % (
        count, time.monotonic() - began, opened, refused, busy, failed, opened / max(1, time.monotonic() - began)), flush=True)


def main(argv):
    try:
        if argv[1] == "hold" and len(argv) == 7:
            hold(argv[2], int(argv[3]), int(argv[4]), float(argv[5]), float(argv[6]))
        elif argv[1] == "flood" and len(argv) == 7:
            flood(argv[2], int(argv[3]), int(argv[4]), float(argv[5]), int(argv[6]))
        else:
            raise ValueError
    except (IndexError, ValueError):
        print(__doc__.strip(), file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
