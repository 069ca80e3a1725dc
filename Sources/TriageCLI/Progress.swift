import Dispatch
import Foundation
import TriageDecoding
import TriageEngine

#if canImport(Glibc)
    import Glibc
#elseif canImport(Darwin)
    import Darwin
#endif

/// A progress line on standard error while a large input is read: bytes read (of how many),
/// attempts so far, and the rate. Only on a terminal, and only when the report does not go to
/// that same terminal, where the two would be written over each other. An input shows it
/// from the start when it is over 64 MiB, any other once it has taken a second; the line is
/// redrawn at most four times a second and erased when the input ends.
final class ProgressLine: @unchecked Sendable {
    // Unchecked: the engine calls `update` from its packet thread only.
    static let largeInput: Int64 = 64 << 20
    static let quietNanoseconds: UInt64 = 1_000_000_000
    static let redrawNanoseconds: UInt64 = 250_000_000

    private var input = ""
    private var started: UInt64 = 0
    private var lastDrawn: UInt64 = 0
    private var drawnWidth = 0
    /// Whether the terminal understands "erase to the end of the line".
    private let canErase = ProcessInfo.processInfo.environment["TERM"] != "dumb"

    /// Standard error is a terminal and the report goes elsewhere (`-o`, a file, a pipe, or
    /// another terminal).
    static func wanted(reportToFile: Bool) -> Bool {
        guard isatty(STDERR_FILENO) == 1 else { return false }
        if reportToFile || isatty(STDOUT_FILENO) != 1 { return true }
        var out = stat()
        var err = stat()
        guard fstat(STDOUT_FILENO, &out) == 0, fstat(STDERR_FILENO, &err) == 0 else { return false }
        return out.st_rdev != err.st_rdev
    }

    func update(_ p: ReadProgress) {
        let now = DispatchTime.now().uptimeNanoseconds
        if p.input != input {
            input = p.input
            started = now
            lastDrawn = 0
        }
        if p.finished {
            erase()
            input = ""
            return
        }
        let elapsed = now &- started
        guard elapsed >= Self.quietNanoseconds || (p.total ?? 0) > Self.largeInput else { return }
        guard lastDrawn == 0 || now &- lastDrawn >= Self.redrawNanoseconds else { return }
        lastDrawn = now
        var text = "rdptriage: \(p.input == "-" ? "standard input" : p.input): " + Self.size(p.bytes)
        if let total = p.total, total > 0 {
            let percent = min(100, Int(p.bytes * 100 / total))
            text += " of \(Self.size(total)) (\(percent) %)"
        }
        text += ", \(p.frames) frames, \(p.attempts) attempt\(p.attempts == 1 ? "" : "s")"
        if elapsed > 0 {
            text += ", " + Self.size(Int64(Double(p.bytes) / (Double(elapsed) / 1e9))) + "/s"
        }
        draw(text)
    }

    private func draw(_ text: String) {
        let line = Printable.escapingControls(text)
        let padding = canErase ? "" : String(repeating: " ", count: max(0, drawnWidth - line.count))
        emit("\r" + (canErase ? "\u{1B}[K" : "") + line + padding)
        drawnWidth = line.count
    }

    private func erase() {
        guard drawnWidth > 0 else { return }
        emit("\r" + (canErase ? "\u{1B}[K" : String(repeating: " ", count: drawnWidth) + "\r"))
        drawnWidth = 0
    }

    private func emit(_ s: String) {
        writeToStandardError(Array(s.utf8))
    }

    /// `312.4 MiB`, `1.0 GiB`, `812 KiB`: binary units, as the size options take them.
    static func size(_ bytes: Int64) -> String {
        let units = ["B", "KiB", "MiB", "GiB", "TiB"]
        var value = Double(max(0, bytes))
        var unit = 0
        while value >= 1024 && unit < units.count - 1 {
            value /= 1024
            unit += 1
        }
        if unit == 0 { return "\(Int(value)) B" }
        if value >= 10 { return "\(Int(value.rounded())) \(units[unit])" }
        let tenths = Int((value * 10).rounded())
        return "\(tenths / 10).\(tenths % 10) \(units[unit])"
    }
}
