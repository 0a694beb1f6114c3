/// Parses exports(5) files (and etab, which has the same syntax) into
/// entries and diagnostics. Pure: the caller reads the file.
public struct ExportsParser: Sendable {
    public enum Mode: Sendable {
        /// /etc/exports and exports.d: every lint warning.
        case exportsFile
        /// /var/lib/nfs/etab written by a tool: no style warnings.
        case etab
    }

    public var features: ExportFeatures
    public var mode: Mode

    public init(features: ExportFeatures, mode: Mode = .exportsFile) {
        self.features = features
        self.mode = mode
    }

    public struct Output: Sendable {
        public var entries: [ExportEntry]
        public var diagnostics: [Diagnostic]

        public init(entries: [ExportEntry], diagnostics: [Diagnostic]) {
            self.entries = entries
            self.diagnostics = diagnostics
        }
    }

    public func parse(_ text: String, file: String) -> Output {
        parse(Array(text.utf8), file: file)
    }

    public func parse(_ bytes: [UInt8], file: String) -> Output {
        var quoteErrors: [ExportsTokenizer.UnterminatedQuote] = []
        let lines = ExportsTokenizer.lines(of: bytes, unterminatedQuotes: &quoteErrors)
        var diagnostics = quoteErrors.map {
            Diagnostic(.error, SourceLocation(file: file, line: $0.line, column: $0.column),
                       "unterminated quote", hint: "close the quoted path with '\"'")
        }
        var entries: [ExportEntry] = []
        let optionsParser = ExportOptionsParser(features: features)
        for line in lines {
            parseLine(line, file: file, optionsParser: optionsParser, into: &entries, diagnostics: &diagnostics)
        }
        return Output(entries: entries, diagnostics: diagnostics)
    }

