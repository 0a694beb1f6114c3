#if canImport(Glibc)
import Glibc
#endif
import NFSExports

/// Small file helpers over raw syscalls. Paths are plain strings; all
/// errors keep the call and errno.
public enum FileSystem {
    /// The whole file, or nil if it does not exist.
    public static func readIfExists(_ path: String) throws(SystemError) -> [UInt8]? {
        let fd: FileDescriptor
        do {
            fd = try FileDescriptor.open(path, O_RDONLY)
        } catch where error.errno == ENOENT || error.errno == ENOTDIR {
            return nil
        }
        return try fd.closeAfter { () throws(SystemError) in try fd.readAll(for: path) }
    }

    public static func read(_ path: String) throws(SystemError) -> [UInt8] {
        guard let bytes = try readIfExists(path) else { throw SystemError("open", path, errno: ENOENT) }
        return bytes
    }

    /// Writes one message in one write(2), as the kernel's cache channels
    /// and /proc/fs/nfsd files require.
    public static func writeMessage(_ text: String, to path: String) throws(SystemError) {
        let fd = try FileDescriptor.open(path, O_WRONLY)
        try fd.closeAfter { () throws(SystemError) in try fd.writeMessage(Array(text.utf8), for: path) }
    }

    public static func exists(_ path: String) -> Bool { access(path, F_OK) == 0 }

    public static func isDirectory(_ path: String) -> Bool {
        var info = stat()
        return stat(path, &info) == 0 && (info.st_mode & S_IFMT) == S_IFDIR
    }

    /// realpath(3), or nil when the path cannot be resolved.
    public static func realPath(_ path: String) -> String? {
        guard let resolved = realpath(path, nil) else { return nil }
        defer { free(resolved) }
        return String(cString: resolved)
    }

    /// Regular files and symlinks in `directory` (and its subdirectories'
    /// names with `directories`), names not starting with '.', in version
    /// order (as scandir(…, versionsort)); nil if it does not exist.
    public static func directoryEntries(_ directory: String, directories: Bool = false) throws(SystemError) -> [String]? {
        guard let dir = opendir(directory) else {
            if errno == ENOENT { return nil }
            throw SystemError.current("opendir", directory)
        }
        defer { closedir(dir) }
        var names: [String] = []
        while let entry = readdir(dir) {
            let type = entry.pointee.d_type
            guard type == UInt8(DT_REG) || type == UInt8(DT_LNK) || type == UInt8(DT_UNKNOWN) || (directories && type == UInt8(DT_DIR)) else { continue }
            let name = withUnsafePointer(to: entry.pointee.d_name) { pointer in
                // SAFETY: d_name is a NUL-terminated array inside the dirent.
                pointer.withMemoryRebound(to: CChar.self, capacity: Int(NAME_MAX) + 1) { String(cString: $0) }
            }
            if name.hasPrefix(".") { continue }
            names.append(name)
        }
        return names.sorted(by: VersionOrder.less)
    }

    /// Removes the temporaries `replaceIfChanged` left beside `path` when
    /// their writer was killed between creating and renaming them: those
    /// whose pid no longer runs (a live pid, reused or not, keeps its file).
    /// Call while holding the file's lock. Returns how many went.
    @discardableResult
    public static func removeStaleTemporaries(beside path: String) -> Int {
        let directory = PathName.directory(of: path)
        let prefix = (path.split(separator: "/").last.map(String.init) ?? path) + ".tmp."
        guard let names = try? directoryEntries(directory) else { return 0 }
        var removed = 0
        for name in names where name.hasPrefix(prefix) {
            let rest = name.dropFirst(prefix.count)
            guard let dot = rest.firstIndex(of: "."), let pid = Int32(rest[..<dot]), pid > 0, pid != getpid() else { continue }
            if kill(pid, 0) != 0 && errno == ESRCH && unlink(directory + "/" + name) == 0 { removed += 1 }
        }
        return removed
    }

    /// open(2) flags for the files this project creates, kept in one place
    /// so that every creation refuses what another user may have planted.
    public enum OpenFlags {
        /// A new file: O_EXCL refuses any file or symlink (dangling or not)
        /// already at the name, O_NOFOLLOW makes sure of the symlink case.
        public static let createNew: Int32 = O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC
        /// The lock file shared with nfs-utils outlives every run, so it is
        /// opened when it is there, but never through a symlink.
        public static let lockFile: Int32 = O_RDWR | O_CREAT | O_NOFOLLOW | O_CLOEXEC
        /// A log that a spawned child gets as its output: appended to,
        /// never through a symlink. No O_CLOEXEC: posix_spawn's open action
        /// usually lands on the target descriptor itself, and the flag
        /// would then close it at exec.
        public static let childLog: Int32 = O_WRONLY | O_CREAT | O_APPEND | O_NOFOLLOW
    }

