import Testing
import TriageCapture
import TriageFlows

@testable import TriageProtocols

/// Certificates made with openssl 3 for the cases the captures lack (EC keys, SANs, an
/// inspection CA, a self-signed-looking certificate signed by another key, a 1024-bit RSA
/// key that swift-certificates refuses). Expected values are openssl's `x509 -text`.
@Suite struct GeneratedCertificateTests {
    static let ca = hexBytes("""
        30820202308201a9a00302010202144e58ba60fffab9cac0c30ee5cb163df104588ba2300a06082a8648ce3d04030230
        57310b30090603550406130255533111300f060355040a0c08466f7274696e6574311e301c060355040b0c1543657274
        6966696361746520417574686f726974793115301306035504030c0c466f72746947617465204341301e170d32363131
        32353132323835385a170d3336313132323132323835385a3057310b30090603550406130255533111300f060355040a
        0c08466f7274696e6574311e301c060355040b0c15436572746966696361746520417574686f72697479311530130603
        5504030c0c466f727469476174652043413059301306072a8648ce3d020106082a8648ce3d030107034200046e5bd33e
        36844b9927be3e71f96d1f8358d8ad062d7fb0c0c7bf1585c62b8a899865d9b3862afc1f4c004620d1b7f1f72ceaebfb
        abbbf975b92dffa9dd3bb212a3533051301d0603551d0e041604148abb09600ab3c51e6ea313299af61961d377e74230
        1f0603551d230418301680148abb09600ab3c51e6ea313299af61961d377e742300f0603551d130101ff040530030101
        ff300a06082a8648ce3d0403020347003044022020ee83621c14f5b0a35eaec672505bb66b1b332eba0f4bbec02a2ec1
        0fcce75b022072ea9be4b48ec7def2cc06ba3065fe5907b078288fcbc25aeffdf18a9173cb34
        """)
    static let leaf = hexBytes("""
        308201e93082018fa003020102020400c0ffee300a06082a8648ce3d0403023057310b30090603550406130255533111
        300f060355040a0c08466f7274696e6574311e301c060355040b0c15436572746966696361746520417574686f726974
        793115301306035504030c0c466f72746947617465204341301e170d3236313132353132323835385a170d3237313132
        353132323835385a301a3118301606035504030c0f7264702e6578616d706c652e636f6d3059301306072a8648ce3d02
        0106082a8648ce3d03010703420004e2a17dd27aedd6d16d24ad897c623d90863cd48612ffdc99d38e1924f21231185c
        9f1a73e0d61db8220b46137c1eb29a560fdc52d8487262a8b23cdff256cd58a3818530818230400603551d1104393037
        820f7264702e6578616d706c652e636f6d820d2a2e6578616d706c652e636f6d8704c000020a810f6f7073406578616d
        706c652e636f6d301d0603551d0e0416041452814eff3ebceda4d161df8fa702543e5c46b0b2301f0603551d23041830
        1680148abb09600ab3c51e6ea313299af61961d377e742300a06082a8648ce3d0403020348003045022100d5e684a22a
        24d73deb4f04103a04e34bdcd7680b1f46babdf25e3d6264c8850e022038bfd04a63ff278f89e84a980fe3dcd0878e76
        5e930f6e66f078681df9060ba4
        """)
    static let fake = hexBytes("""
        308201233081aa020107300a06082a8648ce3d040303300e310c300a06035504030c03535256301e170d323631313235
        3132323835385a170d3236313232353132323835385a300e310c300a06035504030c035352563059301306072a8648ce
        3d020106082a8648ce3d03010703420004e2a17dd27aedd6d16d24ad897c623d90863cd48612ffdc99d38e1924f21231
        185c9f1a73e0d61db8220b46137c1eb29a560fdc52d8487262a8b23cdff256cd58300a06082a8648ce3d040303036800
        30650231008362aca6115721c3cb8e277ecc01f9256a50d5063913d879feca6e67a9b70859dfd0b968ea4ccd1ca1afa5
        879414b9eb0230681c3426e0a9f7e04a3420713ab14d5722452765f8fd524a63b750cf65d967f11b74763d07838dcd6e
        6e3aaea81a2298
        """)
    static let rsa1024 = hexBytes("""
        308202063082016fa00302010202142a66ddbd77ec179ab1dec1f22647cda42d2f0752300d06092a864886f70d01010b
        050030153113301106035504030c0a4f4c442d534552564552301e170d3236313132353132323835395a170d32373131
        32353132323835395a30153113301106035504030c0a4f4c442d53455256455230819f300d06092a864886f70d010101
        050003818d0030818902818100d2f2b130b6d9cde63347a426a16f985615dc19081f4ceaf0f5864f38e4c3df9c172e9e
        9638fcaf0e33ccf4d67be48d317eab839930f7d0bba24256334f5db16191a1598731acf45c80ed7891e19d62a34a36be
        4be3ce7f75c8e8558891025224a53830e51f10b8e9f6c90527e9b584d9fbf7b26fd9fd6624416b0dd6f7b75f23020301
        0001a3533051301d0603551d0e04160414f54711f26f0f7d885fa0571a65ff84f1e48cc548301f0603551d2304183016
        8014f54711f26f0f7d885fa0571a65ff84f1e48cc548300f0603551d130101ff040530030101ff300d06092a864886f7
        0d01010b05000381810082ce0cd25fdc72ee8d3f8b90161922b47bf2d6432b9f1f2820f02ac48cd28ef7503d4e14e019
        77724ad06c2996f583f07baa6be8dca10850a90eb420c896545747c103b7f4933a9a942897e854479833a29589b449dd
        005d3ab1df9e7b3eafcead24add919021fe9e1bb85c366a034a981ad055bb2d72cfa3e53a27e03f373b9
        """)

