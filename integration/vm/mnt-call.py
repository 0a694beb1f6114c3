#!/usr/bin/env python3
"""One MOUNT v3 MNT call, as a scenario's NFSv3 client would make it, from a
chosen source address (and port: 0 = an unprivileged one): finds mountd's
TCP port through rpcbind (PMAPPROC_GETPORT v2) and prints the mountstat3 of
the reply (0 OK, 13 EACCES, ...).

usage: mnt-call.py SOURCE-ADDRESS PATH [SOURCE-PORT]"""
import socket, struct, sys


def xdr_string(data):
    return struct.pack(">I", len(data)) + data + b"\0" * ((4 - len(data) % 4) % 4)


def rpc(sock, prog, vers, proc, args):
    # AUTH_NONE call, record-marked as for TCP.
    call = struct.pack(">IIIIII", 1, 0, 2, prog, vers, proc) + struct.pack(">IIII", 0, 0, 0, 0) + args
    sock.sendall(struct.pack(">I", 0x80000000 | len(call)) + call)
    size = struct.unpack(">I", sock.recv(4))[0] & 0x7FFFFFFF
    data = b""
    while len(data) < size:
        data += sock.recv(size - len(data))
    return data


source, path = sys.argv[1], sys.argv[2].encode()
source_port = int(sys.argv[3]) if len(sys.argv) > 3 else 0
portmapper = socket.create_connection(("127.0.0.1", 111))
port = struct.unpack(">I", rpc(portmapper, 100000, 2, 3, struct.pack(">IIII", 100005, 3, 6, 0))[-4:])[0]
client = socket.socket()
client.bind((source, source_port))
client.connect(("127.0.0.1", port))
reply = rpc(client, 100005, 3, 1, xdr_string(path))
print(struct.unpack(">I", reply[24:28])[0])
