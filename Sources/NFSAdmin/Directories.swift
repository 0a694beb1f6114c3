#if canImport(Glibc)
import Glibc
#endif
import NFSExports

extension FileSystem {
    /// mkdir -p: creates `path` and any missing parents with `mode`; an
    /// existing directory is fine, anything else in the way is an error.
    public static func makeDirectories(_ path: String, mode: mode_t) throws(SystemError) {
        if isDirectory(path) { return }
        let parent = PathName.directory(of: path)
        if parent != path && parent != "." && !isDirectory(parent) { try makeDirectories(parent, mode: mode) }
        if mkdir(path, mode) != 0 && !(errno == EEXIST && isDirectory(path)) {
            throw SystemError.current("mkdir", path)
        }
    }
}
