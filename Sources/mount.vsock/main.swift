import GuestMount

#if canImport(Glibc)
import Glibc
#endif

exit(MountVsock.main(Array(CommandLine.arguments.dropFirst())))
