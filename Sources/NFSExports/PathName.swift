/// Path names as text: no file system access.
public enum PathName {
    /// The directory part of `path`, as dirname(1) has it: "/" for "/x"
    /// and "/", "." for "x" and "", trailing and repeated slashes before
    /// the last component dropped ("/a/b/" and "/a//b" give "/a").
    public static func directory(of path: String) -> String {
        var text = Substring(path)
        while text.count > 1 && text.hasSuffix("/") { text = text.dropLast() }
        guard let slash = text.lastIndex(of: "/") else { return "." }
        var head = text[..<slash]
        while head.hasSuffix("/") { head = head.dropLast() }
        return head.isEmpty ? "/" : String(head)
    }

    /// `path` equals `root` or lies inside it (both absolute and
    /// normalized, as realpath(3) gives them).
    public static func isBelow(_ path: String, _ root: String) -> Bool {
        root == "/" || path == root || path.hasPrefix(root + "/")
    }
}
