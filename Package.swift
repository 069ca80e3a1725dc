// swift-tools-version: 6.1
import PackageDescription

// One module per layer; dependencies point one way:
// CLI → Reports → Engine → Diagnosis → Protocols → Flows → Decoding → Capture → CPcap, CZlib.
let strict: [SwiftSetting] = [
    .enableUpcomingFeature("ExistentialAny"),
    .enableUpcomingFeature("MemberImportVisibility"),
    // Release builds skip the run-time exclusivity checks: one thread owns each session and
    // parser, the checks cost a tenth of the packet path, and debug builds (the tests and
    // scripts/fuzz) keep them, so an overlapping access still traps there.
    .unsafeFlags(["-enforce-exclusivity=unchecked"], .when(configuration: .release)),
]

var extraTargets: [Target] = []
if Context.environment["RDPTRIAGE_FUZZ"] == "1" {
    // The libFuzzer harness (Fuzz/Harness.swift): only scripts/fuzz-coverage builds it, with
    // -sanitize=fuzzer, which supplies its main.
    extraTargets.append(
        .executableTarget(
            name: "rdptriage-fuzz", dependencies: ["TriageCapture", "TriageDecoding", "TriageEngine", "TriageReports"], path: "Fuzz",
            swiftSettings: strict))
}

let package = Package(
    name: "rdptriage",
    platforms: [.macOS(.v15)],
    products: [
        .executable(name: "rdptriage", targets: ["rdptriage"])
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.5.0"),
        .package(url: "https://github.com/apple/swift-collections", from: "1.1.0"),
        .package(url: "https://github.com/apple/swift-certificates", from: "1.10.0"),
        .package(url: "https://github.com/apple/swift-asn1", from: "1.3.0"),
        .package(url: "https://github.com/apple/swift-crypto", from: "4.5.2"),
    ],
    targets: [
        // libpcap and zlib (for gzip-compressed captures) are the only C dependencies, and
        // only TriageCapture imports them.
        .systemLibrary(
            name: "CPcap",
            pkgConfig: "libpcap",
            providers: [.apt(["libpcap-dev"])]
        ),
        .systemLibrary(name: "CZlib", pkgConfig: "zlib", providers: [.apt(["zlib1g-dev"])]),
        .target(name: "TriageCapture", dependencies: ["CPcap", "CZlib"], swiftSettings: strict),
        .target(name: "TriageDecoding", dependencies: ["TriageCapture"], swiftSettings: strict),
        .target(
            name: "TriageFlows",
            dependencies: ["TriageDecoding", .product(name: "DequeModule", package: "swift-collections")],
            swiftSettings: strict
        ),
        .target(
            name: "TriageProtocols",
            dependencies: [
                "TriageDecoding", "TriageFlows",
                .product(name: "X509", package: "swift-certificates"),
                .product(name: "SwiftASN1", package: "swift-asn1"),
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "_CryptoExtras", package: "swift-crypto"),
            ],
            swiftSettings: strict
        ),
        .target(
            name: "TriageDiagnosis",
            dependencies: ["TriageFlows", "TriageProtocols", .product(name: "HeapModule", package: "swift-collections")],
            swiftSettings: strict
        ),
        .target(
            name: "TriageEngine",
            dependencies: ["TriageCapture", "TriageDecoding", "TriageFlows", "TriageProtocols", "TriageDiagnosis"],
            swiftSettings: strict
        ),
        .target(name: "TriageReports", dependencies: ["TriageEngine", "TriageDiagnosis"], swiftSettings: strict),
        .target(
            name: "TriageCLI",
            dependencies: [
                "TriageEngine", "TriageReports", "TriageCapture", "TriageDecoding", "TriageFlows", "TriageProtocols",
                "TriageDiagnosis", .product(name: "ArgumentParser", package: "swift-argument-parser"),
            ],
            swiftSettings: strict
        ),
        .executableTarget(name: "rdptriage", dependencies: ["TriageCLI"], swiftSettings: strict),
        // What several test targets share (a deterministic random generator).
        .target(name: "TestSupport", path: "Tests/TestSupport", swiftSettings: strict),
        .testTarget(name: "TriageDecodingTests", dependencies: ["TriageDecoding", "TestSupport"], swiftSettings: strict),
        .testTarget(
            name: "TriageCaptureTests",
            dependencies: ["TriageCapture", "TriageDecoding", "TestSupport"],
            swiftSettings: strict
        ),
        .testTarget(
            name: "TriageFlowsTests", dependencies: ["TriageFlows", "TriageDecoding", "TestSupport"], swiftSettings: strict),
        .testTarget(
            name: "TriageProtocolsTests",
            dependencies: [
                "TriageProtocols", "TriageDecoding", "TriageFlows", "TriageCapture", "TestSupport",
                .product(name: "Crypto", package: "swift-crypto"),
            ],
            swiftSettings: strict
        ),
        // The classifier's rules on facts built by hand, rule by rule (no capture).
        .testTarget(
            name: "TriageDiagnosisTests",
            dependencies: ["TriageDiagnosis", "TriageProtocols", "TriageFlows", "TriageDecoding", "TriageCapture"],
            swiftSettings: strict
        ),
        .testTarget(
            name: "TriageReportsTests", dependencies: ["TriageReports", "TestSupport"], swiftSettings: strict),
        .testTarget(
            name: "IntegrationTests",
            dependencies: [
                "TriageEngine", "TriageReports", "TriageCLI", "TriageCapture", "TriageDiagnosis", "TriageFlows", "TestSupport",
            ],
            swiftSettings: strict
        ),
    ] + extraTargets
)
