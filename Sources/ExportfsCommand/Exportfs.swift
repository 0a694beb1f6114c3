import NFSAdmin
import NFSExports

#if canImport(Glibc)
import Glibc
#endif

/// exportfs's behaviour, separate from its command line: the same steps as
/// nfs-utils' exportfs, with every exports-file error found before anything
/// is written.
public struct Exportfs {
    public var paths: SystemPaths
    public var verbose: Bool
    public var output: any ExportfsOutput
    public var clock: () -> Int

    public init(paths: SystemPaths, verbose: Bool, output: any ExportfsOutput, clock: @escaping () -> Int = { Int(time(nil)) }) {
        self.paths = paths
        self.verbose = verbose
        self.output = output
        self.clock = clock
    }

    public struct Request {
        public var all = false
        public var reexport = false
        public var unexport = false
        public var ignoreExportsFile = false
        public var options: String? = nil
        public var flush = false
        public var exportsFormat = false
        public var json = false
        public var arguments: [String] = []

        public init(all: Bool = false, reexport: Bool = false, unexport: Bool = false, ignoreExportsFile: Bool = false,
                    options: String? = nil, flush: Bool = false, exportsFormat: Bool = false, json: Bool = false,
                    arguments: [String] = []) {
            self.all = all || reexport
            self.reexport = reexport
            self.unexport = unexport
            self.ignoreExportsFile = ignoreExportsFile
            self.options = options
            self.flush = flush
            self.exportsFormat = exportsFormat
            self.json = json
            self.arguments = arguments
        }
    }

    func error(_ message: String) { output.err("exportfs: \(message)\n") }

    func report(_ diagnostics: [Diagnostic]) {
        for diagnostic in diagnostics { output.err("exportfs: \(diagnostic)\n") }
    }

    // MARK: --check

    /// Parses and lints; prints every diagnostic; 1 if any error.
    public func check(files: [String]) -> Int32 {
        let kernel = KernelExports(paths: paths)
        let loader = ExportsLoader(paths: paths, features: kernel.features())
        let list: [String]
        do {
            list = files.isEmpty ? try loader.configuredFiles() : files
        } catch {
            self.error("\(error)")
            return 1
        }
        var parsed = loader.parse(files: list)
        if !parsed.diagnostics.hasErrors {
            _ = loader.table(from: parsed.entries, diagnostics: &parsed.diagnostics)
        }
        report(parsed.diagnostics)
        let errors = parsed.diagnostics.errors.count
        let warnings = parsed.diagnostics.warnings.count
        output.err("exportfs: checked \(list.count) file\(list.count == 1 ? "" : "s"), \(parsed.entries.count) entr\(parsed.entries.count == 1 ? "y" : "ies"): \(errors) error\(errors == 1 ? "" : "s"), \(warnings) warning\(warnings == 1 ? "" : "s")\n")
        return errors > 0 ? 1 : 0
    }

    // MARK: the main flow

