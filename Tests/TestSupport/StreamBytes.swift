#if canImport(Glibc)
import Glibc
#endif

/// Sends all of `bytes`, or as much as the peer takes before an error.
public func sendAll(_ fd: Int32, _ bytes: [UInt8]) {
    var offset = 0
    while offset < bytes.count {
        let count = bytes.withUnsafeBytes { send(fd, $0.baseAddress! + offset, bytes.count - offset, Int32(MSG_NOSIGNAL)) }
        if count <= 0 { return }
        offset += count
    }
}

/// Reads until `count` bytes have come, or the end or an error.
public func receive(_ fd: Int32, _ count: Int) -> [UInt8] {
    var out: [UInt8] = []
    var buffer = [UInt8](repeating: 0, count: 65536)
    while out.count < count {
        let got = buffer.withUnsafeMutableBytes { recv(fd, $0.baseAddress, min($0.count, count - out.count), 0) }
        if got <= 0 { break }
        out += buffer[0..<got]
    }
    return out
}

/// Deterministic bytes that no shifted copy of themselves matches.
public func pattern(_ count: Int, seed: UInt64) -> [UInt8] {
    var state = seed
    return (0..<count).map { _ in
        state = state &* 6364136223846793005 &+ 1442695040888963407
        return UInt8(truncatingIfNeeded: state >> 33)
    }
}
