import Foundation
import Testing

/// Reports for the committed captures, compared with reviewed files in
/// Tests/Golden. After an intended change, regenerate them with
/// `RDPTRIAGE_UPDATE_GOLDEN=1 swift test --filter GoldenReportTests` and review the diff.
@Suite struct GoldenReportTests {
    static let update = ProcessInfo.processInfo.environment["RDPTRIAGE_UPDATE_GOLDEN"] == "1"

    static var captures: [String] {
        Repo.committedCaptures.map { ($0 as NSString).lastPathComponent }
    }

    /// Committed captures with a key log beside them: their reports with the key log are
    /// golden files of their own (`Tests/Golden/keys/`), so those without keys stay as they were.
    static var keyedCaptures: [String] {
        captures.filter {
            FileManager.default.fileExists(atPath: Repo.captures + "/" + ($0 as NSString).deletingPathExtension + ".keys")
        }
    }

    func render(_ capture: String, _ format: [String], keys: Bool = false) throws -> String {
        let p = Process()
        p.executableURL = URL(fileURLWithPath: Repo.executable)
        // Relative paths, so the reports do not depend on where the repository lives.
        p.currentDirectoryURL = URL(fileURLWithPath: Repo.root)
        let keyLog = keys ? ["--keylog", "captures/" + (capture as NSString).deletingPathExtension + ".keys"] : []
        p.arguments = ["analyze", "--color", "never", "--format"] + format + keyLog + ["captures/" + capture]
        let out = Pipe()
        p.standardOutput = out
        p.standardError = FileHandle.nullDevice
        try p.run()
        let data = out.fileHandleForReading.readDataToEndOfFile()
        p.waitUntilExit()
        return String(decoding: data, as: UTF8.self)
    }

    @Test(arguments: captures)
    func golden(_ capture: String) throws {
        try compare(capture, keys: false)
    }

    @Test(arguments: keyedCaptures)
    func goldenWithKeyLog(_ capture: String) throws {
        try compare(capture, keys: true)
    }

    func compare(_ capture: String, keys: Bool) throws {
        let base = (capture as NSString).deletingPathExtension
        let folder = keys ? Repo.golden + "/keys" : Repo.golden
        // Schema 1 keeps its files (NAME.json) for as long as --schema 1 exists.
        let formats = [
            (["text"], "txt"), (["json", "--schema", "1"], "json"), (["json"], "v2.json"), (["ndjson"], "ndjson"),
            (["markdown"], "md"),
        ]
        for (format, ext) in formats {
            let path = folder + "/\(base).\(ext)"
            let got = try render(capture, format, keys: keys)
            if Self.update {
                try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
                try got.write(toFile: path, atomically: true, encoding: .utf8)
                continue
            }
            let want = try? String(contentsOfFile: path, encoding: .utf8)
            #expect(want != nil, "no golden file \(path): run with RDPTRIAGE_UPDATE_GOLDEN=1 and review it")
            if let want, want != got {
                let firstDiff = zip(want.split(separator: "\n", omittingEmptySubsequences: false), got.split(separator: "\n", omittingEmptySubsequences: false))
                    .enumerated().first { $0.element.0 != $0.element.1 }
                Issue.record("\(path) differs at line \((firstDiff?.offset ?? 0) + 1):\n- \(firstDiff?.element.0 ?? "")\n+ \(firstDiff?.element.1 ?? "")")
            }
        }
    }
}
