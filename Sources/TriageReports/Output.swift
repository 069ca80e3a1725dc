#if canImport(Glibc)
    import Glibc
#elseif canImport(Darwin)
    import Darwin
#endif

/// Where a report goes: standard output or a file. Writes as it goes, so a long run's
/// report streams instead of piling up in memory.
///
/// Every write is checked: the first failure (a full disk, a closed pipe) is kept, later
/// writes are skipped, and `finish()` hands it back so the run can say the report is
/// incomplete instead of ending as if it were whole.
public final class ReportOutput {
    private let file: UnsafeMutablePointer<FILE>
    private let owned: Bool
    private var closed = false
    public let isTerminal: Bool
    /// A terminal, pipe or socket: a reader waits for each line, where a file only needs whole buffers.
    public let isStream: Bool
    public let path: String?
    /// The `errno` of the first write that failed.
    public private(set) var failure: Int32?

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

    /// Writes to a descriptor the caller opened (`path` names it in messages); the output
    /// owns the descriptor from here on, also when this throws.
    public static func file(descriptor: Int32, path: String) throws -> ReportOutput {
        guard let f = fdopen(descriptor, "w") else {
            let e = errno
            close(descriptor)
            throw ReportError.cannotWrite(path: path, reason: String(cString: strerror(e)))
        }
        return ReportOutput(file: f, owned: true, path: path)
    }

    init(file: UnsafeMutablePointer<FILE>, owned: Bool, path: String?) {
        self.file = file
        self.owned = owned
        self.path = path
        isTerminal = isatty(fileno(file)) != 0
        var st = stat()
        let kind = fstat(fileno(file), &st) == 0 ? st.st_mode & S_IFMT : 0
        isStream = isTerminal || kind == S_IFIFO || kind == S_IFSOCK
    }

    deinit {
        if !closed {
            fflush(file)
            if owned { fclose(file) }
        }
    }

    /// Keeps the first failure; stdio sets `errno` when its write(2) fails.
    private func check(_ ok: Bool) {
        if !ok && failure == nil { failure = errno != 0 ? errno : EIO }
    }

    public func write(_ s: String) {
        guard failure == nil else { return }
        var s = s
        s.withUTF8 { buf in check(fwrite(buf.baseAddress, 1, buf.count, file) == buf.count) }
    }

    public func write(bytes: UnsafeRawBufferPointer) {
        guard failure == nil else { return }
        check(fwrite(bytes.baseAddress, 1, bytes.count, file) == bytes.count)
    }

    public func write(bytes: [UInt8]) {
        guard failure == nil else { return }
        bytes.withUnsafeBufferPointer { buf in check(fwrite(buf.baseAddress, 1, buf.count, file) == buf.count) }
    }

    public func line(_ s: String = "") {
        write(s)
        guard failure == nil else { return }
        check(fputc(0x0A, file) != EOF)
    }

    public func flush() {
        guard failure == nil, !closed else { return }
        check(fflush(file) == 0)
    }

    /// Flushes (and closes a file of our own); returns the first failure, if any. A file
    /// is only complete when this returns nil: `fclose` reports errors that the kernel
    /// held back until then (NFS, quotas).
    public func finish() -> ReportError? {
        if !closed {
            flush()
            if owned {
                check(fclose(file) == 0)
                closed = true
            }
        }
        guard let failure else { return nil }
        return .cannotWrite(path: path ?? "standard output", reason: String(cString: strerror(failure)))
    }

    /// The failure is a closed pipe (`rdptriage ... | head`): the reader left, nothing is
    /// wrong with the report.
    public var readerLeft: Bool { failure == EPIPE }
}

public enum ReportError: Error, CustomStringConvertible {
    case cannotWrite(path: String, reason: String)

    public var description: String {
        switch self {
        case .cannotWrite(let path, let reason): "\(path): cannot write report: \(reason)"
        }
    }
}
