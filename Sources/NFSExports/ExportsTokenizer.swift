/// Splits exports(5) text into logical lines of tokens the way nfs-utils'
/// xgetc/xgettok do: white space separates tokens, `\` before a newline
/// continues the line, `#` at the start of a token starts a comment, `"` quotes (and is dropped),
/// and `\ooo` is an octal byte.
struct ExportsTokenizer {
    struct Token {
        var bytes: [UInt8]
        var line: Int
        var column: Int

        var text: String { String(decoding: bytes, as: UTF8.self) }
    }

    struct Line {
        var tokens: [Token]
    }

    struct UnterminatedQuote: Error {
        var line: Int
        var column: Int
    }

    private static func isSpace(_ byte: UInt8) -> Bool {
        byte == 0x20 || byte == 0x09 || byte == 0x0A || byte == 0x0B || byte == 0x0C || byte == 0x0D
    }


    /// Tokenizes the whole text. Unterminated quotes are reported and the
    /// token ends at the end of its line.
    static func lines(of bytes: [UInt8], unterminatedQuotes: inout [UnterminatedQuote]) -> [Line] {
        var lines: [Line] = []
        var current: [Token] = []
        var index = 0
        var line = 1
        var column = 1
        let count = bytes.count

        func endLine() {
            if !current.isEmpty { lines.append(Line(tokens: current)) }
            current = []
        }
        func isContinuation(at position: Int) -> Bool {
            bytes[position] == 0x5C && position + 1 < count && bytes[position + 1] == 0x0A
        }

        while index < count {
            let byte = bytes[index]
            if isContinuation(at: index) {
                index += 2
                line += 1
                column = 1
                continue
            }
            if byte == 0x0A {
                endLine()
                index += 1
                line += 1
                column = 1
                continue
            }
            if isSpace(byte) {
                index += 1
                column += 1
                continue
            }
            if byte == 0x23 {  // '#': comment to the end of the physical line
                while index < count && bytes[index] != 0x0A { index += 1 }
                continue
            }
            var token = Token(bytes: [], line: line, column: column)
            var quoted = false
            var quoteColumn = column
            while index < count {
                let c = bytes[index]
                if c == 0x22 {  // '"'
                    quoted.toggle()
                    quoteColumn = column
                    index += 1
                    column += 1
                    continue
                }
                if c == 0x0A {
                    if quoted {
                        unterminatedQuotes.append(UnterminatedQuote(line: token.line, column: quoteColumn))
                    }
                    break
                }
                // nfs-utils 2.6: '#' inside a token is an ordinary character.
                if !quoted && (isSpace(c) || isContinuation(at: index)) { break }
                if let byte = OctalEscape.escapedByte(at: index, in: bytes) {
                    token.bytes.append(byte)
                    index += 4
                    column += 4
                    continue
                }
                token.bytes.append(c)
                index += 1
                column += 1
            }
            if quoted && index >= count {
                unterminatedQuotes.append(UnterminatedQuote(line: token.line, column: quoteColumn))
            }
            current.append(token)
        }
        endLine()
        return lines
    }
}
