/// Parses an exports(5) option list ("rw,sync,sec=krb5:sys,ro") into
/// `ExportOptions`, reporting every problem with its column.
///
/// The semantics are nfs-utils' (support/nfs/exports.c parseopts): options
/// apply left to right, later ones win, and a `sec=` clause makes the
/// per-flavor options after it apply to the flavors it names.
public struct ExportOptionsParser: Sendable {
    /// Flags that may differ per security flavor on this kernel.
    public var perFlavorFlags: ExportFlags

    public init(features: ExportFeatures) {
        self.perFlavorFlags = features.perFlavorFlags
    }

    public struct Result: Sendable {
        public var options: ExportOptions
        public var diagnostics: [Diagnostic]
        /// The options as written, with their locations, for linting.
        public var written: [(name: String, location: SourceLocation)]
    }

    /// Applies `text` on top of `base`. `origin` is the location of the
    /// first character of `text`.
    public func parse(_ text: Substring, onto base: ExportOptions, origin: SourceLocation) -> Result {
        var options = base
        var diagnostics: [Diagnostic] = []
        var written: [(String, SourceLocation)] = []
        // Indices into options.security that the last sec= clause named.
        var active: Set<Int> = []

        func set(_ flag: ExportFlags) {
            options.flags.insert(flag)
            for index in active { options.security[index].flags.insert(flag) }
        }
        func clear(_ flag: ExportFlags) {
            options.flags.remove(flag)
            for index in active { options.security[index].flags.remove(flag) }
        }

        // Byte-wise over UTF-8: options are ASCII, and Character-level
        // indexing of long etab lines was the parser's main cost.
        let utf8 = text.utf8
        var index = utf8.startIndex
        var column = origin.column
        func skipBlanks() {
            while index < utf8.endIndex, utf8[index] == 0x20 || utf8[index] == 0x09 {
                index = utf8.index(after: index)
                column += 1
            }
        }
        skipBlanks()
        while index < utf8.endIndex {
            var end = index
            while end < utf8.endIndex && utf8[end] != 0x2C { end = utf8.index(after: end) }
            let option = Substring(utf8[index..<end])
            index = end < utf8.endIndex ? utf8.index(after: end) : end
            let location = SourceLocation(file: origin.file, line: origin.line, column: column)
            column += option.utf8.count + 1
            written.append((String(option), location))
            func error(_ message: String, hint: String? = nil) {
                diagnostics.append(Diagnostic(.error, location, message, hint: hint))
            }

            let (name, value) = Self.split(option)
            // The switches are most of every etab line: one dictionary
            // lookup instead of a walk through the cases below.
            if value == nil, let meaning = Self.flagOptions[String(name)] {
                if meaning.set { set(meaning.flag) } else { clear(meaning.flag) }
                skipBlanks()
                continue
            }
            switch (name, value) {
            case ("nordirplus", nil): set(.noReaddirPlus)
            case ("security_label", nil): set(.securityLabel)
            case ("anonuid", let value?), ("anongid", let value?):
                guard let id = Self.parseDecimalInt32(value) else {
                    error("bad \(name) \"\(value)\"", hint: "give a decimal user or group id, e.g. \(name)=65534")
                    break
                }
                if name == "anonuid" { options.anonUID = id } else { options.anonGID = id }
            case ("fsid", let value?):
                if value == "root" {
                    options.fsidNumber = 0
                    set(.fsid)
                } else if let parsed = Self.parseCUnsigned(value) {
                    options.fsidNumber = parsed.value
                    set(.fsid)
                    if parsed.wrapped {
                        let hint = value.count == 32 ? "a UUID needs at least one hex letter or dash to be read as one" : "use a number from 0 to 4294967295"
                        diagnostics.append(Diagnostic(.warning, location,
                            "fsid=\(value) does not fit in 32 bits; it is used as fsid=\(Int32(bitPattern: parsed.value)), as nfs-utils does",
                            hint: hint))
                    }
                } else if value.filter(\.isHexDigit).count == 32 {
                    options.fsidUUID = String(value)
                } else {
                    error("bad fsid \"\(value)\"", hint: "use fsid=root, a number, or a 32-hex-digit UUID")
                }
            case ("mountpoint", nil), ("mp", nil):
                options.mountpoint = ""
            case ("mountpoint", let value?), ("mp", let value?):
                options.mountpoint = String(value)
            case ("refer", let value?):
                options.locations = .refer(String(value))
            case ("replicas", let value?):
                options.locations = .replicas(String(value))
            case ("sec", let value?):
                var named: Set<Int> = []
                var failed = false
                for flavorName in value.split(separator: ":", omittingEmptySubsequences: false) {
                    guard let flavor = SecurityFlavor(named: String(flavorName)) else {
                        error("unknown security flavor \"\(flavorName)\"",
                              hint: "use sys, krb5, krb5i, krb5p or none")
                        failed = true
                        break
                    }
                    if let index = options.security.firstIndex(where: { $0.flavor.number == flavor.number }) {
                        named.insert(index)
                    } else if options.security.count >= 8 {
                        error("more than 8 security flavors on an export")
                        failed = true
                        break
                    } else {
                        options.security.append(SecurityEntry(flavor: flavor, flags: options.flags))
                        named.insert(options.security.count - 1)
                    }
                }
                if !failed { active = named }
            case ("xprtsec", let value?):
                var modes: [TransportSecurity] = []
                for modeName in value.split(separator: ":", omittingEmptySubsequences: false) {
                    guard let mode = TransportSecurity(rawValue: String(modeName)) else {
                        error("unknown xprtsec mode \"\(modeName)\"", hint: "use none, tls or mtls, separated by ':'")
                        break
                    }
                    if !modes.contains(mode) { modes.append(mode) }
                }
                options.transportSecurity = modes
            case ("reexport", let value?):
                guard let policy = ReexportPolicy(rawValue: String(value)) else {
                    error("unknown reexport policy \"\(value)\"", hint: "use auto-fsidnum, predefined-fsidnum or none")
                    break
                }
                options.reexport = policy
            default:
                if option.isEmpty {
                    error("empty option in option list", hint: "remove the extra ','")
                } else if Self.valueOptions.contains(String(name)) && value == nil {
                    error("option \"\(name)\" needs a value", hint: "write \(name)=VALUE")
                } else if value != nil && Self.plainOptions.contains(String(name)) {
                    error("option \"\(name)\" takes no value")
                } else {
                    error("unknown option \"\(option)\"", hint: "see exports(5) for the option names")
                }
            }
            skipBlanks()
        }

        // nfs-utils' fix_pseudoflavor_flags: flags that cannot vary per
        // flavor follow the export's.
        let shared = options.flags.subtracting(perFlavorFlags)
        for index in options.security.indices {
            options.security[index].flags.formUnion(shared)
        }
        return Result(options: options, diagnostics: diagnostics, written: written)
    }

