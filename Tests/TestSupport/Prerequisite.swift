import Foundation

/// What a test needs from the machine (a tool, root, the public captures), and what happens
/// when it is missing. CI (`CI=true`, where `scripts/test` installs everything and runs as
/// root) must never pass by not running: there a missing prerequisite fails the test. Anywhere
/// else the test is skipped, and the skip names what is missing.
public enum Prerequisite {
    public static var inCI: Bool { ProcessInfo.processInfo.environment["CI"] == "true" }

    /// Whether a test needing something that is `present` should run: always in CI, so that
    /// its `require` fails there; elsewhere only when it is present.
    public static func runs(_ present: Bool) -> Bool { present || inCI }

    /// The peers' public captures, `../shared/captures-public` beside the repository.
    public static func publicCaptures(repositoryRoot: String) -> String {
        URL(fileURLWithPath: repositoryRoot).deletingLastPathComponent().appendingPathComponent("shared/captures-public").path
    }

    /// The public captures the tests read by name (shared/captures-public/README.md).
    public static let publicCaptureNames = [
        "initconf/RDP-bruteforce.pcap", "ndpi/rdp.pcap", "suricata/RDP-003.pcap", "zeek/rdp-unknown-keyboard.pcap",
        "zeek/rdp-x509.pcap",
    ]

    /// An executable from the usual system directories.
    public static func tool(_ name: String) -> String? {
        for dir in ["/usr/bin", "/usr/local/bin", "/usr/sbin", "/bin", "/sbin"]
        where FileManager.default.isExecutableFile(atPath: dir + "/" + name) {
            return dir + "/" + name
        }
        return nil
    }
}