    public func run(_ request: Request) -> Int32 {
        let kernel = KernelExports(paths: paths)
        let features = kernel.features()
        let store = ETabStore(paths: paths, features: features)

        // No work: list (or just flush).
        if request.arguments.isEmpty && !request.all {
            if request.flush { return flush(kernel) }
            do {
                let current = try store.read()
                var diagnostics = current.diagnostics
                let table = ExportTable(current.entries, diagnostics: &diagnostics)
                if request.json {
                    output.out(ExportTableJSON.render(table, features: features))
                } else {
                    output.out(ExportListing.render(table, verbose: verbose, exportsFormat: request.exportsFormat))
                }
                return 0
            } catch {
                self.error("\(error)")
                return 1
            }
        }

        let loader = ExportsLoader(paths: paths, features: features)
        var diagnostics: [Diagnostic] = []
        var status: Int32 = 0

        // Everything that can be wrong with the input is found first.
        var configured = ExportTable()
        if !request.unexport && !request.ignoreExportsFile {
            let files: [String]
            do {
                files = try loader.configuredFiles()
            } catch {
                self.error("\(error)")
                return 1
            }
            let parsed = loader.parse(files: files)
            diagnostics += parsed.diagnostics
            if parsed.diagnostics.hasErrors {
                report(diagnostics)
                self.error("no changes made to \(paths.unrooted(paths.etab)): fix the errors above")
                return 1
            }
            configured = loader.table(from: parsed.entries, diagnostics: &diagnostics)
            if diagnostics.hasErrors {
                report(diagnostics)
                self.error("no changes made to \(paths.unrooted(paths.etab)): fix the errors above")
                return 1
            }
            // As nfs-utils: duplicates still export the first entry, but the
            // run fails so scripts notice.
            if configured.duplicates > 0 { status = 1 }
        }
        var commandLine: [ExportEntry] = []
        var targets: [(client: ClientSpec, clientName: String, path: String)] = []
        if !request.all {
            for argument in request.arguments {
                switch ExportArgument.parse(argument) {
                case .failure(let problem):
                    diagnostics.append(Diagnostic(.error, .commandLine(), problem.message))
                case .success(let target):
                    targets.append(target)
                }
            }
            if !request.unexport {
                for target in targets {
                    var entry = configured.entry(clientName: target.clientName, path: target.path)
                        ?? ExportEntry(path: target.path, client: target.client, clientName: target.clientName,
                                       options: ExportOptions(), location: .commandLine())
                    if let text = request.options {
                        let result = ExportOptionsParser(features: features)
                            .parse(text[...], onto: entry.options, origin: .commandLine())
                        diagnostics += result.diagnostics
                        entry.options = result.options
                    }
                    commandLine.append(entry)
                }
                commandLine = loader.resolve(commandLine, diagnostics: &diagnostics)
            }
            if diagnostics.hasErrors {
                report(diagnostics)
                return 1
            }
        }
        if diagnostics.hasErrors {
            report(diagnostics)
            return 1
        }

        // Guests whose last export this run removed (exportfs -u vsock:N:/path).
        var guestsLeft: Set<VsockCID> = []
        // Read-modify-write of etab under its lock.
        do {
            let lock = try store.lock()
            defer { lock.unlock() }
            var table = ExportTable()
            var exported: [ExportEntry] = []
            var unexportedGuests: Set<VsockCID> = []
            if request.reexport && !request.unexport {
                // -r: the table is what the files configure, nothing else;
                // taken whole rather than rebuilt entry by entry (at 10,000
                // exports each copy is about 10 MB).
                table = configured
                configured = ExportTable()
                if verbose { for entry in table.orderedEntries { output.out("exporting \(entry.displayName)\n") } }
            } else if !(request.unexport && request.all) {
                let current = try store.read()
                diagnostics += current.diagnostics
                table = ExportTable(current.entries, diagnostics: &diagnostics)
            }
            if !request.unexport && !request.reexport {
                if request.all {
                    for entry in configured.orderedEntries {
                        if verbose { output.out("exporting \(entry.displayName)\n") }
                        table.upsert(entry)
                    }
                } else {
                    for entry in commandLine {
                        if verbose { output.out("exporting \(entry.displayName)\n") }
                        table.upsert(entry)
                    }
                    exported = commandLine
                }
            } else if request.unexport && !request.all {
                for target in targets {
                    let name = loader.resolve([ExportEntry(path: target.path, client: target.client, clientName: target.clientName,
                                                           options: ExportOptions(), location: .commandLine())],
                                              diagnostics: &diagnostics).first
                    let removed = table.remove(clientName: name?.clientName ?? target.clientName, path: name?.path ?? target.path)
                    if removed > 0, case .vsock(let cid) = target.client { unexportedGuests.insert(cid) }
                    if removed == 0 {
                        diagnostics.append(Diagnostic(.error, .commandLine(), "could not find '\(target.clientName):\(target.path)' to unexport"))
                        status = 1
                    } else if verbose {
                        output.out("unexporting \(target.clientName):\(target.path)\n")
                    }
                }
            }
            // Trial-export what is being exported: a path the kernel cannot
            // export is left out rather than half-exported.
            let (refused, unreachable) = request.unexport ? ([], false)
                : request.reexport ? validate(table.orderedEntries, kernel: kernel, diagnostics: &diagnostics)
                : request.all ? validate(configured.orderedEntries, kernel: kernel, diagnostics: &diagnostics)
                : validate(exported, kernel: kernel, diagnostics: &diagnostics)
            if unreachable { status = 1 }
            for entry in refused {
                table.remove(clientName: entry.clientName, path: entry.path)
                status = 1
            }
            report(diagnostics)
            try store.write(table)
            guestsLeft = unexportedGuests.filter { cid in !table.orderedEntries.contains { Self.grants($0.client, to: cid) } }
        } catch {
            report(diagnostics)
            self.error("\(error)")
            return 1
        }
        if flush(kernel) != 0 { status = 1 }
        if release(guestsLeft.sorted()) != 0 { status = 1 }
        return status
    }

