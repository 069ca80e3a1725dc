import Foundation
import TestSupport
import Testing
import TriageCapture
import TriageDiagnosis
import TriageEngine
import TriageFlows
import TriageProtocols

/// Paths and tools the integration tests share.
enum Repo {
    /// The package root (…/Tests/IntegrationTests/Support.swift → …).
    static let root: String = {
        var url = URL(fileURLWithPath: #filePath)
        for _ in 0..<3 { url.deleteLastPathComponent() }
        return url.path
    }()

    static let captures = root + "/captures"
    static let golden = root + "/Tests/Golden"
    /// Peers' public captures (read-only, `../shared/captures-public` beside the repository).
    static let publicCaptures = Prerequisite.publicCaptures(repositoryRoot: root)

    /// Every committed capture, sorted.
    static var committedCaptures: [String] {
        let names = (try? FileManager.default.contentsOfDirectory(atPath: captures)) ?? []
        return names.filter { $0.hasSuffix(".pcap") || $0.hasSuffix(".pcapng") }.sorted().map { captures + "/" + $0 }
    }

    /// The public captures, or nil when the folder is absent.
    static var publicCaptureFiles: [String]? {
        guard FileManager.default.fileExists(atPath: publicCaptures) else { return nil }
        let e = FileManager.default.enumerator(atPath: publicCaptures)
        var out: [String] = []
        while let p = e?.nextObject() as? String {
            if p.hasSuffix(".pcap") { out.append(publicCaptures + "/" + p) }
        }
        return out.sorted()
    }

    /// The rdptriage executable `swift test` built next to the test bundle.
    static var executable: String {
        let exe = (try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/exe")) ?? CommandLine.arguments[0]
        var dir = URL(fileURLWithPath: exe).deletingLastPathComponent()
        // On Linux the test runner is …/debug/rdptriagePackageTests.xctest.
        if dir.lastPathComponent.hasSuffix(".xctest") { dir.deleteLastPathComponent() }
        return dir.appendingPathComponent("rdptriage").path
    }
}

/// Runs a program and returns its exit status and output.
struct Run {
    var status: Int32
    var stdout: String
    var stderr: String

    static func program(_ path: String, _ args: [String], stdin: String? = nil, environment: [String: String]? = nil)
        throws -> Run
    {
        let p = Process()
        p.executableURL = URL(fileURLWithPath: path)
        p.arguments = args
        if let environment { p.environment = environment }
        let out = Pipe()
        let err = Pipe()
        p.standardOutput = out
        p.standardError = err
        p.standardInput = FileHandle(forReadingAtPath: stdin ?? "/dev/null")
        try p.run()
        // Read before waiting so a large output cannot block the child.
        let o = out.fileHandleForReading.readDataToEndOfFile()
        let e = err.fileHandleForReading.readDataToEndOfFile()
        p.waitUntilExit()
        return Run(status: p.terminationStatus, stdout: String(decoding: o, as: UTF8.self), stderr: String(decoding: e, as: UTF8.self))
    }

    static func tool(_ name: String) -> String? { Prerequisite.tool(name) }
}

/// Collects what the engine reports.
final class Collect: AnalysisSink {
    var attempts: [Attempt] = []
    var summaries: [InputSummary] = []
    func begin(_ input: InputInfo) {}
    func attempt(_ a: Attempt) { attempts.append(a) }
    func end(_ s: InputSummary) { summaries.append(s) }
}

func analyze(_ path: String, ports: [UInt16] = [3389], keyLog: String? = nil) -> Collect {
    var options = EngineOptions()
    options.tracker.ports = ports
    if let keyLog, let text = try? String(contentsOfFile: keyLog, encoding: .utf8) {
        var k = TLSKeyMaterial()
        k.add(keyLog: text)
        options.keys = k
    }
    let c = Collect()
    Engine(options: options).analyze(path: path, sink: c)
    c.attempts.sort { $0.facts.tcp.first.frame < $1.facts.tcp.first.frame }
    return c
}
