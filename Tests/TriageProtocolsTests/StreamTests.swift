import Testing
import TriageCapture
import TriageFlows

@testable import TriageProtocols

/// The connection-sequence state machine over whole recorded exchanges. Expected frames
/// and values are what tshark 4.0 shows for the same capture (RDP dissector, and
/// `-d tcp.port==3389,tls` for TLS); the same facts must come out however TCP cut the bytes.
@Suite struct StreamTests {
    static let fixtures: [(String, [FixtureSegment])] = [
        ("zeekX509", CaptureFixtures.zeekX509),
        ("zeekUnknownKeyboard", CaptureFixtures.zeekUnknownKeyboard),
        ("suricataXP", CaptureFixtures.suricataXP),
        ("ndpiHybridEx", CaptureFixtures.ndpiHybridEx),
        ("bruteCredSSPAlert", CaptureFixtures.bruteCredSSPAlert),
        ("bruteTLS10", CaptureFixtures.bruteTLS10),
        ("bruteNegOnly", CaptureFixtures.bruteNegOnly),
        ("bruteHybrid", CaptureFixtures.bruteHybrid),
        ("bruteGapAtStart", CaptureFixtures.bruteGapAtStart),
    ]

    static let cuts: [Segmentation] = [.oneByte, .coalesced, .random(seed: 1), .random(seed: 7), .random(seed: 42)]

    @Test(arguments: fixtures.map(\.0))
    func sameFactsWithWholeStreamsAtOnce(_ name: String) throws {
        let segments = try #require(Self.fixtures.first { $0.0 == name }?.1)
        #expect(StreamPlayer.play(segments, .wholeStreams) == StreamPlayer.play(segments, .asCaptured), "\(name)")
    }

    @Test(arguments: fixtures.map(\.0))
    func sameFactsUnderAnySegmentation(_ name: String) throws {
        let segments = try #require(Self.fixtures.first { $0.0 == name }?.1)
        let reference = StreamPlayer.play(segments, .asCaptured)
        for how in Self.cuts {
            let facts = StreamPlayer.play(segments, how)
            #expect(facts == reference, "\(name), \(how)")
        }
    }

