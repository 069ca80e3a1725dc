import Foundation
import Testing

@testable import TriageReports

/// The spool that holds an input's attempts until its summary is written.
@Suite struct ReportSpoolTests {
    func temporaryPath() -> String {
        FileManager.default.temporaryDirectory.appendingPathComponent("rdptriage-spool-test-\(UUID().uuidString)").path
    }

    /// Past its memory limit the spool moves to a temporary file; what comes out is what went
    /// in, in order, whether it stayed in memory or not, and the spool can be used again.
    @Test(arguments: [1 << 20, 64, 1])
    func keepsEverythingInOrder(memoryLimit: Int) throws {
        let path = temporaryPath()
        defer { try? FileManager.default.removeItem(atPath: path) }
        let out = try ReportOutput.file(path)
        let spool = ReportSpool(memoryLimit: memoryLimit)
        for round in 0..<2 {
            for i in 0..<500 { spool.line("round \(round) line \(i) " + String(repeating: "x", count: i % 37)) }
            // The summary first, then what was held, as a report does.
            out.write("-- summary \(round) --\n")
            spool.drain(into: out)
            #expect(spool.isEmpty)
        }
        #expect(out.finish() == nil)
        let got = try String(contentsOfFile: path, encoding: .utf8)
        // Each round's lines come after that round's summary.
        var expected = ""
        for round in 0..<2 {
            expected += "-- summary \(round) --\n"
            for i in 0..<500 { expected += "round \(round) line \(i) " + String(repeating: "x", count: i % 37) + "\n" }
        }
        #expect(got == expected)
    }

    /// A temporary file that cannot be made is a report that cannot be written, not lost lines.
    @Test func aTemporaryFileThatCannotBeMadeFailsTheReport() throws {
        let path = temporaryPath()
        defer { try? FileManager.default.removeItem(atPath: path) }
        let out = try ReportOutput.file(path)
        let spool = ReportSpool(memoryLimit: 8, directory: "/nonexistent-rdptriage-dir")
        spool.line("more than eight bytes")
        spool.drain(into: out)
        let failure = try #require(out.finish())
        #expect(failure.description.contains("No such file or directory"))
    }
}