    /// Creates `path`, which must not exist yet, for writing.
    public static func createNew(_ path: String, mode: mode_t) throws(SystemError) -> Int32 {
        try FileDescriptor.open(path, OpenFlags.createNew, mode: mode, call: "open(O_CREAT|O_EXCL|O_NOFOLLOW)").rawValue
    }

    /// A name beside `path` that no other writer picks, and that nobody
    /// can plant a file or symlink at beforehand: `<path>.tmp.<pid>.<random>`.
    static func temporaryName(for path: String) -> String {
        "\(path).tmp.\(getpid()).\(String(UInt64.random(in: .min ... .max), radix: 16))"
    }

    /// Creates a fresh temporary file beside `path`: its descriptor and name.
    static func createTemporary(beside path: String, mode: mode_t) throws(SystemError) -> (fd: Int32, path: String) {
        var attempts = 0
        while true {
            let name = temporaryName(for: path)
            do {
                return (try createNew(name, mode: mode), name)
            } catch where error.errno == EEXIST && attempts < 8 {
                // Someone holds this name (or planted something there): draw another.
                attempts += 1
            }
        }
    }

    /// Writes `bytes` to `path` through a fresh temporary file beside it
    /// (`createTemporary`) + fsync + rename, but only when the content
    /// differs from what is there. Returns whether it wrote. On failure the
    /// temporary file is removed and `path` is as it was.
    @discardableResult
    public static func replaceIfChanged(_ path: String, with bytes: [UInt8], mode: mode_t = 0o644) throws(SystemError) -> Bool {
        if let current = try readIfExists(path), current == bytes { return false }
        let (fd, temporary) = try createTemporary(beside: path, mode: mode)
        do {
            try FileDescriptor(rawValue: fd).writeAll(bytes, for: temporary)
            try SystemCall.check("fsync", temporary) { fsync(fd) }
        } catch {
            close(fd)
            unlink(temporary)
            throw error
        }
        close(fd)
        do {
            try SystemCall.check("rename", "\(temporary) to \(path)") { rename(temporary, path) }
        } catch {
            unlink(temporary)
            throw error
        }
        // Make the rename durable too.
        let dirfd = open(PathName.directory(of: path), O_RDONLY | O_DIRECTORY | O_CLOEXEC)
        if dirfd >= 0 {
            fsync(dirfd)
            close(dirfd)
        }
        return true
    }
}

/// An fcntl write lock on a lock file, held until `unlock()` or deinit.
/// nfs-utils locks `.etab.lock` the same way, so both tool sets exclude
/// each other.
public final class FileLock {
    private var fd: Int32
    public let path: String

    public init(path: String) throws(SystemError) {
        self.path = path
        fd = try FileDescriptor.open(path, FileSystem.OpenFlags.lockFile, mode: 0o600).rawValue
        var lock = flock()
        lock.l_type = Int16(F_WRLCK)
        lock.l_whence = Int16(SEEK_SET)
        do {
            try SystemCall.check("fcntl(F_SETLKW)", path) { fcntl(fd, F_SETLKW, &lock) }
        } catch {
            close(fd)
            throw error
        }
    }

    public func unlock() {
        if fd >= 0 {
            close(fd)
            fd = -1
        }
    }

    deinit { unlock() }
}

/// strverscmp(3) order for file names: runs of digits compare by value, so
/// "9.exports" sorts before "10.exports".
public enum VersionOrder {
    public static func less(_ a: String, _ b: String) -> Bool {
        let x = Array(a.utf8), y = Array(b.utf8)
        var i = 0, j = 0
        func isDigit(_ c: UInt8) -> Bool { c >= 0x30 && c <= 0x39 }
        while i < x.count && j < y.count {
            if isDigit(x[i]) && isDigit(y[j]) {
                var iEnd = i, jEnd = j
                while iEnd < x.count && isDigit(x[iEnd]) { iEnd += 1 }
                while jEnd < y.count && isDigit(y[jEnd]) { jEnd += 1 }
                // Compare by value: strip leading zeros, then length, then digits.
                var iStart = i, jStart = j
                while iStart < iEnd - 1 && x[iStart] == 0x30 { iStart += 1 }
                while jStart < jEnd - 1 && y[jStart] == 0x30 { jStart += 1 }
                let lengthX = iEnd - iStart, lengthY = jEnd - jStart
                if lengthX != lengthY { return lengthX < lengthY }
                for k in 0..<lengthX where x[iStart + k] != y[jStart + k] { return x[iStart + k] < y[jStart + k] }
                if iEnd - i != jEnd - j { return iEnd - i > jEnd - j }
                i = iEnd
                j = jEnd
            } else {
                if x[i] != y[j] { return x[i] < y[j] }
                i += 1
                j += 1
            }
        }
        return x.count - i < y.count - j
    }
}
