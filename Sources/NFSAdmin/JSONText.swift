/// JSON string literals without Foundation.
public enum JSONText {
    /// `text` as a JSON string literal: quotes, backslashes and control
    /// characters (C0, DEL, C1) escaped.
    public static func quote(_ text: String) -> String {
        var out = "\""
        for scalar in text.unicodeScalars {
            switch scalar {
            case "\"": out += "\\\""
            case "\\": out += "\\\\"
            case "\n": out += "\\n"
            case "\t": out += "\\t"
            case "\r": out += "\\r"
            default:
                // JSON requires only C0 escaped; DEL and C1 too, so that
                // the output has no byte a terminal would act on.
                if TerminalText.isControl(scalar) {
                    let hex = String(scalar.value, radix: 16)
                    out += "\\u" + String(repeating: "0", count: 4 - hex.count) + hex
                } else {
                    out.unicodeScalars.append(scalar)
                }
            }
        }
        return out + "\""
    }
}
