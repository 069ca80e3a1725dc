#if canImport(Glibc)
    import Glibc
#elseif canImport(Darwin)
    import Darwin
#endif

/// Where a report goes: standard output or a file. Writes as it goes, so a long run's
/// report streams instead of piling up in memory.
public final class ReportOutput {
    private let file: UnsafeMutablePointer<FILE>
    private let owned: Bool
    public let isTerminal: Bool
    public let path: String?

    /// Standard output through a stream of our own (the C `stdout` global is not
    /// concurrency-safe to touch from Swift 6).
    public static func standardOutput() -> ReportOutput {
        guard let f = fdopen(STDOUT_FILENO, "w") ?? fopen("/dev/null", "w") else { fatalError("no file descriptors left") }
        return ReportOutput(file: f, owned: false, path: nil)
    }

    /// Opens (truncates) `path` for writing.
    public static func file(_ path: String) throws -> ReportOutput {
        guard let f = fopen(path, "w") else {
            throw ReportError.cannotWrite(path: path, reason: String(cString: strerror(errno)))
        }
        return ReportOutput(file: f, owned: true, path: path)
    }

    init(file: UnsafeMutablePointer<FILE>, owned: Bool, path: String?) {
        self.file = file
        self.owned = owned
        self.path = path
        isTerminal = isatty(fileno(file)) != 0
    }

    deinit {
        fflush(file)
        if owned { fclose(file) }
    }

    public func write(_ s: String) {
        var s = s
        s.withUTF8 { buf in _ = fwrite(buf.baseAddress, 1, buf.count, file) }
    }

    public func write(bytes: UnsafeRawBufferPointer) {
        _ = fwrite(bytes.baseAddress, 1, bytes.count, file)
    }

    public func write(bytes: [UInt8]) {
        bytes.withUnsafeBufferPointer { buf in _ = fwrite(buf.baseAddress, 1, buf.count, file) }
    }

    public func line(_ s: String = "") {
        write(s)
        fputc(0x0A, file)
    }

    public func flush() { fflush(file) }
}

public enum ReportError: Error, CustomStringConvertible {
    case cannotWrite(path: String, reason: String)

    public var description: String {
        switch self {
        case .cannotWrite(let path, let reason): "\(path): cannot write report: \(reason)"
        }
    }
}
