// SystemError, SystemCall and SocketAddress live in SystemEdge; every
// target that imports NFSAdmin sees them as before.
@_exported import SystemEdge
