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

    /// Copies the rest of descriptor `fd` (from its offset) to the output: in the kernel on
    /// Linux (sendfile), else through a buffer.
    func copy(from fd: Int32) {
        flush()
        guard failure == nil else { return }
        #if os(Linux)
            let out = fileno(file)
            while true {
                let n = sendfile(out, fd, nil, 1 << 30)
                if n > 0 { continue }
                if n == 0 { return }
                if errno == EINTR { continue }
                // Not every output takes sendfile (an append-only file): the buffer below does.
                if errno == EINVAL || errno == ENOSYS { break }
                return check(false)
            }
        #endif
        var chunk = [UInt8](repeating: 0, count: 1 << 20)
        while failure == nil {
            let n = chunk.withUnsafeMutableBytes { read(fd, $0.baseAddress, $0.count) }
            if n < 0 && errno == EINTR { continue }
            if n < 0 { return fail(errno) }
            if n == 0 { return }
            chunk.withUnsafeBytes { write(bytes: UnsafeRawBufferPointer(rebasing: $0[0..<n])) }
        }
    }

    /// Takes a failure found on the way to this output (the spool's temporary file).
    func fail(_ code: Int32) {
        if failure == nil { failure = code }
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

/// An input's attempts, held while its summary is not known yet: text and Markdown reports put
/// the summary first, and the summary is only known when the input ends. Kept in memory up to
/// `memoryLimit` (8 MiB), past it in an unlinked temporary file (`TMPDIR`, else /tmp), so a report of
/// a million attempts does not stay in memory. A failure (no room for the temporary file) is
/// handed to the output when the spool is written out, like a failed write of the report.
final class ReportSpool {
    /// Bytes held in memory (copied in with memcpy: a report of a large capture passes
    /// tens of megabytes through here).
    private var storage: UnsafeMutableRawPointer?
    private var capacity = 0
    private var count = 0
    private var fd: Int32 = -1
    private var failure: Int32?
    private let memoryLimit: Int
    private let directory: String

    /// `directory` holds the temporary file (default `TMPDIR`, else /tmp).
    init(memoryLimit: Int = 8 << 20, directory: String? = nil) {
        self.memoryLimit = max(memoryLimit, 1)
        self.directory = directory ?? environmentValue("TMPDIR") ?? "/tmp"
    }

    deinit {
        if fd >= 0 { close(fd) }
        free(storage)
    }

    var isEmpty: Bool { count == 0 && fd < 0 }

    func write(_ bytes: UnsafeRawBufferPointer) {
        guard failure == nil, let base = bytes.baseAddress, bytes.count > 0 else { return }
        if count + bytes.count > capacity {
            if count + bytes.count > memoryLimit {
                spill()
                guard failure == nil else { return }
                // More than the memory holds at once: straight to the file.
                if bytes.count > memoryLimit { return writeFile(bytes) }
            }
            if count + bytes.count > capacity {
                grow(to: count + bytes.count)
                guard failure == nil else { return }
            }
        }
        (storage! + count).copyMemory(from: base, byteCount: bytes.count)
        count += bytes.count
    }

    /// Doubles up to the limit, never past it: memory holds at most `memoryLimit` bytes.
    /// `realloc`, because glibc moves a large block by remapping its pages, not copying them.
    private func grow(to needed: Int) {
        let newCapacity = min(max(needed, capacity * 2, 64 << 10), memoryLimit)
        guard let p = realloc(storage, newCapacity) else {
            failure = ENOMEM
            return
        }
        storage = p
        capacity = newCapacity
    }

    func line(_ s: String) {
        var s = s
        s.withUTF8 { write(UnsafeRawBufferPointer($0)) }
        var newline: UInt8 = 0x0A
        withUnsafeBytes(of: &newline) { write($0) }
    }

    /// Moves what memory holds to the temporary file (made on first use, unlinked at once).
    private func spill() {
        guard count > 0 || fd < 0 else { return }
        if fd < 0 {
            var template = Array((directory + "/rdptriage-spool-XXXXXX").utf8CString)
            fd = template.withUnsafeMutableBufferPointer { mkstemp($0.baseAddress!) }
            guard fd >= 0 else {
                failure = errno
                count = 0
                return
            }
            template.withUnsafeBufferPointer { _ = unlink($0.baseAddress!) }
        }
        if let storage, count > 0 { writeFile(UnsafeRawBufferPointer(start: storage, count: count)) }
        count = 0
    }

    private func writeFile(_ all: UnsafeRawBufferPointer) {
        if let e = writeFully(fd, all) { failure = e }
    }

    /// Writes everything held to `out` and empties the spool.
    func drain(into out: ReportOutput) {
        defer {
            count = 0
            if fd >= 0 { close(fd) }
            fd = -1
            failure = nil
        }
        if let failure { return out.fail(failure) }
        if fd >= 0 {
            spill()
            if let failure { return out.fail(failure) }
            guard lseek(fd, 0, SEEK_SET) == 0 else { return out.fail(errno) }
            out.copy(from: fd)
        } else if let storage, count > 0 {
            out.write(bytes: UnsafeRawBufferPointer(start: storage, count: count))
        }
    }
}

private func systemWrite(_ fd: Int32, _ p: UnsafeRawPointer, _ n: Int) -> Int { write(fd, p, n) }

private func environmentValue(_ name: String) -> String? {
    guard let v = getenv(name), v.pointee != 0 else { return nil }
    return String(cString: v)
}

public enum ReportError: Error, CustomStringConvertible {
    case cannotWrite(path: String, reason: String)

    public var description: String {
        switch self {
        case .cannotWrite(let path, let reason): "\(path): cannot write report: \(reason)"
        }
    }
}

/// Writes all of `bytes` to `fd`, again after a signal. Returns nil when all was written, else
/// the errno (EIO when the system wrote nothing without saying why).
public func writeFully(_ fd: Int32, _ bytes: UnsafeRawBufferPointer) -> Int32? {
    guard let base = bytes.baseAddress else { return nil }
    var done = 0
    while done < bytes.count {
        let n = systemWrite(fd, base + done, bytes.count - done)
        if n < 0 {
            if errno == EINTR { continue }
            return errno
        }
        if n == 0 { return EIO }
        done += n
    }
    return nil
}
