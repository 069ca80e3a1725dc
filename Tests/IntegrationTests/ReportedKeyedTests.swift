import Foundation
import TestSupport
import Testing

/// `--reported` on the captures that have key logs: the attempts it points at are those whose
/// client code the lab's expected file gives (written from how each scenario was built), with
/// the key log read as well as without, and the client's 0x904/0x7 guess never points at a
/// CredSSP failure the key log confirms.
@Suite struct ReportedKeyedTests {
    static var keyed: [String] {
        Repo.committedCaptures.filter { FileManager.default.fileExists(atPath: KeyLogCaptureTests.keys(for: $0)) }
            .map { ($0 as NSString).lastPathComponent }
    }

    static func reported(_ capture: String, _ code: String, keys: Bool) throws -> [Int] {
        var args = ["analyze", "--format", "json", "--reported", code]
        if keys { args += ["--keylog", KeyLogCaptureTests.keys(for: capture)] }
        let r = try Run.program(Repo.executable, args + [capture])
        try #require(r.status != 2, "rdptriage \(args): \(r.stderr)")
        let doc = try #require(try JSONSerialization.jsonObject(with: Data(r.stdout.utf8)) as? [String: Any])
        let input = try #require((doc["inputs"] as? [[String: Any]])?.first)
        let m = try #require(input["reported"] as? [String: Any])
        return (m["attempts"] as? [Int]) ?? []
    }

    @Test(arguments: keyed)
    func pointsAtTheExpectedAttempts(_ name: String) throws {
        let capture = Repo.captures + "/" + name
        let expectedPath = (capture as NSString).deletingPathExtension + ".expected.json"
        let expected = try #require(
            try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: expectedPath))) as? [String: Any])
        let attempts = try #require(expected["attempts"] as? [[String: Any]])
        let codes = attempts.map { $0["client_code"] as? String }
        // Numeric codes only: `local` and the other kinds are not codes a user can report.
        for code in Set(codes.compactMap { $0 }).filter({ $0.hasPrefix("0x") }) {
            let want = codes.enumerated().filter { $0.element == code }.map { $0.offset + 1 }
            // A capture whose expected file says its verdict needs the keys (a refusal stated
            // inside TLS) is only held to its code with them.
            for keys in expected["verdict_needs_keys"] as? Bool == true ? [true] : [false, true] {
                #expect(try Self.reported(capture, code, keys: keys) == want, "\(name) --reported \(code) keys: \(keys)")
            }
        }
        if codes.contains("0x807") {
            #expect(try Self.reported(capture, "0x904/0x7", keys: true).allSatisfy { codes[$0 - 1] != "0x807" })
        }
    }
}
