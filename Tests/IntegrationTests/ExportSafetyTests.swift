import Foundation
import Testing

/// `--export` into a directory that may be shared: files appear complete or not at all,
/// nothing is overwritten without `--force`, no symbolic link is followed.
@Suite struct ExportSafetyTests: RunsTheTool {
    /// A file size limit makes every export file fail part-way: the run says so, and no
    /// file (nor a temporary one) is left behind looking complete.
    @Test func failedExportLeavesNoFiles() throws {
        let dir = try temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let capture = Repo.captures + "/credssp-wrong-password.pcap"
        let r = try shell(#"ulimit -f 1; trap "" XFSZ; exec "$0" "$@""#, ["analyze", "--export", dir, capture])
        #expect(r.status == 2)
        #expect(r.stderr.contains("File too large"), "\(r.stderr)")
        #expect(!r.stderr.contains("exported"), "\(r.stderr)")
        #expect(entries(dir).isEmpty, "\(entries(dir))")
    }

    /// The names one export of `failing` writes.
    func exportedNames() throws -> [String] {
        let dir = try temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        _ = try Run.program(exe, ["analyze", "--export", dir, failing])
        return entries(dir)
    }

    @Test func exportSaysWhatItWrote() throws {
        let dir = try temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let r = try Run.program(exe, ["analyze", "--export", dir, failing])
        #expect(r.status == 1)
        let names = entries(dir)
        // Two refused attempts, a pcap and a report each.
        #expect(names.count == 4 && names.allSatisfy { !$0.hasPrefix(".") }, "\(names)")
        let lines = r.stderr.split(separator: "\n")
        #expect(lines.count == 1, "\(r.stderr)")
        #expect(r.stderr.hasPrefix("rdptriage: \(failing): exported 2 failed attempts to \(dir)/ (4 files: "), "\(r.stderr)")
        for name in names { #expect(r.stderr.contains(name), "\(name) not named: \(r.stderr)") }
    }

    @Test func exportDoesNotOverwriteWithoutForce() throws {
        let dir = try temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        #expect(try Run.program(exe, ["analyze", "--export", dir, failing]).status == 1)
        let names = entries(dir)
        try #require(!names.isEmpty)
        let before = try names.map { try Data(contentsOf: URL(fileURLWithPath: dir + "/" + $0)) }
        // Someone's notes in the first file, to see whether a second run replaces it.
        try Data("notes".utf8).write(to: URL(fileURLWithPath: dir + "/" + names[0]))

        let again = try Run.program(exe, ["analyze", "--export", dir, failing])
        #expect(again.status == 2)
        #expect(again.stderr.contains("already exists") && again.stderr.contains("--force"), "\(again.stderr)")
        #expect(again.stderr.split(separator: "\n").count == 1, "\(again.stderr)")
        #expect(entries(dir) == names)
        #expect(try Data(contentsOf: URL(fileURLWithPath: dir + "/" + names[0])) == Data("notes".utf8))

        let forced = try Run.program(exe, ["analyze", "--export", dir, "--force", failing])
        #expect(forced.status == 1, "\(forced.stderr)")
        #expect(entries(dir) == names)
        let after = try names.map { try Data(contentsOf: URL(fileURLWithPath: dir + "/" + $0)) }
        #expect(after == before)
    }

    /// A symbolic link planted under an export file's name (pointing outside) is never
    /// followed: without --force the export refuses, with it the link itself is replaced.
    @Test func exportNeverFollowsAPlantedLink() throws {
        let names = try exportedNames()
        let pcapName = try #require(names.first { $0.hasSuffix(".pcap") })
        let outside = try temporaryDirectory()
        let dir = try temporaryDirectory()
        defer {
            try? FileManager.default.removeItem(atPath: dir)
            try? FileManager.default.removeItem(atPath: outside)
        }
        let target = outside + "/precious"
        try Data("precious".utf8).write(to: URL(fileURLWithPath: target))
        try FileManager.default.createSymbolicLink(atPath: dir + "/" + pcapName, withDestinationPath: target)
        // A link to a name that does not exist yet must not create it either.
        let mdName = try #require(names.first { $0.hasSuffix(".md") })
        try FileManager.default.createSymbolicLink(atPath: dir + "/" + mdName, withDestinationPath: outside + "/created")

        let r = try Run.program(exe, ["analyze", "--export", dir, failing])
        #expect(r.status == 2)
        #expect(r.stderr.contains("already exists"), "\(r.stderr)")
        #expect(try Data(contentsOf: URL(fileURLWithPath: target)) == Data("precious".utf8))
        #expect(entries(outside) == ["precious"])
        #expect(entries(dir) == [mdName, pcapName].sorted(), "nothing exported beside the links")

        let forced = try Run.program(exe, ["analyze", "--export", dir, "--force", failing])
        #expect(forced.status == 1, "\(forced.stderr)")
        #expect(try Data(contentsOf: URL(fileURLWithPath: target)) == Data("precious".utf8))
        #expect(entries(outside) == ["precious"])
        let kind = try FileManager.default.attributesOfItem(atPath: dir + "/" + pcapName)[.type] as? FileAttributeType
        #expect(kind == .typeRegular)
        let magic = try Data(contentsOf: URL(fileURLWithPath: dir + "/" + pcapName)).prefix(4)
        #expect(Array(magic) == [0x4d, 0x3c, 0xb2, 0xa1], "a nanosecond pcap")
    }

    /// Redacted exports travel to people who should not learn the names; the key log would
    /// let them decrypt the original names from the exported frames.
    @Test func redactedExportRefusesKeys() throws {
        let dir = try temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let capture = Repo.captures + "/credssp-wrong-password.pcap"
        let r = try Run.program(
            exe, ["analyze", "--export", dir, "--redact", "--keylog", Repo.captures + "/credssp-wrong-password.keys", capture])
        #expect(r.status == 2)
        #expect(r.stderr.contains("--redact") && r.stderr.contains("--keylog"), "\(r.stderr)")
        #expect(entries(dir).isEmpty)
    }

    @Test func keyLogWithoutAValidLineIsWarned() throws {
        let dir = try temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let keys = dir + "/not-keys.txt"
        try Data("hello\nCLIENT_RANDOM zz\n".utf8).write(to: URL(fileURLWithPath: keys))
        let r = try Run.program(exe, ["analyze", "--export", dir + "/out", "--keylog", keys, failing])
        #expect(r.status == 1)
        #expect(r.stderr.contains("\(keys): warning: no key-log line"), "\(r.stderr)")
    }

    /// A file name as long as the file system allows (255 bytes) is still exported: the
    /// temporary name it is written under does not grow with it.
    @Test func exportOfTheLongestName() throws {
        let dir = try temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let base = String(repeating: "b", count: 255 - "-attempt1-rst-refused.pcap".count)
        let input = dir + "/" + base + ".pcap"
        try FileManager.default.copyItem(atPath: failing, toPath: input)
        let r = try Run.program(exe, ["analyze", "--export", dir + "/out", input])
        #expect(r.status == 1, "\(r.stderr)")
        #expect(entries(dir + "/out").contains(base + "-attempt1-rst-refused.pcap"))
    }
}