    /// One logical line: `<path> [-defaults] client(opts) ...`.
    private func parseLine(_ line: ExportsTokenizer.Line, file: String, optionsParser: ExportOptionsParser,
                           into entries: inout [ExportEntry], diagnostics: inout [Diagnostic]) {
        let pathToken = line.tokens[0]
        let pathLocation = SourceLocation(file: file, line: pathToken.line, column: pathToken.column)
        let path = pathToken.text
        if path.first != "/" {
            diagnostics.append(Diagnostic(.error, pathLocation, "export path \"\(path)\" is not absolute",
                                          hint: "export paths start with '/'"))
            return
        }
        if pathToken.bytes.count > 4095 {
            diagnostics.append(Diagnostic(.error, pathLocation, "export path is longer than 4095 bytes"))
            return
        }
        if pathToken.bytes.contains(0) {
            diagnostics.append(Diagnostic(.error, pathLocation, "export path contains a NUL byte"))
            return
        }

        var defaults = ExportOptions()
        var hasDefaults = false
        let clientTokens = line.tokens.dropFirst()

        func addEntry(clientText: Substring, clientColumn: Int, token: ExportsTokenizer.Token,
                      optionsText: Substring?, optionsColumn: Int) {
            let location = SourceLocation(file: file, line: token.line, column: clientColumn)
            let client: ClientSpec
            switch ClientSpec.parse(clientText) {
            case .success(let spec):
                client = spec
            case .failure(let error):
                let at = SourceLocation(file: file, line: token.line, column: clientColumn + error.offset)
                diagnostics.append(Diagnostic(.error, at, error.message, hint: error.hint))
                return
            }
            var options = defaults
            var written: [(name: String, location: SourceLocation)] = []
            if let optionsText {
                let result = optionsParser.parse(optionsText, onto: defaults,
                                                 origin: SourceLocation(file: file, line: token.line, column: optionsColumn))
                diagnostics += result.diagnostics
                if result.diagnostics.hasErrors { return }
                options = result.options
                written = result.written
            }
            let entry = ExportEntry(path: path, client: client, clientName: String(clientText), options: options, location: location)
            if mode == .exportsFile {
                diagnostics += ExportsLint.check(entry, written: written)
            }
            entries.append(entry)
        }

        if clientTokens.isEmpty {
            if mode == .exportsFile {
                diagnostics.append(Diagnostic(.warning, pathLocation, "no client given for \(path): it is exported to every IP client with the default options",
                                              hint: "write *(ro) to say so, or name the clients"))
            }
            addEntry(clientText: "", clientColumn: pathToken.column, token: pathToken, optionsText: nil, optionsColumn: 0)
            return
        }

        var previousWasBareHost = false
        for (position, token) in zip(clientTokens.indices, clientTokens) {
            let text = token.text
            if text.hasPrefix("-") {
                let result = optionsParser.parse(text.dropFirst()[...], onto: defaults,
                                                 origin: SourceLocation(file: file, line: token.line, column: token.column + 1))
                diagnostics += result.diagnostics
                if result.diagnostics.hasErrors { return }
                defaults = result.options
                hasDefaults = true
                previousWasBareHost = false
                if position == clientTokens.index(before: clientTokens.endIndex) {
                    // nfs-utils reads a missing client after a defaults block
                    // as the anonymous client.
                    if mode == .exportsFile {
                        diagnostics.append(Diagnostic(.warning, SourceLocation(file: file, line: token.line, column: token.column),
                                                      "default options at the end of the line export \(path) to every IP client",
                                                      hint: "put the -options block before the clients it applies to"))
                    }
                    addEntry(clientText: "", clientColumn: token.column, token: token, optionsText: nil, optionsColumn: 0)
                }
                continue
            }
            guard let open = text.utf8.firstIndex(of: 0x28) else {  // "("
                let nextStartsWithParen = clientTokens.index(after: position) < clientTokens.endIndex
                    && clientTokens[clientTokens.index(after: position)].text.hasPrefix("(")
                if mode == .exportsFile && !hasDefaults && !nextStartsWithParen {
                    diagnostics.append(Diagnostic(.warning, SourceLocation(file: file, line: token.line, column: token.column),
                                                  "no options for \(text):\(path): the defaults apply (ro,sync,root_squash,...)",
                                                  hint: "write \(text)(ro) or \(text)(rw) to say which"))
                }
                addEntry(clientText: text[...], clientColumn: token.column, token: token, optionsText: nil, optionsColumn: 0)
                previousWasBareHost = true
                continue
            }
            let clientText = text[..<open]
            let afterOpen = text[text.index(after: open)...]
            let openColumn = token.column + text.utf8.distance(from: text.startIndex, to: open)
            guard let close = afterOpen.utf8.firstIndex(of: 0x29) else {  // ")"
                diagnostics.append(Diagnostic(.error, SourceLocation(file: file, line: token.line, column: openColumn),
                                              "unterminated option list \"\(text)\"",
                                              hint: "close it with ')' and put no spaces inside the parentheses"))
                return
            }
            if afterOpen.utf8.index(after: close) != afterOpen.endIndex {
                let closeColumn = token.column + text.utf8.distance(from: text.startIndex, to: close)
                diagnostics.append(Diagnostic(.error, SourceLocation(file: file, line: token.line, column: closeColumn + 1),
                                              "unexpected text after ')' in \"\(text)\"",
                                              hint: "separate clients with white space"))
                return
            }
            var effectiveClient = clientText
            // nfs-utils reads "(opts)" as "*(opts)"; etab keeps an empty
            // client name (a path listed alone) so it reads back unchanged.
            if clientText.isEmpty && mode == .exportsFile {
                effectiveClient = "*"
                if mode == .exportsFile {
                    let location = SourceLocation(file: file, line: token.line, column: token.column)
                    if previousWasBareHost, let previous = clientTokens[..<position].last {
                        diagnostics.append(Diagnostic(.warning, location,
                                                      "\"\(text)\" is separated from \"\(previous.text)\" by a space: \(previous.text) gets the default options and \(text) applies to the whole world",
                                                      hint: "write \(previous.text)\(text) without the space"))
                    } else {
                        diagnostics.append(Diagnostic(.warning, location,
                                                      "no client before \"\(text)\": it applies to the whole world",
                                                      hint: "write *\(text) to say so"))
                    }
                }
            }
            addEntry(clientText: effectiveClient, clientColumn: token.column, token: token,
                     optionsText: afterOpen[..<close], optionsColumn: openColumn + 1)
            previousWasBareHost = false
        }
    }
}
