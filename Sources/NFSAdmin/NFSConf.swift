/// /etc/nfs.conf and /etc/nfs.conf.d/*.conf: INI sections of `key = value`
/// lines, `#` and `;` comments. Later files override earlier ones; the
/// command line overrides both (`resolve`, in NFSConfSetting.swift).
public struct NFSConf: Sendable {
    public struct Value: Sendable, Hashable {
        public var text: String
        public var file: String
        public var line: Int
    }

    /// section (lower case, `[section "sub"]` kept as `section "sub"`) ->
    /// key (lower case) -> value.
    public private(set) var sections: [String: [String: Value]] = [:]
    public private(set) var diagnostics: [String] = []

    public init() {}

    /// Adds one file's text; its values override earlier ones.
    public mutating func add(_ text: String, file: String) {
        var section = ""
        // "\r\n" is one Character: split on it too, or a CRLF file is one line.
        let lines = text.split(omittingEmptySubsequences: false, whereSeparator: { $0 == "\n" || $0 == "\r\n" })
        for (number, rawLine) in lines.enumerated() {
            var line = rawLine.drop { $0 == " " || $0 == "\t" }
            if line.isEmpty || line.first == "#" || line.first == ";" { continue }
            if line.first == "[" {
                guard let close = line.firstIndex(of: "]") else {
                    diagnostics.append("\(file):\(number + 1): missing ']' in section header")
                    continue
                }
                section = line[line.index(after: line.startIndex)..<close]
                    .trimmingBlanks().lowercased()
                continue
            }
            // Trailing comments start at " #" or " ;".
            if let comment = line.indices.first(where: { index in
                (line[index] == "#" || line[index] == ";") && index > line.startIndex
                    && (line[line.index(before: index)] == " " || line[line.index(before: index)] == "\t")
            }) {
                line = line[..<comment]
            }
            guard let equals = line.firstIndex(of: "=") else {
                diagnostics.append("\(file):\(number + 1): expected 'key = value'")
                continue
            }
            let key = line[..<equals].trimmingBlanks().lowercased()
            var value = line[line.index(after: equals)...].trimmingBlanks()
            if value.count >= 2, value.first == "\"", value.last == "\"" { value = String(value.dropFirst().dropLast()) }
            guard !key.isEmpty else {
                diagnostics.append("\(file):\(number + 1): empty key")
                continue
            }
            sections[section, default: [:]][key] = Value(text: value, file: file, line: number + 1)
        }
    }

    public func value(_ section: String, _ key: String) -> Value? {
        sections[section.lowercased()]?[key.lowercased()]
    }

    public func string(_ section: String, _ key: String) -> String? { value(section, key)?.text }

    /// nfs.conf booleans as nfs-utils reads them: y/yes/t/true/on/1 and
    /// n/no/f/false/off/0, any case (nil: neither). Tools read settings
    /// through `resolve` (NFSConfSetting.swift), which reports a value
    /// that is neither with its file and line.
    public static func boolean(_ text: String) -> Bool? {
        let text = text.lowercased()
        if ["y", "yes", "t", "true", "on", "1"].contains(text) { return true }
        if ["n", "no", "f", "false", "off", "0"].contains(text) { return false }
        return nil
    }

    /// Reads /etc/nfs.conf then /etc/nfs.conf.d/*.conf in name order.
    public static func load(paths: SystemPaths) -> NFSConf {
        var conf = NFSConf()
        if let bytes = try? FileSystem.readIfExists(paths.nfsConf) {
            conf.add(String(decoding: bytes, as: UTF8.self), file: paths.nfsConf)
        }
        if let names = try? FileSystem.directoryEntries(paths.nfsConfDirectory) {
            for name in names where name.hasSuffix(".conf") {
                let file = paths.nfsConfDirectory + "/" + name
                if let bytes = try? FileSystem.readIfExists(file) {
                    conf.add(String(decoding: bytes, as: UTF8.self), file: file)
                }
            }
        }
        return conf
    }
}

extension StringProtocol {
    func trimmingBlanks() -> String {
        let isBlank: (Character) -> Bool = { $0 == " " || $0 == "\t" || $0 == "\r" }
        guard let first = firstIndex(where: { !isBlank($0) }), let last = lastIndex(where: { !isBlank($0) }) else { return "" }
        return String(self[first...last])
    }
}
