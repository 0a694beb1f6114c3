import ArgumentParser
import NFSAdmin
import NFSExports

#if canImport(Glibc)
import Glibc
#endif

/// `exportfs`: maintain the table of exported filesystems.
public struct ExportfsCommand: ParsableCommand {
    public static let configuration = CommandConfiguration(
        commandName: "exportfs",
        abstract: "Maintain the table of exported NFS file systems (/var/lib/nfs/etab).",
        discussion: """
            With no arguments, lists the current exports. -a and -r apply /etc/exports and /etc/exports.d/*.exports; client:/path arguments export (or, with -u, unexport) one entry. Clients may be IP hosts, networks, wildcards, @netgroups, * (every IP client, never a vsock guest) and vsock guests: vsock:5, vsock:3-9, vsock:*.

            Examples: exportfs -ra; exportfs -o rw vsock:5:/srv/vm5; exportfs -u vsock:5:/srv/vm5. See exportfs(8) and exports(5).
            """)

    @Flag(name: .customShort("a"), help: "Export or unexport all directories.")
    var all = false

    @Flag(name: .customShort("r"), help: "Reexport all directories: make etab match /etc/exports exactly.")
    var reexport = false

    @Flag(name: .customShort("u"), help: "Unexport the given client:/path entries (with -a: all).")
    var unexport = false

    @Flag(name: .customShort("i"), help: "Ignore /etc/exports and /etc/exports.d: use only the command line.")
    var ignoreExportsFile = false

    @Option(name: .customShort("o"), help: ArgumentHelp("Options for the client:/path arguments, as in exports(5).", valueName: "options"))
    var options: String?

    @Flag(name: .customShort("v"), help: "Be verbose: say what is exported; list exports with their options.")
    var verbose = false

    @Flag(name: .customShort("s"), help: "List the current exports in /etc/exports format.")
    var exportsFormat = false

    @Flag(name: .customShort("f"), help: "Flush the kernel's export caches.")
    var flush = false

    @Option(name: .customShort("d"), help: ArgumentHelp("Debug output for a facility (accepted for compatibility: all, auth, call, general, parse).", valueName: "kind"))
    var debug: String?

    @Flag(name: .long, help: "Check the exports files (or the FILE arguments) and print every diagnostic; change nothing. Exit 1 on any error.")
    var check = false

    @Flag(name: .long, help: "With -v (or alone): list the export table as JSON for management tools.")
    var json = false

    @Argument(help: ArgumentHelp("client:/path entries ([v6addr]:/path, vsock:N:/path); with --check: exports files.", valueName: "client:/path"))
    var arguments: [String] = []

    public init() {}

    public mutating func validate() throws {
        if reexport { all = true }
        if check { return }
        if !arguments.isEmpty && all {
            throw ValidationError("-a (or -r) and client:/path arguments are mutually exclusive")
        }
        if ignoreExportsFile && (all || unexport) {
            throw ValidationError("-i is not meaningful with -a, -r or -u")
        }
        if reexport && unexport {
            throw ValidationError("-r and -u are incompatible")
        }
        if options != nil && (unexport || arguments.isEmpty) {
            throw ValidationError("-o applies only when exporting client:/path arguments")
        }
    }

    public func run() throws {
        let environment = ProcessEnvironment.current
        var paths = SystemPaths.fromEnvironment(environment)
        let conf = NFSConf.load(paths: paths)
        if let state = try conf.resolve("exportfs", "state-directory-path", as: .text) {
            paths = SystemPaths(root: paths.root.isEmpty ? "/" : paths.root, stateDirectory: state)
        }
        let exportfs = Exportfs(paths: paths, verbose: verbose, output: StandardStreams())
        let status: Int32
        if check {
            status = exportfs.check(files: arguments)
        } else {
            status = exportfs.run(Exportfs.Request(
                all: all, reexport: reexport, unexport: unexport, ignoreExportsFile: ignoreExportsFile,
                options: options, flush: flush, exportsFormat: exportsFormat, json: json, arguments: arguments))
        }
        if status != 0 { throw ExitCode(status) }
    }
}

