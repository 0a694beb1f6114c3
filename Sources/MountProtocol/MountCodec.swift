/// MOUNT's arguments and results as XDR bytes, both ways. Pure functions:
/// the server encodes results and the client encodes arguments here, and the
/// C glue only moves the bytes.
enum MountCodec {
    /// Encoded bytes, plus what had to be left out or refused and why (the
    /// server logs these: a client only sees a shorter list or an error).
    struct Encoded: Sendable {
        var bytes: [UInt8]
        var notes: [String] = []
    }

    // MARK: results (server side)

    /// MNT's result: `fhstatus` (v1) or `mountres3` (v3).
    static func encodeMount(_ result: MountResult, version: UInt32) -> Encoded {
        var notes: [String] = []
        var status = MountStatus.ok
        var handle: [UInt8] = []
        var flavors: [Int32] = []
        switch result {
        case .error(.ok):
            notes.append("MNT error without an error status; answering SERVERFAULT")
            status = .serverfault
        case .error(let error):
            status = error
        case .ok(let fileHandle, let authFlavors):
            let limit = version == 1 ? MountProgram.version1HandleSize : MountProgram.version3MaxHandleSize
            if fileHandle.count > limit {
                // A shortened handle would be accepted by the client and fail
                // later as stale: refuse now, where it is visible.
                notes.append("MNT v\(version) filehandle of \(fileHandle.count) bytes exceeds \(limit); answering SERVERFAULT")
                status = .serverfault
            } else {
                handle = fileHandle
                flavors = authFlavors
            }
        }

        var xdr = XDREncoder()
        if version == 1 {
            xdr.uint32(status.version1Value)
            if status == .ok {
                // fhandle is opaque[32]: short handles are zero-padded.
                xdr.fixedOpaque(handle + repeatElement(0, count: MountProgram.version1HandleSize - handle.count))
            }
        } else {
            xdr.uint32(UInt32(status.rawValue))
            if status == .ok {
                xdr.variableOpaque(handle)
                xdr.uint32(UInt32(flavors.count))
                for flavor in flavors { xdr.int32(flavor) }
            }
        }
        return Encoded(bytes: xdr.bytes, notes: notes)
    }

    /// DUMP's result: `mountlist`, a linked list of (hostname, directory).
    /// Entries a client could not decode (names over 255 bytes, paths over
    /// 1024) are left out rather than breaking the whole reply.
    static func encodeMountList(_ list: [(host: String, directory: String)]) -> Encoded {
        var xdr = XDREncoder()
        var notes: [String] = []
        for entry in list {
            guard entry.host.utf8.count <= MountProgram.maxNameLength,
                  entry.directory.utf8.count <= MountProgram.maxPathLength
            else {
                notes.append("DUMP: left out \(entry.host):\(entry.directory) (name or path too long for MOUNT)")
                continue
            }
            xdr.bool(true)
            xdr.string(entry.host)
            xdr.string(entry.directory)
        }
        xdr.bool(false)
        return Encoded(bytes: xdr.bytes, notes: notes)
    }

    /// EXPORT's result: `exports`, a linked list of (directory, groups),
    /// groups being a linked list of names. Same length rules as DUMP.
    static func encodeExports(_ list: [(directory: String, groups: [String])]) -> Encoded {
        var xdr = XDREncoder()
        var notes: [String] = []
        for export in list {
            guard export.directory.utf8.count <= MountProgram.maxPathLength else {
                notes.append("EXPORT: left out \(export.directory.prefix(64))... (path longer than \(MountProgram.maxPathLength) bytes)")
                continue
            }
            xdr.bool(true)
            xdr.string(export.directory)
            for group in export.groups {
                guard group.utf8.count <= MountProgram.maxNameLength else {
                    notes.append("EXPORT \(export.directory): left out a client name longer than \(MountProgram.maxNameLength) bytes")
                    continue
                }
                xdr.bool(true)
                xdr.string(group)
            }
            xdr.bool(false)
        }
        xdr.bool(false)
        return Encoded(bytes: xdr.bytes, notes: notes)
    }

    // MARK: arguments (client side)

    /// `dirpath`, the argument of MNT and UMNT. Not limited here, so a client
    /// can be made to send an over-long path.
    static func encodePath(_ path: String) -> [UInt8] {
        var xdr = XDREncoder()
        xdr.string(path)
        return xdr.bytes
    }

    // MARK: results (client side)

    static func decodeMount(_ bytes: [UInt8], version: UInt32) throws(XDRDecodingError) -> MountResult {
        var xdr = XDRDecoder(bytes)
        let raw = try xdr.uint32()
        // fhstatus (v1) carries errno values only: NOTSUPP and SERVERFAULT
        // are v3's, and a v1 server sends them as EIO (version1Value).
        guard let status = MountStatus(rawValue: Int32(bitPattern: raw)), version != 1 || status.version1Value == raw else {
            throw XDRDecodingError(offset: 0, reason: "unknown MNT v\(version) status \(raw)")
        }
        let result: MountResult
        if status != .ok {
            result = .error(status)
        } else if version == 1 {
            result = .ok(fileHandle: try xdr.fixedOpaque(count: MountProgram.version1HandleSize), flavors: [])
        } else {
            let handle = try xdr.variableOpaque(maxLength: MountProgram.version3MaxHandleSize)
            let count = try xdr.uint32()
            guard count <= 1024 else { throw XDRDecodingError(offset: xdr.offset - 4, reason: "\(count) auth flavors") }
            var flavors: [Int32] = []
            for _ in 0..<count { flavors.append(try xdr.int32()) }
            result = .ok(fileHandle: handle, flavors: flavors)
        }
        try expectEnd(xdr)
        return result
    }

    static func decodeMountList(_ bytes: [UInt8]) throws(XDRDecodingError) -> [(host: String, directory: String)] {
        var xdr = XDRDecoder(bytes)
        var list: [(host: String, directory: String)] = []
        while try xdr.bool() {
            let host = try xdr.string(maxLength: MountProgram.maxNameLength)
            let directory = try xdr.string(maxLength: MountProgram.maxPathLength)
            list.append((host, directory))
        }
        try expectEnd(xdr)
        return list
    }

    static func decodeExports(_ bytes: [UInt8]) throws(XDRDecodingError) -> [(directory: String, groups: [String])] {
        var xdr = XDRDecoder(bytes)
        var list: [(directory: String, groups: [String])] = []
        while try xdr.bool() {
            let directory = try xdr.string(maxLength: MountProgram.maxPathLength)
            var groups: [String] = []
            while try xdr.bool() {
                groups.append(try xdr.string(maxLength: MountProgram.maxNameLength))
            }
            list.append((directory, groups))
        }
        try expectEnd(xdr)
        return list
    }

    static func decodeVoid(_ bytes: [UInt8]) throws(XDRDecodingError) {
        try expectEnd(XDRDecoder(bytes))
    }

    private static func expectEnd(_ xdr: XDRDecoder) throws(XDRDecodingError) {
        guard xdr.isAtEnd else {
            throw XDRDecodingError(offset: xdr.offset, reason: "\(xdr.bytes.count - xdr.offset) bytes after the result")
        }
    }
}
