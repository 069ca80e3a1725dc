import TriageCLI

#if canImport(Glibc)
    import Glibc
#elseif canImport(Darwin)
    import Darwin
#endif

exit(runCommandLine(Array(CommandLine.arguments.dropFirst())))