    /// exportfs's checks of a path before exporting it. Returns the entries
    /// the kernel refuses, and whether a path is missing or not a directory
    /// or file (exported all the same, as nfs-utils does, but the run fails).
    func validate<Entries: Sequence<ExportEntry>>(_ entries: Entries, kernel: KernelExports, diagnostics: inout [Diagnostic]) -> (refused: [ExportEntry], unreachable: Bool) {
        var refused: [ExportEntry] = []
        var unreachable = false
        var iterator = entries.makeIterator()
        let canProbe = iterator.next() != nil && kernel.canProbe()
        var probed: [String: KernelExports.ProbeResult] = [:]
        // One stat(2) per path, however many clients it has.
        var stated: [String: (info: stat, errno: Int32)] = [:]
        for entry in entries {
            let status: (info: stat, errno: Int32)
            if let known = stated[entry.path] {
                status = known
            } else {
                var info = stat()
                status = stat(paths.underRoot(entry.path), &info) == 0 ? (info, 0) : (info, errno)
                stated[entry.path] = status
            }
            let info = status.info
            if status.errno != 0 {
                diagnostics.append(Diagnostic(.warning, entry.location, "cannot stat \(entry.path): \(SystemError.describe(status.errno)); clients will not be able to mount it"))
                unreachable = true
                continue
            }
            let type = info.st_mode & S_IFMT
            if type != S_IFDIR && type != S_IFREG {
                diagnostics.append(Diagnostic(.warning, entry.location, "\(entry.path) is neither a directory nor a file; remote access will fail"))
                unreachable = true
                continue
            }
            guard canProbe else { continue }
            let hasFSID = entry.options.filesystemID != nil
            let key = "\(entry.path)\u{0}\(entry.options.flags.rawValue)\u{0}\(hasFSID)"
            let result = probed[key] ?? kernel.probe(path: entry.path, flags: entry.options.flags, hasFSID: hasFSID)
            probed[key] = result
            switch result {
            case .exportable:
                break
            case .needsFSID:
                diagnostics.append(Diagnostic(.error, entry.location,
                    "\(entry.path) requires fsid= for NFS export: its filesystem has no device number (tmpfs, overlay, 9p); \(entry.displayName) not exported",
                    hint: "add fsid=<number> or fsid=<uuid> to its options"))
                refused.append(entry)
            case .notExportable(let errno):
                diagnostics.append(Diagnostic(.error, entry.location,
                    "\(entry.path) does not support NFS export (the kernel said: \(SystemError.describe(errno))); \(entry.displayName) not exported"))
                refused.append(entry)
            }
        }
        return (refused, unreachable)
    }

