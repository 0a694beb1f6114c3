import NFSExports

/// Text from files other processes write, made safe to print on a
/// terminal: a control character there (ESC starting a sequence, a newline
/// forging an output line, a carriage return overwriting one) must show as
/// what it is, not act.
public enum TerminalText {
    /// The scalars that act on a terminal: Unicode's "Cc" category, i.e.
    /// C0 (below 0x20), DEL (0x7f) and C1 (0x80-0x9f; some terminals take
    /// U+009B as CSI).
    public static func isControl(_ scalar: Unicode.Scalar) -> Bool {
        scalar.properties.generalCategory == .control
    }

    /// `text` with each control character as `\ooo` (octal, one per UTF-8
    /// byte) and backslash as `\\`, as `ls -b` prints names; nothing else
    /// changes.
    public static func escape(_ text: String) -> String {
        guard text.unicodeScalars.contains(where: { isControl($0) || $0 == "\\" }) else { return text }
        var out = ""
        for scalar in text.unicodeScalars {
            if scalar == "\\" {
                out += "\\\\"
            } else if isControl(scalar) {
                for byte in String(scalar).utf8 {
                    out += String(decoding: OctalEscape.escaped(byte), as: UTF8.self)
                }
            } else {
                out.unicodeScalars.append(scalar)
            }
        }
        return out
    }
}
