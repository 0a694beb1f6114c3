import NfsdControlCommand

NfsdControlCommand.entry(Array(CommandLine.arguments.dropFirst()))
