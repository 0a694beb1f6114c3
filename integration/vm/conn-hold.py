#!/usr/bin/env python3
"""Holds COUNT connections to an NFS server endpoint at once, as that many
clients of one guest would, and makes an NFSv4 NULL call on each: once as
each connection opens, then again on every one of them once all are open.
A connection the server (or the bridge) closed in between fails its second
call. Prints "opened N first-answered A still-answered S", then the
indexes of the connections lost (oldest first), and exits 0 whatever it
measured: the scenario judges.

With a PID after COUNT, also prints "held: VmRSS KIB Threads N" of that
process (the bridge) while all the connections are open, between the two
rounds.

vsock-priv:CID:PORT connects from privileged vsock ports (1023 down; root
only), as mount.vsock does for the guest kernel's NFS client. With
HOLD_SECONDS in the environment the connections stay open that long after
the report before they are closed.

usage: conn-hold.py unix:PATH COUNT [PID]
       conn-hold.py vsock:CID:PORT COUNT [PID]
       conn-hold.py vsock-priv:CID:PORT COUNT [PID]"""
import os, socket, struct, sys, time

XID = 0x5c0e0000


def null_call(sock, xid):
    # AUTH_NONE call of NFS (100003) v4 procedure 0, record-marked.
    call = struct.pack(">IIIIII", xid, 0, 2, 100003, 4, 0) + struct.pack(">IIII", 0, 0, 0, 0)
    sock.sendall(struct.pack(">I", 0x80000000 | len(call)) + call)
    header = recv_exactly(sock, 4)
    body = recv_exactly(sock, struct.unpack(">I", header)[0] & 0x7FFFFFFF)
    # xid, REPLY, MSG_ACCEPTED, verifier (flavor, length 0), SUCCESS
    got_xid, msg_type, reply_stat = struct.unpack(">III", body[:12])
    accept_stat = struct.unpack(">I", body[20:24])[0]
    return got_xid == xid and msg_type == 1 and reply_stat == 0 and accept_stat == 0


def recv_exactly(sock, size):
    data = b""
    while len(data) < size:
        chunk = sock.recv(size - len(data))
        if not chunk:
            raise ConnectionError("closed by the server")
        data += chunk
    return data


def connect(target):
    kind, _, rest = target.partition(":")
    if kind == "unix":
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        sock.connect(rest)
    elif kind in ("vsock", "vsock-priv"):
        cid, port = rest.split(":")
        sock = socket.socket(socket.AF_VSOCK, socket.SOCK_STREAM)
        if kind == "vsock-priv":
            bind_privileged(sock)
        sock.connect((int(cid), int(port)))
    else:
        sys.exit("conn-hold.py: want unix:PATH or vsock:CID:PORT, got " + target)
    sock.settimeout(20)
    return sock


def bind_privileged(sock):
    for port in range(1023, 511, -1):
        try:
            sock.bind((socket.VMADDR_CID_ANY, port))
            return
        except OSError:
            continue
    raise OSError("no privileged vsock port free")


def answered(sock, xid):
    try:
        return null_call(sock, xid)
    except (OSError, ConnectionError):
        return False


target, count = sys.argv[1], int(sys.argv[2])
connections, first = [], 0
for i in range(count):
    try:
        sock = connect(target)
    except OSError as error:
        print("connection %d: %s" % (i, error), file=sys.stderr)
        break
    connections.append(sock)
    first += answered(sock, XID + i)
if len(sys.argv) > 3:
    fields = dict(line.split(":", 1) for line in open("/proc/%s/status" % sys.argv[3]))
    print("held: VmRSS %s Threads %s" % (fields["VmRSS"].split()[0], fields["Threads"].strip()))
lost = [i for i, sock in enumerate(connections) if not answered(sock, XID + count + i)]
print("opened %d first-answered %d still-answered %d" % (len(connections), first, len(connections) - len(lost)))
if lost:
    print("lost " + " ".join(map(str, lost[:20])) + (" ..." if len(lost) > 20 else ""))
sys.stdout.flush()
time.sleep(float(os.environ.get("HOLD_SECONDS", "0")))
for sock in connections:
    sock.close()