    static func facts(_ der: [UInt8]) -> CertificateFacts? {
        value(parse([]) { _ throws(ParseError) in try CertificateParser.facts(der: der) })
    }

    @Test func inspectionCA() throws {
        let ca = try #require(Self.facts(Self.ca))
        #expect(ca.subject == "CN=FortiGate CA,OU=Certificate Authority,O=Fortinet,C=US")
        #expect(ca.issuer == ca.subject)
        #expect(ca.serialNumber == "4E58BA60FFFAB9CAC0C30EE5CB163DF104588BA2")
        #expect(ca.keyType == "ECDSA P-256")
        #expect(ca.keyBits == 256)
        #expect(ca.signatureAlgorithm == "ecdsa-with-SHA256")
        // swift-certificates verifies the self-signature.
        #expect(ca.selfSigned)
        #expect(ca.inspectionProduct == "Fortinet FortiGate")
        #expect(ca.sha256 == "2516dd143e03eb039f01916458484195fbd0c309985e3d15c8f2c875830101fc")
        #expect(ca.notBefore == Timestamp(seconds: 1_795_609_738, nanos: 0))
        #expect(ca.notAfter == Timestamp(seconds: 2_110_969_738, nanos: 0))
    }

    @Test func leafIssuedByTheInspectionCA() throws {
        let leaf = try #require(Self.facts(Self.leaf))
        #expect(leaf.subject == "CN=rdp.example.com")
        #expect(leaf.issuer == "CN=FortiGate CA,OU=Certificate Authority,O=Fortinet,C=US")
        #expect(leaf.serialNumber == "C0FFEE")
        #expect(!leaf.selfSigned)
        #expect(leaf.inspectionProduct == "Fortinet FortiGate")
        #expect(leaf.subjectAlternativeNames == ["DNS:rdp.example.com", "DNS:*.example.com", "IP:192.0.2.10", "email:ops@example.com"])
        #expect(leaf.notAfter == Timestamp(seconds: 1_827_145_738, nanos: 0))
        #expect(leaf.sha256 == "2f1367b883756b59ceba04033a8752616c309c1d10e26118d90d495c082171bb")
    }

    @Test func sameNamesButAnotherSigner() throws {
        let fake = try #require(Self.facts(Self.fake))
        #expect(fake.subject == "CN=SRV")
        #expect(fake.issuer == "CN=SRV")
        #expect(fake.signatureAlgorithm == "ecdsa-with-SHA384")
        #expect(fake.keyType == "ECDSA P-256")
        // Names equal, but the signature is not the certificate's own key's.
        #expect(!fake.selfSigned)
        #expect(fake.notAfter == Timestamp(seconds: 1_798_201_738, nanos: 0))
    }

    @Test func smallRSAKeyStillReported() throws {
        let old = try #require(Self.facts(Self.rsa1024))
        #expect(old.subject == "CN=OLD-SERVER")
        #expect(old.keyType == "RSA")
        #expect(old.keyBits == 1024)
        #expect(old.signatureAlgorithm == "sha256WithRSAEncryption")
        // swift-certificates refuses a 1024-bit key: equal names decide.
        #expect(old.selfSigned)
        #expect(old.sha256 == "b858bb1fccb7fbe31c03dd3f68961000e9a1127a45775d3059ab98fb16af0dd8")
    }
}
