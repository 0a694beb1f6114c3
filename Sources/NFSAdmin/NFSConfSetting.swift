import NFSExports

/// How every tool merges nfs.conf with its command line: a setting is the
/// command line's value when one was given, else the value of
/// `[section] key` in nfs.conf (nfs.conf.d merged, as `NFSConf.load` does),
/// else the tool's default. A value nfs.conf holds but the type cannot
/// read is an error naming where it is ("FILE:LINE: [section] key:
/// problem"); one the command line overrides is not read at all, as
/// nfs-utils' tools overwrite their nfs.conf settings with the options.
extension NFSConf {
    /// A bad value in nfs.conf.
    public struct Problem: Error, Sendable, Equatable, CustomStringConvertible {
        public var file: String
        public var line: Int
        public var section: String
        public var key: String
        /// What is wrong, e.g. `expected y or n, got "maybe"`.
        public var problem: String

        public init(file: String, line: Int, section: String, key: String, problem: String) {
            self.file = file
            self.line = line
            self.section = section
            self.key = key
            self.problem = problem
        }

        public var description: String { "\(file):\(line): [\(section)] \(key): \(problem)" }
    }

    /// Why a text is not a value of an NFSConfType; `value(_:_:as:)` adds
    /// where it is.
    public typealias Mismatch = NFSExports.Problem

    /// `[section] key` read as `type`; nil when nfs.conf does not set it.
    public func value<Value>(_ section: String, _ key: String, as type: NFSConfType<Value>) throws(Problem) -> Value? {
        guard let raw = value(section, key) else { return nil }
        do {
            return try type.read(raw.text)
        } catch {
            throw Problem(file: raw.file, line: raw.line, section: section.lowercased(), key: key.lowercased(), problem: error.message)
        }
    }

    /// The command line's value, else nfs.conf's, else `default`.
    public func resolve<Value>(_ section: String, _ key: String, as type: NFSConfType<Value>,
                               commandLine: Value? = nil, default defaultValue: Value) throws(Problem) -> Value {
        if let commandLine { return commandLine }
        return try value(section, key, as: type) ?? defaultValue
    }

    /// The command line's value, else nfs.conf's, else nil (the tool's
    /// default then applies, or nothing is set).
    public func resolve<Value>(_ section: String, _ key: String, as type: NFSConfType<Value>,
                               commandLine: Value? = nil) throws(Problem) -> Value? {
        if let commandLine { return commandLine }
        return try value(section, key, as: type)
    }
}

/// What the text of an nfs.conf value must be, and the value it stands
/// for. Pure.
public struct NFSConfType<Value>: Sendable {
    public typealias Mismatch = NFSConf.Mismatch

    public let read: @Sendable (String) throws(Mismatch) -> Value

    public init(read: @escaping @Sendable (String) throws(Mismatch) -> Value) {
        self.read = read
    }

    /// The same text read further, e.g. a list of words into ports.
    public func map<Other>(_ transform: @escaping @Sendable (Value) throws(Mismatch) -> Other) -> NFSConfType<Other> {
        let read = self.read
        return NFSConfType<Other> { (text: String) throws(Mismatch) -> Other in try transform(read(text)) }
    }
}

extension NFSConfType where Value == String {
    /// Any text, as written (quotes already removed).
    public static var text: NFSConfType<String> { NFSConfType { $0 } }
}

extension NFSConfType where Value == [String] {
    /// Words separated by blanks or commas ("2049, 3049" or "a b").
    public static var words: NFSConfType<[String]> {
        NFSConfType { $0.split(whereSeparator: { $0 == " " || $0 == "," }).map(String.init) }
    }
}

extension NFSConfType where Value == Bool {
    /// The words nfs-utils' conf_get_bool takes, any case: y, yes, t,
    /// true, on, 1 and n, no, f, false, off, 0. Where nfs-utils falls back
    /// to the default for any other word, this reports it.
    public static var boolean: NFSConfType<Bool> {
        NFSConfType { (text: String) throws(Mismatch) -> Bool in
            guard let value = NFSConf.boolean(text) else { throw Mismatch("expected y or n, got \"\(text)\"") }
            return value
        }
    }
}

extension NFSConfType where Value == Int {
    /// A decimal number in `range`.
    public static func integer(_ range: ClosedRange<Int>) -> NFSConfType<Int> {
        NFSConfType { (text: String) throws(Mismatch) -> Int in
            guard let value = Int(text), range.contains(value) else {
                throw Mismatch("expected a number from \(range.lowerBound) to \(range.upperBound), got \"\(text)\"")
            }
            return value
        }
    }

    /// A decimal number of at least `minimum`, with no upper bound.
    public static func integer(atLeast minimum: Int) -> NFSConfType<Int> {
        NFSConfType { (text: String) throws(Mismatch) -> Int in
            guard let value = Int(text), value >= minimum else {
                throw Mismatch("expected a number of \(minimum) or more, got \"\(text)\"")
            }
            return value
        }
    }
}

extension NFSConfType where Value == [UInt32] {
    /// vsock ports (1 to 4294967294), separated by blanks or commas.
    public static var vsockPorts: NFSConfType<[UInt32]> {
        NFSConfType<[String]>.words.map { (words: [String]) throws(Mismatch) -> [UInt32] in
            try words.map { (word: String) throws(Mismatch) -> UInt32 in
                guard let port = UInt32(word), port > 0, port < UInt32.max else { throw Mismatch("bad vsock port \"\(word)\"") }
                return port
            }
        }
    }
}

extension NFSConfType where Value == VsockLoopbackMapping {
    /// [vsock] loopback-block: the block bridged guests' addresses come from.
    public static var loopbackBlock: NFSConfType<VsockLoopbackMapping> {
        NFSConfType { (text: String) throws(Mismatch) -> VsockLoopbackMapping in
            switch VsockLoopbackMapping.parse(text) {
            case .success(let mapping): return mapping
            case .failure(let problem): throw Mismatch("\(problem)")
            }
        }
    }
}
