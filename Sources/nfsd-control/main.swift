import NfsdControlCommand

NfsdControlCommand.entry(Array(CommandLine.arguments.dropFirst()), invokedAs: CommandLine.arguments.first ?? "nfsd-control")
