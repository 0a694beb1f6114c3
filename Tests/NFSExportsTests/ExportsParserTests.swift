import Testing
@testable import NFSExports

private let features = ExportFeatures(flags: ExportFlags(rawValue: 0x3ffff), perFlavorFlags: .perFlavor)

private func parse(_ text: String) -> ExportsParser.Output {
    ExportsParser(features: features).parse(text, file: "/etc/exports")
}

private func etab(_ text: String) -> [String] {
    let output = parse(text)
    var diagnostics = output.diagnostics
    let table = ExportTable(output.entries, diagnostics: &diagnostics)
    return table.entries.map { ETabFormat.line($0, features: features) }
}

private let defaultTail = "anonuid=65534,anongid=65534"

@Suite("exports(5) syntax")
struct ExportsSyntaxTests {
    @Test("the documented example gives flags 0x424 and the nfs-utils etab line")
    func worldReadWrite() {
        let output = parse("/export *(rw)\n")
        #expect(output.diagnostics.isEmpty)
        #expect(output.entries.count == 1)
        #expect(output.entries[0].options.flags.rawValue == 0x424)
        #expect(etab("/export *(rw)\n") == [
            "/export\t*(rw,sync,wdelay,hide,nocrossmnt,secure,root_squash,no_all_squash,no_subtree_check,secure_locks,acl,no_pnfs,anonuid=65534,anongid=65534,sec=sys,rw,secure,root_squash,no_all_squash)\n",
        ])
    }

    @Test("paths: quoted, octal-escaped, continued lines, comments", arguments: [
        ("\"/srv/my share\" *(ro)\n", "/srv/my share"),
        ("/srv/my\\040share *(ro)\n", "/srv/my share"),
        ("/srv/a\"b c\"d *(ro)\n", "/srv/ab cd"),
        ("# comment\n\n   /srv/x *(ro) # trailing\n", "/srv/x"),
        ("/srv/cont \\\n    *(ro)\n", "/srv/cont"),
        ("/srv/tab\\011x *(ro)\n", "/srv/tab\tx"),
    ])
    func paths(text: String, path: String) {
        let output = parse(text)
        #expect(!output.diagnostics.hasErrors, "\(output.diagnostics)")
        #expect(output.entries.map(\.path) == [path])
    }

    // Found by fuzz-etab: a quoted client name with a space was written to
    // etab as it is, and read back as two clients (one of them granted
    // the options of the line).
    @Test("a client name with white space is refused, in exports and in etab", arguments: [
        "/srv/a \"@group 10.0.0.1\"(rw)\n", "/srv/a\t\"@group 10.0.0.1\"(rw)\n", "/srv/a \"web\tx\"(ro)\n",
    ])
    func clientNameWithWhiteSpace(text: String) {
        for mode in [ExportsParser.Mode.exportsFile, .etab] {
            let output = ExportsParser(features: features, mode: mode).parse(text, file: "exports")
            #expect(output.entries.isEmpty, "\(mode): \(output.entries.map(\.clientName))")
            #expect(output.diagnostics.errors.contains { $0.message.contains("white space") })
        }
    }

    @Test("etab escapes white space, quotes, backslash and '#' in paths")
    func etabEscapes() {
        #expect(ETabFormat.escapePath("/a b\t\"c\\#") == "/a\\040b\\011\\042c\\134\\043")
    }

    @Test("continuation keeps the line number of later tokens")
    func continuationLines() {
        let output = parse("/srv/a \\\n  host1(rw) \\\n  bad(nope)\n")
        let error = output.diagnostics.errors.first
        #expect(error?.location.line == 3)
        #expect(error?.location.column == 7)
    }

    @Test("default option blocks apply to the clients after them")
    func defaultBlocks() {
        let output = parse("/srv/a -rw,no_root_squash 10.0.0.1 10.0.0.2(ro) -async 10.0.0.3\n")
        #expect(!output.diagnostics.hasErrors)
        let flags = output.entries.map(\.options.flags)
        #expect(flags.count == 3)
        #expect(!flags[0].contains(.readOnly) && !flags[0].contains(.rootSquash))
        #expect(flags[1].contains(.readOnly) && !flags[1].contains(.rootSquash))
        #expect(flags[2].contains(.async) && !flags[2].contains(.readOnly))
    }

    @Test("a path alone exports to the anonymous client with a warning")
    func pathAlone() {
        let output = parse("/srv/a\n")
        #expect(output.entries.map(\.client) == [.anonymous])
        #expect(output.diagnostics.warnings.count == 1)
    }

    @Test("the space-before-parenthesis trap is reported at the '('")
    func spaceTrap() {
        let output = parse("/srv/x host (rw)\n")
        #expect(output.entries.map(\.clientName) == ["host", "*"])
        #expect(output.entries[0].options.isReadOnly)
        #expect(!output.entries[1].options.isReadOnly)
        let trap = output.diagnostics.warnings.first { $0.message.contains("separated") }
        #expect(trap?.location == SourceLocation(file: "/etc/exports", line: 1, column: 13))
    }
}