    @Test func zeekStandardSecurity() throws {
        let f = StreamPlayer.play(CaptureFixtures.zeekX509, .asCaptured)
        #expect(f.firstClientPayload == .x224ConnectionRequest)
        #expect(f.firstServerPayload == .x224ConnectionConfirm)
        let cr = try #require(f.connectionRequest)
        #expect(cr.at.frame == 6)
        #expect(cr.cookie == "JOHN-PC  ")
        #expect(cr.hasNegotiationRequest)
        #expect(cr.requestedProtocols == SecurityProtocols(rawValue: 0))
        let cc = try #require(f.connectionConfirm)
        #expect(cc.at.frame == 7)
        #expect(cc.selectedProtocol == SecurityProtocols(rawValue: 0))
        #expect(cc.failure == nil)
        let ci = try #require(f.mcsConnectInitial)
        #expect(ci.at.frame == 11)
        #expect(ci.clientName == "JOHN-PC-LAPTOP")
        #expect(ci.clientBuild == 9600)
        #expect(ci.keyboardLayout == 1033)
        #expect(ci.desktopWidth == 1920 && ci.desktopHeight == 1080)
        #expect(ci.encryptionMethods == 0x1B)
        #expect(ci.channels == ["rdpdr", "rdpsnd", "cliprdr", "drdynvc"])
        let resp = try #require(f.mcsConnectResponse)
        #expect(resp.at.frame == 13)
        #expect(resp.result == 0)
        #expect(resp.encryptionMethod == 2)
        #expect(resp.encryptionLevel == 2)
        #expect(resp.clientRequestedProtocols == 0)
        #expect(resp.certificateKind == "x509")
        #expect(resp.temporaryCertificate == true)
        #expect(resp.certificates.map(\.subject) == [
            "CN=ncalrpc:SERVR+L=ncalrpc:SERVR+serialNumber=1BcKefYSF97EvkaiCqahPY8uPd0=\\0D\\0A", "CN=SERVR+L=TURNBKL",
        ])
        #expect(f.tls == nil)
        #expect(f.credssp == nil)
        #expect(f.lostSync == [])
    }

    @Test func unknownKeyboardLayout() throws {
        let f = StreamPlayer.play(CaptureFixtures.zeekUnknownKeyboard, .asCaptured)
        // tshark: keyboardLayout 263198 (0x4041e, zeek's "Thai (Best Guess)").
        #expect(f.mcsConnectInitial?.keyboardLayout == 263_198)
        #expect(f.mcsConnectInitial?.at.frame == 11)
        #expect(f.mcsConnectResponse == nil)
    }

    @Test func windowsXPWithoutNegotiation() throws {
        let f = StreamPlayer.play(CaptureFixtures.suricataXP, .asCaptured)
        let cr = try #require(f.connectionRequest)
        #expect(cr.at.frame == 4)
        #expect(cr.cookie == "A70067")
        #expect(!cr.hasNegotiationRequest)
        #expect(cr.requestedProtocols == nil)
        #expect(f.connectionConfirm?.noNegotiationData == true)
        // tshark: ISD2-KM84178, build 2600, 1152x864, encryptionMethods 0x0b,
        // channels rdpdr, cliprdr, rdpsnd; server 56-bit RC4 (8), Client Compatible (2).
        let ci = try #require(f.mcsConnectInitial)
        #expect(ci.at.frame == 7)
        #expect(ci.clientName == "ISD2-KM84178")
        #expect(ci.clientBuild == 2600)
        #expect(ci.desktopWidth == 1152 && ci.desktopHeight == 864)
        #expect(ci.encryptionMethods == 0x0B)
        #expect(ci.channels == ["rdpdr", "cliprdr", "rdpsnd"])
        let resp = try #require(f.mcsConnectResponse)
        #expect(resp.at.frame == 8)
        #expect(resp.encryptionMethod == 8)
        #expect(resp.encryptionLevel == 2)
        #expect(resp.certificateKind == "proprietary")
        #expect(resp.proprietaryKeyBits == 512)
    }

    @Test func longSessionsStopEarly() {
        var player = StreamPlayer()
        player.run(CaptureFixtures.suricataXP, .asCaptured)
        // Both directions gave up after the connect exchange and 16 more PDUs.
        #expect(player.client.done)
        #expect(player.server.done)
    }

    @Test func hybridExThroughEarlyUserAuthorization() throws {
        let f = StreamPlayer.play(CaptureFixtures.ndpiHybridEx, .asCaptured)
        #expect(f.connectionRequest?.requestedProtocols == [.ssl, .hybrid, .hybridEx])
        #expect(f.connectionRequest?.cookie == nil)
        let cc = try #require(f.connectionConfirm)
        #expect(cc.selectedProtocol == .hybridEx)
        #expect(cc.flags == 0x1F)
        #expect(f.firstClientPayload == .x224ConnectionRequest)
        let tls = try #require(f.tls)
        #expect(tls.clientHello?.at.frame == 7)
        #expect(tls.clientHello?.streamOffset == 19)
        #expect(tls.clientHello?.legacyVersion == 0x0303)
        #expect(tls.clientHello?.serverName == "192.168.2.142")
        #expect(tls.clientHello?.cipherSuites.count == 22)
        #expect(tls.serverHello?.at.frame == 8)
        #expect(tls.serverHello?.version == 0x0303)
        #expect(tls.serverHello?.cipherSuite == 0xC030)
        #expect(!tls.isTLS13)
        #expect(tls.certificateFrame?.frame == 8)
        #expect(tls.serverHelloDone?.frame == 8)
        #expect(tls.certificates.first?.subject == "CN=OFFICE-WIN10-VM")
        #expect(tls.certificates.first?.selfSigned == true)
        #expect(tls.clientChangeCipherSpec?.frame == 10)
        #expect(tls.serverChangeCipherSpec?.frame == 11)
        #expect(tls.handshakeComplete)
        #expect(tls.alerts == [])
        // tshark record lengths: 81 (13), 286 (14), 567 (16), 83 (17), 100 (19), 28 (20).
        #expect(tls.applicationRecords.map(\.length) == [81, 286, 567, 83, 100, 28])
        #expect(tls.applicationRecords.map(\.at.frame) == [13, 14, 16, 17, 19, 20])
        #expect(tls.applicationRecords.map(\.from) == [.client, .server, .client, .server, .client, .server])
        #expect(tls.clientApplicationBytes == 81 + 567 + 100)
        let credssp = try #require(f.credssp)
        #expect(credssp.phase == .earlyUserAuthorization)
        #expect(credssp.reachedAt?.frame == 20)
        #expect(credssp.records.count == 6)
    }

    @Test func credSSPEndsWithEncryptedAlert() throws {
        let f = StreamPlayer.play(CaptureFixtures.bruteCredSSPAlert, .asCaptured)
        #expect(f.connectionConfirm?.selectedProtocol == .hybrid)
        let tls = try #require(f.tls)
        #expect(tls.clientHello?.at.frame == 241)
        #expect(tls.serverHello?.at.frame == 242)
        #expect(tls.serverHello?.cipherSuite == 0xC02F)
        #expect(tls.handshakeComplete)
        #expect(tls.applicationRecords.map(\.length) == [81, 239, 761])
        // tshark: frame 257 (time 1534808510.451672000), content type 21, length 26, after the
        // server's CCS.
        let at = FrameRef(frame: 257, time: Timestamp(seconds: 1_534_808_510, nanos: 451_672_000))
        #expect(tls.alerts == [TLSAlertFacts(at: at, from: .server, level: nil, description: nil, encrypted: true)])
        #expect(f.credssp?.phase == .authenticate)
    }

    @Test func tls10WithSplitRecords() throws {
        let f = StreamPlayer.play(CaptureFixtures.bruteTLS10, .asCaptured)
        let tls = try #require(f.tls)
        // tshark: ServerHello TLS 1.0 (0x0301), TLS_RSA_WITH_AES_128_CBC_SHA.
        #expect(tls.serverHello?.version == 0x0301)
        #expect(tls.serverHello?.cipherSuite == 0x002F)
        #expect(tls.serverHelloDone?.frame == 341)
        #expect(tls.applicationRecords.map(\.length) == [80, 224, 32, 736])
        #expect(tls.alerts.first?.at.frame == 353)
        #expect(tls.alerts.first?.encrypted == true)
        #expect(f.credssp?.phase == .authenticate)
    }

    @Test func credSSPAfterLostSegments() throws {
        let f = StreamPlayer.play(CaptureFixtures.bruteHybrid, .asCaptured)
        #expect(f.connectionRequest?.cookie == "ConnectME")
        #expect(f.connectionConfirm?.flags == 0x09)
        let tls = try #require(f.tls)
        #expect(tls.clientHello?.streamOffset == 47)
        #expect(tls.serverHello?.cipherSuite == 0xC027)
        // tshark shows only 70 (320) and 71 (832): frame 69 carries the client's first
        // record (112) as a retransmission of a segment the capture missed, which tshark
        // does not dissect; the bytes are the same.
        #expect(tls.applicationRecords.map(\.length) == [112, 320, 832])
        #expect(tls.applicationRecords.map(\.at.frame) == [69, 70, 71])
        #expect(f.credssp?.phase == .authenticate)
        #expect(tls.alerts == [])
    }

    @Test func negotiationOnly() throws {
        let f = StreamPlayer.play(CaptureFixtures.bruteNegOnly, .asCaptured)
        #expect(f.connectionRequest?.cookie == "glavbuh")
        #expect(f.connectionRequest?.requestedProtocols == .hybrid)
        #expect(f.connectionConfirm?.selectedProtocol == .hybrid)
        #expect(f.connectionConfirm?.flags == 0x1F)
        #expect(f.tls == nil)
    }

    @Test func gapAtTheStartResynchronises() throws {
        let f = StreamPlayer.play(CaptureFixtures.bruteGapAtStart, .asCaptured)
        // The X.224 exchange is not in the capture; TLS is found at the next record.
        #expect(f.connectionRequest == nil)
        #expect(f.connectionConfirm == nil)
        #expect(f.firstClientPayload == nil)
        #expect(f.lostSync == [])
        let tls = try #require(f.tls)
        #expect(tls.serverHello?.at.frame == 320)
        #expect(tls.clientHello != nil)
        #expect(tls.alerts.first?.at.frame == 329)
        #expect(f.notes.contains { $0.description.contains("resynchronised") })
        // Without the Connection Confirm nobody knows CredSSP was selected.
        #expect(f.credssp == nil)
    }

}
