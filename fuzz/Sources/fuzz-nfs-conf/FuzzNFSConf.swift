import FuzzSupport
import NFSAdmin

/// /etc/nfs.conf and nfs.conf.d/*.conf. Checks: no section, key or value
/// spans a line break (a line-based format cannot read one), keys are lower
/// case and non-empty, every value names a line of the file it came from,
/// and the configuration written back as `[section]` / `key = "value"`
/// lines reads to the same sections, keys and values.
@main
enum FuzzNFSConf {
    static func main() { FuzzHarness.run(fuzzOne) }
}

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzOne(_ data: UnsafePointer<UInt8>?, _ size: Int) -> CInt {
    let text = String(decoding: FuzzHarness.bytes(data, size), as: UTF8.self)
    var conf = NFSConf()
    conf.add(text, file: "nfs.conf")
    let lineCount = text.utf8.split(separator: 0x0A, omittingEmptySubsequences: false).count
    for (section, keys) in conf.sections {
        if spansLines(section) { FuzzHarness.fail("section \(section.debugDescription) spans lines") }
        for (key, value) in keys {
            if key.isEmpty || key != key.lowercased() { FuzzHarness.fail("key \(key.debugDescription) is empty or not lower case") }
            if spansLines(key) || spansLines(value.text) {
                FuzzHarness.fail("[\(section)] \(key.debugDescription) = \(value.text.debugDescription) spans lines")
            }
            if value.line < 1 || value.line > lineCount { FuzzHarness.fail("value on line \(value.line) of \(lineCount)") }
            if conf.string(section, key) != value.text { FuzzHarness.fail("lookup of [\(section)] \(key) differs") }
        }
    }
    // Written back: keys and values that the format can carry (a key that
    // starts like a section header or a comment cannot be written plainly).
    var written = ""
    var expected: [String: [String: String]] = [:]
    for (section, keys) in conf.sections.sorted(by: { $0.key < $1.key }) {
        guard !section.contains("]") else { continue }
        written += "[\(section)]\n"
        for (key, value) in keys.sorted(by: { $0.key < $1.key }) {
            guard let first = key.first, !"[#;".contains(first), !key.contains(" #"), !key.contains(" ;"),
                  !value.text.contains(" #"), !value.text.contains(" ;"),
                  !value.text.contains("\t#"), !value.text.contains("\t;"), !key.contains("\t#"), !key.contains("\t;")
            else { continue }
            written += "\(key) = \"\(value.text)\"\n"
            expected[section, default: [:]][key] = value.text
        }
    }
    var again = NFSConf()
    again.add(written, file: "written.conf")
    let reread = again.sections.mapValues { $0.mapValues(\.text) }.filter { !$0.value.isEmpty }
    if reread != expected.filter({ !$0.value.isEmpty }) {
        FuzzHarness.fail("nfs.conf written back reads differently:\n\(written)\n\(reread)\n\(expected)")
    }
    return 0
}

/// A line feed, alone or in "\r\n" (one Character in Swift).
private func spansLines(_ text: String) -> Bool { text.utf8.contains(0x0A) }
