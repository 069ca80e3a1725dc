import Foundation
import TestSupport
import Testing

/// `scripts/install` as a user runs it: a release build with the Swift standard library linked
/// in, installed into a fresh prefix, run from there with no Swift toolchain on PATH; its
/// libraries, man page and completions checked; then uninstalled. One release build (reused
/// from `.build-install` when it is there), so one test does all of it.
@Suite struct InstallTests {
    static let tools = ["ldd", "groff", "bash"]

    @Test(
        .enabled(
            if: Prerequisite.runs(tools.allSatisfy { Run.tool($0) != nil }),
            "ldd, groff (groff-base) or bash is not installed"))
    func installRunUninstall() throws {
        for tool in Self.tools { _ = try #require(Run.tool(tool), "missing prerequisite: \(tool)") }
        let prefix = NSTemporaryDirectory() + "rdptriage-prefix-\(UUID().uuidString)"
        defer { try? FileManager.default.removeItem(atPath: prefix) }
        let bash = try #require(Run.tool("bash"))
        let env = ProcessInfo.processInfo.environment
        let install = try Run.program(bash, [Repo.root + "/scripts/install", prefix], environment: env)
        #expect(install.status == 0, "scripts/install failed: \(install.stderr.suffix(3000))")
        let files = [
            "bin/rdptriage", "share/man/man1/rdptriage.1", "share/bash-completion/completions/rdptriage",
            "share/zsh/site-functions/_rdptriage", "share/fish/vendor_completions.d/rdptriage.fish",
        ]
        for f in files {
            #expect(FileManager.default.fileExists(atPath: prefix + "/" + f), "not installed: \(f)")
            #expect(install.stdout.contains("installed \(prefix)/\(f)"), "\(install.stdout)")
        }
        let exe = prefix + "/bin/rdptriage"

        // Run from the prefix with nothing on PATH (no toolchain, no tools) and no library path.
        let bare = ["PATH": prefix + "/empty-path", "LD_LIBRARY_PATH": "", "HOME": NSTemporaryDirectory()]
        let run = try Run.program(exe, ["analyze", "--color", "never", Repo.captures + "/rst-refused.pcap"], environment: bare)
        #expect(run.status == 1, "\(run.stderr)")
        #expect(run.stdout.contains("rst-refused"), "\(run.stdout)")
        let json = try Run.program(exe, ["analyze", "--format", "json", Repo.captures + "/success-tls.pcap"], environment: bare)
        #expect(json.status == 0 && json.stdout.contains("\"label\":\"success\""), "\(json.stderr)")

        // Only system libraries: libc and friends, libpcap (and what it links), zlib; nothing of Swift's.
        let ldd = try Run.program(try #require(Run.tool("ldd")), [exe])
        #expect(ldd.status == 0, "\(ldd.stderr)")
        var names: [String] = []
        for line in ldd.stdout.split(separator: "\n") {
            let fields = line.split(whereSeparator: { $0 == " " || $0 == "\t" })
            guard let name = fields.first.map(String.init) else { continue }
            names.append((name as NSString).lastPathComponent)
            #expect(!line.contains("not found"), "\(line)")
            let path = fields.count >= 3 && fields[1] == "=>" ? String(fields[2]) : name
            if path.hasPrefix("/") {
                #expect(path.hasPrefix("/lib") || path.hasPrefix("/usr/lib"), "not a system library: \(line)")
            }
            for swiftOnly in ["swift", "Foundation", "dispatch", "BlocksRuntime", "icu", "XCTest"] {
                #expect(!line.contains(swiftOnly), "a Swift runtime library: \(line)")
            }
        }
        for needed in ["libc.so", "libpcap.so", "libz.so"] {
            #expect(names.contains { $0.hasPrefix(needed) }, "\(needed) not linked: \(names)")
        }

        // The man page renders, with the options and their values from the argument definitions.
        let man = try Run.program(
            try #require(Run.tool("groff")), ["-man", "-Tutf8", "-P", "-c", prefix + "/share/man/man1/rdptriage.1"])
        #expect(man.status == 0 && !man.stderr.contains("warning"), "\(man.stderr)")
        let page = man.stdout.replacingOccurrences(of: "\u{8}.", with: "", options: .regularExpression)
        for text in ["rdptriage", "--format", "--color", "--export", "markdown", "Exit codes"] {
            #expect(page.contains(text), "man page lacks \(text)")
        }

        // bash completes --format and --color with their values, and captures by extension.
        let bashCompletion = prefix + "/share/bash-completion/completions/rdptriage"
        let captureDir = prefix + "/captures"
        try FileManager.default.createDirectory(atPath: captureDir, withIntermediateDirectories: true)
        for f in ["a.pcap", "b.pcapng", "c.pcap.gz", "notes.txt"] {
            _ = FileManager.default.createFile(atPath: captureDir + "/" + f, contents: nil)
        }
        /// What bash offers for the last word (as bash calls a completion function: command,
        /// current word, previous word).
        func complete(_ words: [String]) throws -> Set<String> {
            let script = """
                cd '\(captureDir)' && source '\(bashCompletion)'
                COMP_WORDS=(\(words.map { "'\($0)'" }.joined(separator: " "))); COMP_CWORD=\(words.count - 1)
                COMP_LINE="${COMP_WORDS[*]}"; COMP_POINT=${#COMP_LINE}
                _rdptriage rdptriage "${COMP_WORDS[COMP_CWORD]}" "${COMP_WORDS[COMP_CWORD-1]}"
                printf '%s\\n' "${COMPREPLY[@]}"
                """
            let r = try Run.program(bash, ["-c", script], environment: ["PATH": "/usr/bin:/bin"])
            #expect(r.status == 0, "\(r.stderr)")
            return Set(r.stdout.split(separator: "\n").map(String.init))
        }
        #expect(try complete(["rdptriage", "analyze", "--format", ""]) == ["text", "json", "markdown", "ndjson"])
        #expect(try complete(["rdptriage", "analyze", "--color", ""]) == ["auto", "always", "never"])
        #expect(try complete(["rdptriage", "analyze", ""]) == ["a.pcap", "b.pcapng", "c.pcap.gz"])
        let fish = try String(contentsOfFile: prefix + "/share/fish/vendor_completions.d/rdptriage.fish", encoding: .utf8)
        #expect(fish.contains("-l 'format' -s 'f' -d 'Report format.' -rfka 'text json markdown ndjson'"), "\(fish)")
        #expect(fish.contains("'auto always never'"), "\(fish)")
        let zsh = try String(contentsOfFile: prefix + "/share/zsh/site-functions/_rdptriage", encoding: .utf8)
        #expect(zsh.contains("('text' 'json' 'markdown' 'ndjson')") && zsh.contains("('auto' 'always' 'never')"), "\(zsh)")
        #expect(zsh.contains("_files -g '\\''*.pcap *.pcapng *.cap *.gz'\\''"), "\(zsh)")

        let uninstall = try Run.program(bash, [Repo.root + "/scripts/install", "--uninstall", prefix], environment: env)
        #expect(uninstall.status == 0, "\(uninstall.stderr)")
        for f in files { #expect(!FileManager.default.fileExists(atPath: prefix + "/" + f), "left behind: \(f)") }
    }
}
