import Foundation
import Testing

/// What the suites that run the built `rdptriage` on scratch files share.
protocol RunsTheTool {}

extension RunsTheTool {
    var exe: String { Repo.executable }
    /// A lab capture with two refused attempts.
    var failing: String { Repo.captures + "/rst-refused.pcap" }

    /// A fresh directory, removed by the caller's `defer`.
    func temporaryDirectory() throws -> String {
        let dir = NSTemporaryDirectory() + "rdptriage-safety-\(UUID().uuidString)"
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        return dir
    }

    /// Runs `rdptriage` through `sh -c SCRIPT` (the script ends with `exec "$0" "$@"`), with
    /// standard output going to `stdout` (or a pipe that is read).
    func shell(_ script: String, _ args: [String], stdout: FileHandle? = nil, stdin: String = "/dev/null") throws -> Run {
        let p = Process()
        p.executableURL = URL(fileURLWithPath: "/bin/sh")
        p.arguments = ["-c", script, exe] + args
        let out = Pipe()
        let err = Pipe()
        p.standardOutput = stdout ?? out
        p.standardError = err
        p.standardInput = FileHandle(forReadingAtPath: stdin)
        try p.run()
        let o = stdout == nil ? out.fileHandleForReading.readDataToEndOfFile() : Data()
        let e = err.fileHandleForReading.readDataToEndOfFile()
        p.waitUntilExit()
        return Run(status: p.terminationStatus, stdout: String(decoding: o, as: UTF8.self), stderr: String(decoding: e, as: UTF8.self))
    }

    /// Every file in `dir`, dot files included.
    func entries(_ dir: String) -> [String] { ((try? FileManager.default.contentsOfDirectory(atPath: dir)) ?? []).sorted() }
}

/// Reports go where they should or the run says why: write errors are reported, never
/// ignored, and an output never destroys an input.
@Suite struct OutputSafetyTests: RunsTheTool {
    @Test(arguments: ["text", "json", "ndjson", "markdown"])
    func reportOnAFullDeviceIsAnError(format: String) throws {
        let toFile = try Run.program(exe, ["analyze", "--format", format, "-o", "/dev/full", failing])
        #expect(toFile.status == 2)
        #expect(toFile.stderr == "rdptriage: /dev/full: cannot write report: No space left on device\n", "\(toFile.stderr)")

        let full = try #require(FileHandle(forWritingAtPath: "/dev/full"))
        let toStdout = try shell(#"exec "$0" "$@""#, ["analyze", "--format", format, failing], stdout: full)
        #expect(toStdout.status == 2)
        #expect(
            toStdout.stderr == "rdptriage: standard output: cannot write report: No space left on device\n", "\(toStdout.stderr)")
    }

    /// A reader that goes away (`| head`) ends the run quietly: killed by SIGPIPE as usual,
    /// or, where SIGPIPE is ignored, with no message and the analysis's own exit code.
    @Test func closedPipeEndsQuietly() throws {
        // ndjson flushes each line on a pipe: the first flush meets the closed pipe.
        for script in [#"exec "$0" "$@""#, #"trap "" PIPE; exec "$0" "$@""#] {
            for format in ["text", "ndjson"] {
                let pipe = Pipe()
                try pipe.fileHandleForReading.close()
                let r = try shell(script, ["analyze", "--format", format, failing], stdout: pipe.fileHandleForWriting)
                #expect(r.stderr.isEmpty, "\(script) \(format): \(r.stderr)")
                #expect([1, 13].contains(r.status), "\(script) \(format): \(r.status)")
            }
        }
    }

    /// Standard error that cannot be written (a full disk) must not turn an error message into a crash.
    @Test func unwritableStandardErrorIsNoCrash() throws {
        let full = try #require(FileHandle(forWritingAtPath: "/dev/full"))
        let p = Process()
        p.executableURL = URL(fileURLWithPath: exe)
        p.arguments = ["analyze", "/nonexistent/missing.pcap"]
        p.standardOutput = FileHandle.nullDevice
        p.standardError = full
        try p.run()
        p.waitUntilExit()
        #expect(p.terminationReason == .exit)
        #expect(p.terminationStatus == 2)
    }

    @Test func outputOntoAnInputIsRefused() throws {
        let dir = try temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let original = try Data(contentsOf: URL(fileURLWithPath: failing))
        let input = dir + "/same.pcap"
        try original.write(to: URL(fileURLWithPath: input))
        try FileManager.default.createSymbolicLink(atPath: dir + "/link.pcap", withDestinationPath: input)
        let cases: [([String], String)] = [
            (["analyze", "-o", input, input], "/dev/null"),
            (["analyze", "-o", dir + "/link.pcap", failing, dir + "/./same.pcap"], "/dev/null"),
            (["analyze", "-o", input, "-"], input),
        ]
        for (args, stdin) in cases {
            let r = try Run.program(exe, args, stdin: stdin)
            #expect(r.status == 2, "\(args)")
            #expect(r.stderr.hasPrefix("rdptriage: ") && r.stderr.contains("is the input"), "\(args): \(r.stderr)")
            #expect(r.stderr.split(separator: "\n").count == 1, "\(r.stderr)")
            #expect(try Data(contentsOf: URL(fileURLWithPath: input)) == original, "\(args): the input was changed")
        }
    }
}
