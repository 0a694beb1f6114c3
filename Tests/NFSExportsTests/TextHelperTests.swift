import Testing
@testable import NFSExports

/// The one `\ooo` codec and the one dirname; the cases are where the
/// copies they replace disagreed.
@Suite("octal escapes and path names")
struct TextHelperTests {
    @Test("\\ooo decodes only for byte values: \\000 to \\377", arguments: [
        ("a\\040b", Array("a b".utf8)),
        ("\\134", [0x5C]),
        ("\\377", [0xFF]),
        ("\\000", [0x00]),
        // No byte: left as it is, as the kernel's qword_get does (a copy
        // decoded \777 to 0xff, one bit lost per digit).
        ("\\777", Array("\\777".utf8)),
        ("\\400", Array("\\400".utf8)),
        ("x\\4001", Array("x\\4001".utf8)),
        // Too short, or not octal: no escape.
        ("\\04", Array("\\04".utf8)),
        ("\\", [0x5C]),
        ("\\08a", Array("\\08a".utf8)),
        ("\\\\040", Array("\\ ".utf8)),
    ])
    func decode(text: String, bytes: [UInt8]) {
        #expect(OctalEscape.decode(Array(text.utf8)) == bytes)
    }

    @Test("a cache word reads back as written; \\777 stays literal", arguments: [
        "plain", "/srv/my share", "tab\there", "new\nline", "back\\slash", "\\777", "\\x41", "ünï côdé",
    ])
    func cacheWordRoundTrip(text: String) {
        let word = CacheText.word(text)
        #expect(!word.contains(" ") && !word.contains("\n") && !word.contains("\t"))
        #expect(CacheText.text(ofWord: word[...]) == text)
    }

    @Test("a word nobody escaped: \\777 is text, not U+FFFD")
    func literalWord() {
        #expect(CacheText.text(ofWord: "/run/vm\\777"[...]) == "/run/vm\\777")
        #expect(CacheText.text(ofWord: "/run/vm\\377x"[...]) == "/run/vm\u{FFFD}x")
    }

    @Test("exports(5) paths decode \\ooo the same way", arguments: [
        ("/srv/a\\040b *(ro)\n", "/srv/a b"),
        ("/srv/a\\777 *(ro)\n", "/srv/a\\777"),
        ("/srv/a\\400b *(ro)\n", "/srv/a\\400b"),
    ])
    func exportsPaths(text: String, path: String) {
        let features = ExportFeatures(flags: ExportFlags(rawValue: 0x3ffff), perFlavorFlags: .perFlavor)
        let output = ExportsParser(features: features).parse(text, file: "/etc/exports")
        #expect(output.entries.map(\.path) == [path])
    }

    @Test("directory(of:) is dirname(1)", arguments: [
        ("/srv/a", "/srv"),
        ("/x", "/"),          // two copies gave ""
        ("/", "/"),
        ("x", "."),           // one copy gave "/"
        ("", "."),
        ("a/b", "a"),
        ("/a/b/", "/a"),      // one copy gave "/a/b"
        ("/a//b", "/a"),
        ("//x", "/"),
        ("///", "/"),
        ("/run/nfs-vsock-bridge/status", "/run/nfs-vsock-bridge"),
    ])
    func directory(path: String, parent: String) {
        #expect(PathName.directory(of: path) == parent)
    }

    @Test("isBelow: the path itself or inside, on a component boundary", arguments: [
        ("/srv", "/srv", true), ("/srv/a", "/srv", true), ("/srvx", "/srv", false),
        ("/anything", "/", true), ("/", "/srv", false),
    ])
    func isBelow(path: String, root: String, below: Bool) {
        #expect(PathName.isBelow(path, root) == below)
    }
}