    /// Whether an export to `client` still gives guest `cid` access.
    static func grants(_ client: ClientSpec, to cid: VsockCID) -> Bool {
        switch client {
        case .vsock(let other): other == cid
        case .vsockRange(let low, let high): (low...high).contains(cid)
        case .vsockAny: cid >= 3
        default: false
        }
    }

    /// A guest left without any export (its last one unexported) keeps no
    /// state either: what nfsd-control release-guest does, once the
    /// caches no longer grant it anything.
    func release(_ guests: [VsockCID]) -> Int32 {
        var status: Int32 = 0
        for cid in guests {
            do throws(GuestRelease.Problem) {
                let report = try GuestRelease(paths: paths).release(cid: cid)
                if verbose || !report.expiredClients.isEmpty || report.connectionsBefore > 0 {
                    output.err("exportfs: vsock:\(cid) has no export left: released \(report.text)\n")
                }
                if !report.problems.isEmpty { status = 1 }
            } catch {
                // No bridge path here: no guest state to release.
                if verbose { output.err("exportfs: vsock:\(cid) has no export left; \(error)\n") }
            }
        }
        return status
    }

    func flush(_ kernel: KernelExports) -> Int32 {
        guard kernel.hasCacheChannels else {
            if !kernel.isNFSDMounted {
                output.err("exportfs: note: the kernel NFS server is not loaded here (no /proc/net/rpc/nfsd.export): wrote \(paths.unrooted(paths.etab)) only, no caches flushed, no trial exports\n")
            }
            return 0
        }
        do {
            try kernel.flushCaches(now: clock())
        } catch {
            self.error("cannot flush the kernel caches: \(error)")
            return 1
        }
        // The nfsd that serves bridged vsock guests has caches of its own,
        // in the bridge's namespace: a revoked guest must lose access there too.
        do {
            try BridgeNamespace(paths: paths).flushCaches(now: clock())
        } catch {
            self.error("cannot flush the caches of the vsock bridge's nfsd (network namespace \(BridgeNamespace.name)): \(error); guests keep what they had until the cache entries expire")
            return 1
        }
        return 0
    }
}

/// `client:/path` on the command line: `host:/p`, `[v6addr]:/p`,
/// `vsock:5:/p`, `vsock:*:/p`.
enum ExportArgument {
    typealias Problem = NFSExports.Problem

    static func parse(_ argument: String) -> Result<(client: ClientSpec, clientName: String, path: String), Problem> {
        let clientText: Substring
        let path: Substring
        if argument.hasPrefix("[") {
            guard let close = argument.firstIndex(of: "]"),
                  argument[argument.index(after: close)...].hasPrefix(":")
            else { return .failure(Problem(message: "invalid export \"\(argument)\": write [IPv6-address]:/path")) }
            clientText = argument[argument.index(after: argument.startIndex)..<close]
            path = argument[argument.index(close, offsetBy: 2)...]
        } else if argument.lowercased().hasPrefix(ClientSpec.vsockPrefix) {
            let rest = argument.dropFirst(ClientSpec.vsockPrefix.count)
            guard let colon = rest.firstIndex(of: ":") else {
                return .failure(Problem(message: "invalid export \"\(argument)\": write vsock:<cid>:/path"))
            }
            clientText = argument[..<colon]
            path = rest[rest.index(after: colon)...]
        } else {
            guard let colon = argument.firstIndex(of: ":") else {
                return .failure(Problem(message: "invalid export \"\(argument)\": write client:/path"))
            }
            clientText = argument[..<colon]
            path = argument[argument.index(after: colon)...]
        }
        guard path.hasPrefix("/") else {
            return .failure(Problem(message: "invalid export \"\(argument)\": the path must be absolute"))
        }
        switch ClientSpec.parse(clientText) {
        case .failure(let error):
            return .failure(Problem(message: "invalid client in \"\(argument)\": \(error.message)"))
        case .success(let spec):
            let name = spec.isVsock ? spec.canonicalText : (clientText.isEmpty ? "*" : String(clientText))
            return .success((spec, name, String(path)))
        }
    }
}