    static let valueOptions: Set<String> = ["anonuid", "anongid", "fsid", "refer", "replicas", "sec", "xprtsec", "reexport"]
    /// Options that take no value: the switches, and two flags without an
    /// opposite.
    static let plainOptions: Set<String> = Set(flagOptions.keys).union(["nordirplus", "security_label"])

    /// The options that only switch a flag, and which flag/value they mean,
    /// for conflict detection.
    static let flagOptions: [String: (flag: ExportFlags, set: Bool)] = [
        "ro": (.readOnly, true), "rw": (.readOnly, false),
        "secure": (.insecurePort, false), "insecure": (.insecurePort, true),
        "sync": (.async, false), "async": (.async, true),
        "nohide": (.noHide, true), "hide": (.noHide, false),
        "crossmnt": (.crossMount, true), "nocrossmnt": (.crossMount, false),
        "wdelay": (.gatheredWrites, true), "no_wdelay": (.gatheredWrites, false),
        "root_squash": (.rootSquash, true), "no_root_squash": (.rootSquash, false),
        "all_squash": (.allSquash, true), "no_all_squash": (.allSquash, false),
        "subtree_check": (.noSubtreeCheck, false), "no_subtree_check": (.noSubtreeCheck, true),
        "auth_nlm": (.noAuthNLM, false), "secure_locks": (.noAuthNLM, false),
        "no_auth_nlm": (.noAuthNLM, true), "insecure_locks": (.noAuthNLM, true),
        "acl": (.noACL, false), "no_acl": (.noACL, true),
        "pnfs": (.pnfs, true), "no_pnfs": (.pnfs, false),
    ]

    /// "name=value" -> ("name", "value"); "name" -> ("name", nil).
    static func split(_ option: Substring) -> (Substring, Substring?) {
        let utf8 = option.utf8
        guard let equals = utf8.firstIndex(of: 0x3D) else { return (option, nil) }
        return (Substring(utf8[..<equals]), Substring(utf8[utf8.index(after: equals)...]))
    }

    /// strtol(…, 10) accepting the whole string: optional sign, digits,
    /// truncated to the int nfs-utils stores.
    static func parseDecimalInt32(_ text: Substring) -> Int32? {
        var digits = text[...]
        var negative = false
        if let first = digits.first, first == "-" || first == "+" {
            negative = first == "-"
            digits = digits.dropFirst()
        }
        guard !digits.isEmpty, digits.allSatisfy(\.isASCII), digits.allSatisfy(\.isNumber),
              let magnitude = Int64(digits), magnitude <= Int64(UInt32.max)
        else { return nil }
        return Int32(truncatingIfNeeded: negative ? -magnitude : magnitude)
    }

    /// strtoul(…, 0) stored in a 32-bit field, accepting the whole string:
    /// optional sign, decimal, 0x hex or 0 octal. Overflow saturates and a
    /// minus sign negates, as in C; `wrapped` says the value was not
    /// representable.
    static func parseCUnsigned(_ text: Substring) -> (value: UInt32, wrapped: Bool)? {
        var digits = text[...]
        var negative = false
        if let sign = digits.first, sign == "-" || sign == "+" {
            negative = sign == "-"
            digits = digits.dropFirst()
        }
        var radix: UInt64 = 10
        if digits.hasPrefix("0x") || digits.hasPrefix("0X") {
            radix = 16
            digits = digits.dropFirst(2)
        } else if digits.hasPrefix("0") && digits.count > 1 {
            radix = 8
            digits = digits.dropFirst()
        }
        guard !digits.isEmpty else { return nil }
        var value: UInt64 = 0
        var saturated = false
        for character in digits {
            guard let digit = character.hexDigitValue, UInt64(digit) < radix, character.isASCII else { return nil }
            let (product, overflow1) = value.multipliedReportingOverflow(by: radix)
            let (sum, overflow2) = product.addingReportingOverflow(UInt64(digit))
            if overflow1 || overflow2 { saturated = true }
            value = saturated ? .max : sum
        }
        if negative && !saturated { value = 0 &- value }
        return (UInt32(truncatingIfNeeded: value), negative || value > UInt64(UInt32.max))
    }
}