@Suite("bad input")
struct BadInputTests {
    @Test("each error names the line and column", arguments: [
        ("/srv/a host(rw,bogus)\n", 1, 16, "unknown option"),
        ("/srv/a host(rw\n", 1, 12, "unterminated option list"),
        ("/srv/a host(rw)x\n", 1, 16, "unexpected text after ')'"),
        ("srv/a host(rw)\n", 1, 1, "not absolute"),
        ("/srv/a 10.0.0.0/33(rw)\n", 1, 17, "too long"),
        ("/srv/a 300.1.1.1(rw)\n", 1, 8, "malformed IPv4"),
        ("/srv/a vsock:abc(rw)\n", 1, 14, "bad vsock CID"),
        ("/srv/a vsock:(rw)\n", 1, 14, "missing vsock CID"),
        ("/srv/a vsock:9-3(rw)\n", 1, 14, "empty vsock CID range"),
        ("/srv/a vsock:4294967295(rw)\n", 1, 14, "out of range"),
        ("/srv/a host(anonuid=x)\n", 1, 13, "bad anonuid"),
        ("/srv/a host(fsid=zz)\n", 1, 13, "bad fsid"),
        ("/srv/a host(sec=krb6)\n", 1, 13, "unknown security flavor"),
        ("/srv/a host(rw,,ro)\n", 1, 16, "empty option"),
        ("/srv/a host(ro=1)\n", 1, 13, "takes no value"),
        ("/srv/a host(anonuid)\n", 1, 13, "needs a value"),
        ("\"/srv/a host(rw)\n", 1, 1, "unterminated quote"),
        ("/srv/a @(rw)\n", 1, 8, "empty netgroup"),
        ("/srv/a [ab(rw)\n", 1, 8, "unclosed '['"),
        ("/srv/a 2001:db8::/129(rw)\n", 1, 19, "too long"),
        ("/srv/a host(xprtsec=ssl)\n", 1, 13, "unknown xprtsec"),
    ])
    func errors(text: String, line: Int, column: Int, message: String) {
        let output = parse(text)
        let errors = output.diagnostics.errors
        #expect(errors.count >= 1, "no error for \(text)")
        guard let error = errors.first else { return }
        #expect(error.location.line == line)
        #expect(error.location.column == column, "\(error)")
        #expect(error.message.contains(message), "\(error.message)")
    }

    @Test("warnings that do not stop the export", arguments: [
        ("/srv/a *(rw,no_root_squash)\n", "any host can act as root"),
        ("/srv/a host(ro,rw)\n", "conflict"),
        ("/srv/a vsock:2(rw)\n", "the host itself"),
        ("/srv/a vsock:0-5(rw)\n", "CIDs 0-2 are not guests and are never matched by a range"),
        ("/srv/a vsock:0(rw)\n", "the hypervisor"),
        ("/srv/a vsock:1(rw)\n", "every process and container on this host can connect as CID 1"),
        ("/srv/a vsock:7(rw,secure)\n", "enforced only by the vsock bridge"),
        ("/srv/a host\n", "no options"),
        ("/srv/a 10.1.2.3/255.0.255.0(rw)\n", "not contiguous"),
        ("/srv/a host(fsid=4294967296)\n", "does not fit in 32 bits"),
    ])
    func warnings(text: String, message: String) {
        let output = parse(text)
        #expect(!output.diagnostics.hasErrors)
        #expect(output.diagnostics.warnings.contains { $0.message.contains(message) }, "\(output.diagnostics)")
        #expect(!output.entries.isEmpty)
    }

