// Coverage-guided fuzzing of the whole analyzer (libFuzzer): an input is a little capture in
// a framing of our own, run through decoding, session tracking, reassembly, the RDP/TLS/CredSSP
// parsers, classification and a report, as `rdptriage analyze` would. Any trap (overflow,
// out-of-range access, a failed precondition) is a crash that libFuzzer saves.
//
// Built only by scripts/fuzz-coverage (RDPTRIAGE_FUZZ=1 and -sanitize=fuzzer, which brings
// libFuzzer's main); ordinary builds do not see this target.
//
// Input: byte 0 picks the link type (low 4 bits, among those decoded), the report (bits 4-5:
// text, JSON, Markdown; bit 6: redacted, and every frame then rewritten as `--export
// --redact` would) and the verdict batch (bit 7: 64, else 1); then frames, each a 2-byte
// big-endian length, one timing byte and that many bytes (cut short at the end of the input;
// scripts/fuzz-coverage writes the seeds in this form, its link-type table in the same order
// as `linkTypes` below). The timing byte's
// low 7 bits advance the clock by that many 5 ms steps, 127 by 700 s (past every idle
// timeout); its high bit marks the frame as cut by the snapshot length (100 bytes more on
// the wire than captured).

import TriageCapture
import TriageDecoding
import TriageEngine
import TriageReports

private let linkTypes: [LinkType] = [
    .ethernet, .linuxSLL, .linuxSLL2, .raw, .ipv4, .ipv6, .null, .loop, .rawOpenBSD,
]

final class FuzzSource: PacketSource {
    let name = "fuzz input"
    let linkType: LinkType
    let filteredOut = 0
    private let data: UnsafeRawBufferPointer
    private var position = 1
    private var frame = 0
    private var clock: Int64 = 1_700_000_000_000_000_000

    init(_ data: UnsafeRawBufferPointer) {
        self.data = data
        linkType = linkTypes[Int(data[0] & 0x0F) % linkTypes.count]
    }

    func next() throws(CaptureError) -> RawPacket? {
        guard position + 3 <= data.count else { return nil }
        let length = Int(data[position]) << 8 | Int(data[position + 1])
        let timing = data[position + 2]
        position += 3
        let n = min(length, data.count - position)
        let bytes = UnsafeRawBufferPointer(rebasing: data[position..<(position + n)])
        position += n
        frame += 1
        let steps = Int64(timing & 0x7F)
        clock += steps == 127 ? 700_000_000_000 : steps * 5_000_000
        return RawPacket(
            frameNumber: frame, timestamp: Timestamp(nanoseconds: clock), capturedLength: n,
            originalLength: timing & 0x80 != 0 ? n + 100 : n, linkType: linkType, bytes: bytes)
    }
}

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzOne(_ start: UnsafePointer<UInt8>?, _ count: Int) -> Int32 {
    guard let start, count > 0 else { return 0 }
    let data = UnsafeRawBufferPointer(start: start, count: count)
    var options = EngineOptions()
    options.readAhead = false
    // Cut inputs are most of what the fuzzer makes; a warning line each would flood its output.
    options.warn = { _ in }
    options.verdictBatch = 1 + Int(data[0] >> 7) * 63
    guard let output = try? ReportOutput.file("/dev/null") else { return 0 }
    var reportOptions = ReportOptions()
    let redactor = data[0] & 0x40 != 0 ? Redactor() : nil
    reportOptions.redactor = redactor
    let sink: any AnalysisSink
    switch (data[0] >> 4) & 0x03 {
    // Both JSON schemas (the input's length picks one: its first byte has no bit left).
    case 1 where count % 2 == 0: sink = JSONReport(output: output, options: reportOptions)
    case 1: sink = JSONReportV2(output: output, options: reportOptions)
    case 2: sink = MarkdownReport(output: output, options: reportOptions)
    case 3: sink = NDJSONReport(output: output, options: reportOptions)
    default:
        reportOptions.verbose = true
        sink = TextReport(output: output, options: reportOptions)
    }
    Engine(options: options).analyze(source: FuzzSource(data), sink: sink)
    (sink as? JSONReport)?.finish(exitCode: 0)
    (sink as? JSONReportV2)?.finish(exitCode: 0)
    if let redactor {
        // What `--export --redact` does to each exported frame, with the names learned above.
        let rewrite = redactor.packetRewrite()
        let again = FuzzSource(data)
        while let raw = try? again.next() {
            var bytes = Array(raw.bytes)
            PacketRewriter.rewrite(&bytes, linkType: again.linkType, rewrite)
        }
    }
    return 0
}

// SwiftPM links an executable's entry point under this name (`main` is defined as it);
// libFuzzer's driver then runs the loop, as its own `main` would.
@_silgen_name("LLVMFuzzerRunDriver")
private func runDriver(
    _ argc: UnsafeMutablePointer<Int32>,
    _ argv: UnsafeMutablePointer<UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?>,
    _ callback: @convention(c) (UnsafePointer<UInt8>?, Int) -> Int32
) -> Int32

@_cdecl("rdptriage_fuzz_main")
public func fuzzMain(_ argc: Int32, _ argv: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?) -> Int32 {
    var argc = argc
    var argv = argv
    return runDriver(&argc, &argv) { start, count in fuzzOne(start, count) }
}
