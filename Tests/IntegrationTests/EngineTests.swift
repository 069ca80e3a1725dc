import Foundation
import Testing
import TriageCapture
import TriageDiagnosis
import TriageFlows
import TriageEngine

/// The engine classifies and reports on a second thread, in batches: what the sinks see
/// must not depend on the batching.
@Suite struct EngineTests {
    static func run(_ path: String, batch: Int, window: Int = 1024, readAhead: Bool = true,
                    handBackEarly: Bool = false) -> Collect {
        var options = EngineOptions()
        options.verdictBatch = batch
        options.reorderWindow = window
        options.readAhead = readAhead
        if handBackEarly {
            // Any machine, always "busy", checked every few frames: the reader hands the file
            // back within the first dozen frames.
            options.readAheadMaxCores = .max
            options.readAheadBusyShare = -1
            options.readAheadCheckFrames = 3
            // Small batches, so that the reader is still reading when it is asked to stop.
            options.readAheadBatches = 2
            options.readAheadBatchBytes = 4096
        }
        let c = Collect()
        Engine(options: options).analyze(path: path, sink: c)
        return c
    }

    static var inputs: [String] {
        var all = Repo.committedCaptures
        // The largest public trace (71 attempts, many overlapping) when it is there.
        if let big = Repo.publicCaptureFiles?.max(by: { Self.size($0) < Self.size($1) }) { all.append(big) }
        return all
    }

    static func size(_ path: String) -> Int {
        ((try? FileManager.default.attributesOfItem(atPath: path)[.size]) as? Int) ?? 0
    }

    @Test func batchingDoesNotChangeWhatTheSinkSees() throws {
        let inputs = Self.inputs
        try #require(inputs.count >= 26)
        for path in inputs {
            let one = Self.run(path, batch: 1)
            let many = Self.run(path, batch: 64)
            #expect(one.attempts == many.attempts, "\(path)")
            #expect(one.summaries == many.summaries, "\(path)")
            let ids = many.attempts.map(\.facts.tcp.id)
            #expect(ids == ids.sorted(), "\(path): attempts in the order they started")
            #expect(many.summaries.first?.attempts == many.attempts.count, "\(path)")
        }
    }

    /// Reading the file on a thread of its own changes nothing the sinks see, errors included.
    @Test func readingAheadDoesNotChangeWhatTheSinkSees() throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("rdptriage-ra-\(getpid())")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: dir) }
        // A capture cut mid-record: the error must come after the same frames.
        let whole = try Data(contentsOf: URL(fileURLWithPath: Repo.committedCaptures.max(by: { Self.size($0) < Self.size($1) })!))
        let cut = dir.appendingPathComponent("cut.pcap")
        try whole.prefix(whole.count * 2 / 3).write(to: cut)
        for path in Self.inputs + [cut.path] {
            let inline = Self.run(path, batch: 64, readAhead: false)
            let ahead = Self.run(path, batch: 64, readAhead: true)
            let handedBack = Self.run(path, batch: 64, readAhead: true, handBackEarly: true)
            #expect(inline.attempts == ahead.attempts, "\(path)")
            #expect(inline.summaries == ahead.summaries, "\(path)")
            #expect(inline.attempts == handedBack.attempts, "\(path)")
            #expect(inline.summaries == handedBack.summaries, "\(path)")
        }
        // A file cut inside a record is read up to the cut: a warning, not an input error.
        let cutSummary = Self.run(cut.path, batch: 64).summaries.first
        #expect(cutSummary?.warning?.kind == .truncated)
        #expect(cutSummary?.error == nil)
    }

    @Test func aSmallReorderWindowStillDeliversEveryAttemptOnce() throws {
        for path in Self.inputs {
            let full = Self.run(path, batch: 64)
            let tight = Self.run(path, batch: 3, window: 1)
            #expect(Set(tight.attempts.map(\.facts.tcp.id)) == Set(full.attempts.map(\.facts.tcp.id)), "\(path)")
            #expect(tight.attempts.count == full.attempts.count, "\(path)")
        }
    }

    /// A sink that renders ahead: what it is handed must be the rendering of the very attempt
    /// it comes with, in the same order as for a sink that does not.
    final class Rendering: PrerenderingSink {
        var attempts: [Attempt] = []
        var mismatches = 0
        var plain = 0
        static func text(_ a: Attempt) -> [UInt8] { Array("\(a.facts.tcp.id) \(a.verdict.label.rawValue)".utf8) }
        var prerender: (@Sendable (Attempt) -> [UInt8])? { { @Sendable a in Rendering.text(a) } }
        func begin(_ input: InputInfo) {}
        func attempt(_ a: Attempt) {
            plain += 1
            attempts.append(a)
        }
        func attempt(_ a: Attempt, prerendered: [UInt8]) {
            if prerendered != Self.text(a) { mismatches += 1 }
            attempts.append(a)
        }
        func end(_ s: InputSummary) {}
    }

    @Test func renderingAheadKeepsOrderAndPairs() throws {
        for path in Self.inputs {
            let reference = Self.run(path, batch: 64)
            for (batch, window) in [(1, 1024), (64, 1024), (5, 1)] {
                var options = EngineOptions()
                options.verdictBatch = batch
                options.reorderWindow = window
                let r = Rendering()
                Engine(options: options).analyze(path: path, sink: r)
                #expect(r.mismatches == 0, "\(path)")
                #expect(r.plain == 0, "\(path): every attempt came rendered")
                if window == 1024 {
                    #expect(r.attempts == reference.attempts, "\(path) batch \(batch)")
                } else {
                    #expect(r.attempts.count == reference.attempts.count, "\(path)")
                }
            }
        }
    }
}