    @Test("sec= groups may repeat per-flavor options without a conflict warning")
    func secGroupsNoConflict() {
        let output = parse("/srv/a host(sec=krb5p,rw,sec=sys,ro)\n")
        #expect(output.diagnostics.isEmpty, "\(output.diagnostics)")
    }
}

@Suite("options")
struct OptionTests {
    @Test("each switch sets or clears its flag", arguments: ExportOptionsParser.flagOptions.map { ($0.key, $0.value.flag.rawValue, $0.value.set) })
    func switches(name: String, flag: UInt32, set: Bool) {
        let result = ExportOptionsParser(features: features).parse(name[...], onto: ExportOptions(), origin: .commandLine())
        #expect(result.diagnostics.isEmpty)
        #expect(result.options.flags.contains(ExportFlags(rawValue: flag)) == set)
    }

    @Test("fsid forms", arguments: [
        ("fsid=root", "fsid=0,"),
        ("fsid=7", "fsid=7,"),
        ("fsid=0x10", "fsid=16,"),
        ("fsid=4294967295", "fsid=-1,"),
        ("fsid=0123456789abcdef0123456789abcdef", "fsid=0123456789abcdef0123456789abcdef,"),
        ("fsid=01234567-89ab-cdef-0123-456789abcdef", "fsid=01234567-89ab-cdef-0123-456789abcdef,"),
    ])
    func fsid(option: String, written: String) {
        let result = ExportOptionsParser(features: features).parse(option[...], onto: ExportOptions(), origin: .commandLine())
        #expect(result.diagnostics.isEmpty)
        #expect(ETabFormat.options(result.options, features: features).contains(written))
    }

    @Test("etab option order and optional fields")
    func etabOrder() {
        let text = "/srv/a host(rw,async,no_wdelay,nohide,crossmnt,insecure,no_root_squash,all_squash,subtree_check,insecure_locks,no_acl,nordirplus,security_label,pnfs,fsid=3,mp=/srv,refer=/x@h,anonuid=1,anongid=2)\n"
        #expect(etab(text).first == "/srv/a\thost(rw,async,no_wdelay,nohide,crossmnt,insecure,no_root_squash,all_squash,subtree_check,insecure_locks,no_acl,nordirplus,security_label,pnfs,fsid=3,mountpoint=/srv,refer=/x@h,anonuid=1,anongid=2,sec=sys,rw,insecure,no_root_squash,all_squash)\n")
    }

    @Test("sec= clauses carry their own per-flavor flags")
    func secGroups() {
        // A flavor added by sec= starts from the export's flags at that
        // point; later options change the export and the named flavors.
        let line = etab("/srv/a host(sec=sys,rw,sec=krb5p:krb5i,ro,all_squash,xprtsec=tls:mtls)\n").first
        #expect(line?.hasPrefix("/srv/a\thost(ro,") == true)
        #expect(line?.hasSuffix(",sec=sys,rw,secure,root_squash,no_all_squash,sec=krb5p:krb5i,ro,secure,root_squash,all_squash,xprtsec=tls:mtls)\n") == true, "\(line ?? "")")
    }

    @Test("without the kernel, only ro/root_squash/all_squash show per flavor")
    func oldKernelFeatures() {
        let options = ExportOptionsParser(features: .assumedWithoutKernel).parse("rw", onto: ExportOptions(), origin: .commandLine()).options
        #expect(ETabFormat.options(options, features: .assumedWithoutKernel).hasSuffix("sec=sys,rw,root_squash,no_all_squash"))
    }
}
