#if canImport(Glibc)
import Glibc
#endif
import NFSExports

/// realpath(3) for many paths that share their directories, as the export
/// paths of a large /etc/exports do (/srv/vm/d00001 ... /srv/vm/d10000):
/// each directory is resolved once and each path then costs one lstat(2)
/// of its last component, where realpath(3) reads every component of every
/// path again (three readlink calls for /srv/vm/dNNNNN). A path with a
/// symbolic link as its last component, or with ".", ".." or repeated
/// slashes, is handed to realpath(3) itself: the answers are the same.
public struct RealPathCache {
    /// Resolved directories (nil: does not resolve).
    private var directories: [String: String?] = [:]
    /// Calls made, for tests: lstat of last components, realpath fallbacks.
    public private(set) var lstatCalls = 0
    public private(set) var realpathCalls = 0

    public init() {}

    public mutating func resolve(_ path: String) -> String? {
        guard path.hasPrefix("/") else { return fallback(path) }
        if path == "/" { return "/" }
        let parts = path.split(separator: "/", omittingEmptySubsequences: false).dropFirst()
        // "//", a trailing "/", "." or "..": realpath(3) knows the rules.
        if parts.contains(where: { $0.isEmpty || $0 == "." || $0 == ".." }) { return fallback(path) }
        guard let name = parts.last else { return fallback(path) }
        guard let parent = directory(PathName.directory(of: path)) else { return nil }
        let candidate = parent == "/" ? "/" + name : parent + "/" + name
        var info = stat()
        lstatCalls += 1
        guard lstat(candidate, &info) == 0 else { return nil }
        if info.st_mode & S_IFMT == S_IFLNK { return fallback(candidate) }
        return candidate
    }

    /// A directory's real path, resolved once.
    private mutating func directory(_ path: String) -> String? {
        if let known = directories[path] { return known }
        let real = resolve(path)
        directories[path] = .some(real)
        return real
    }

    private mutating func fallback(_ path: String) -> String? {
        realpathCalls += 1
        return FileSystem.realPath(path)
    }
}
