import Testing
import TriageDecoding

@testable import TriageProtocols

@Suite struct PayloadKindTests {
    static func kind(_ bytes: [UInt8]) -> PayloadKind? {
        bytes.withUnsafeBytes { PayloadClassifier.classify(ByteCursor($0)) }
    }

    static func banner(_ bytes: [UInt8]) -> String? {
        bytes.withUnsafeBytes { PayloadClassifier.banner(ByteCursor($0)) }
    }

    @Test func kinds() {
        #expect(Self.kind(TPKTTests.crNdpi) == .x224ConnectionRequest)
        #expect(Self.kind(TPKTTests.ccNdpi) == .x224ConnectionConfirm)
        #expect(Self.kind(TPKTTests.dr) == .x224Other)
        #expect(Self.kind(hexBytes("16030100a8010000a4")) == .tls)
        #expect(Self.kind(Array("SSH-2.0-OpenSSH_9.2p1 Debian-2\r\n".utf8)) == .ssh)
        #expect(Self.kind(Array("HTTP/1.1 400 Bad Request\r\n".utf8)) == .http)
        #expect(Self.kind(Array("GET / HTTP/1.1\r\n".utf8)) == .http)
        #expect(Self.kind(Array("RDG_OUT_DATA /remoteDesktopGateway/ HTTP/1.1\r\n".utf8)) == .http)
        #expect(Self.kind(Array("220 mail.example ESMTP\r\n".utf8)) == .text)
        #expect(Self.kind([0x00, 0xFF, 0x13, 0x37]) == .binary)
        #expect(Self.kind([]) == nil)
    }

    @Test func banners() {
        #expect(Self.banner(Array("SSH-2.0-OpenSSH_9.2p1\r\nmore".utf8)) == "SSH-2.0-OpenSSH_9.2p1")
        #expect(Self.banner(Array(String(repeating: "x", count: 200).utf8))?.count == 80)
        #expect(Self.banner([0x00, 0x41]) == nil)
    }

    @Test func waitsForALine() {
        let partial = Array("SSH-2.0-Op".utf8)
        #expect(partial.withUnsafeBytes { PayloadClassifier.wantsMoreBytes(ByteCursor($0)) })
        let line = Array("SSH-2.0-OpenSSH\r\n".utf8)
        #expect(!line.withUnsafeBytes { PayloadClassifier.wantsMoreBytes(ByteCursor($0)) })
    }
}
