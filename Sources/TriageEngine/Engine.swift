import Dispatch
#if canImport(Glibc)
    import Glibc
#endif
import Synchronization
import TriageCapture
import TriageDecoding
import TriageDiagnosis
import TriageFlows
import TriageProtocols

/// One analysed attempt: its facts and the verdict on them.
public struct Attempt: Sendable, Codable, Equatable {
    public var facts: AttemptFacts
    public var verdict: Verdict

    public init(facts: AttemptFacts, verdict: Verdict) {
        self.facts = facts
        self.verdict = verdict
    }

    /// The facts with the classifier's verdict on them.
    init(classifying facts: AttemptFacts, running: Bool = false) {
        self.init(facts: facts, verdict: Classifier.classify(facts, running: running))
    }
}

/// What the engine says about an input before its attempts.
public struct InputInfo: Sendable, Codable, Equatable {
    public var input: String
    public var linkType: String?
    public var snapshotLength: Int?

    public init(input: String, linkType: String?, snapshotLength: Int?) {
        self.input = input
        self.linkType = linkType
        self.snapshotLength = snapshotLength
    }
}

/// What the engine says about an input after its attempts.
public struct InputSummary: Sendable, Codable, Equatable {
    public var input: String
    public var stats: TrackerStats
    /// Set when the input could not be read (completely): the attempts before the problem
    /// were still analysed.
    public var error: CaptureError?
    /// Set when the input's last record was cut short (a capture stopped while writing):
    /// every complete frame before it was analysed, so the input counts as read.
    public var warning: CaptureError?
    /// Frames skipped by the BPF filter.
    public var filteredOut: Int
    /// Bytes reassembly held at its peak, over all sessions.
    public var peakReassemblyBytes: Int
    public var attempts: Int
    public var failures: Int

    public init(input: String, stats: TrackerStats, error: CaptureError?, filteredOut: Int, peakReassemblyBytes: Int,
                attempts: Int, failures: Int, warning: CaptureError? = nil) {
        self.input = input
        self.stats = stats
        self.error = error
        self.warning = warning
        self.filteredOut = filteredOut
        self.peakReassemblyBytes = peakReassemblyBytes
        self.attempts = attempts
        self.failures = failures
    }
}

extension CaptureError: Codable {
    enum CodingKeys: String, CodingKey { case input, kind, detail, byteOffset, message }
    public init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        self.init(
            input: try c.decode(String.self, forKey: .input),
            kind: Kind(rawValue: try c.decode(String.self, forKey: .kind)) ?? .corrupt,
            detail: try c.decode(String.self, forKey: .detail),
            byteOffset: try c.decodeIfPresent(Int64.self, forKey: .byteOffset))
    }
    public func encode(to encoder: any Encoder) throws {
        var c = encoder.container(keyedBy: CodingKeys.self)
        try c.encode(input, forKey: .input)
        try c.encode(kind.rawValue, forKey: .kind)
        try c.encode(detail, forKey: .detail)
        try c.encodeIfPresent(byteOffset, forKey: .byteOffset)
        try c.encode(description, forKey: .message)
    }
}

/// How far an input has been read, for a progress line.
public struct ReadProgress: Sendable {
    public var input: String
    /// Bytes read: frames and their record headers (of the decompressed data when the input
    /// is compressed).
    public var bytes: Int64
    /// The input's size when it is known and comparable to `bytes` (an uncompressed file).
    public var total: Int64?
    public var frames: Int
    /// Attempts (TCP connections followed) so far.
    public var attempts: Int
    /// The input has been read to its end (or to an error).
    public var finished: Bool
}

/// Receives the analysis as it happens, so reports can stream and memory stays flat.
public protocol AnalysisSink: AnyObject {
    func begin(_ input: InputInfo)
    /// Attempts arrive in the order they started, except that one still open while many
    /// later ones finished may come after them (the reorder window is bounded).
    func attempt(_ attempt: Attempt)
    func end(_ summary: InputSummary)
}

/// A live sink told when an attempt it was given as a success ends in a failure after all.
public protocol FollowUpSink: AnalysisSink {
    func followUp(_ attempt: Attempt)
}

/// A sink that can turn an attempt into its report text on any thread, ahead of time, so
/// that rendering (the costly part of a large report) runs in parallel.
public protocol PrerenderingSink: AnalysisSink {
    /// Renders one attempt without touching the sink's state; nil when this sink renders
    /// only as attempts arrive (for example when redacting, which learns names in order).
    var prerender: (@Sendable (Attempt) -> [UInt8])? { get }
    /// An attempt, in order, with what `prerender` made of it.
    func attempt(_ attempt: Attempt, prerendered: [UInt8])
}

public struct EngineOptions: Sendable {
    public var tracker = TrackerConfiguration()
    /// Where input warnings go (a capture whose last record is cut short): one line each, on
    /// standard error unless the caller says otherwise, whatever the report format.
    /// The text names the input, so control characters are escaped (one line, no terminal codes).
    public var warn: @Sendable (String) -> Void = { line in
        let bytes = Array("rdptriage: \(Printable.escapingControls(line))\n".utf8)
        _ = bytes.withUnsafeBytes { write(2, $0.baseAddress, $0.count) }
    }
    /// A BPF filter applied to every frame (frame numbers still count every frame).
    public var filter: String?
    /// Most finished attempts held back to restore start order.
    public var reorderWindow = 1024
    /// Finished attempts handed to the verdict thread at a time (1 for live captures, where
    /// a verdict should not wait for others).
    public var verdictBatch = 64
    /// For the benchmark's breakdown only: stop the pipeline after this stage (no verdicts
    /// are reported then).
    public var stopAfter: PipelineStage?
    /// Files are read on a thread of their own, ahead of the analysis (`ReadAheadSource`).
    public var readAhead = true
    /// Reading ahead gives its thread up for the rest of a file when the machine has at most
    /// `readAheadMaxCores` cores and the verdict thread was busy for more than
    /// `readAheadBusyShare` of the time in two successive stretches of `readAheadCheckFrames`
    /// frames: three busy threads then share two cores, and reading ahead only adds its copy
    /// of every frame (measured: 5-8% slower on a capture dense with short attempts, 20-35%
    /// faster on one of long sessions).
    public var readAheadMaxCores = 2
    public var readAheadBusyShare = 0.5
    public var readAheadCheckFrames = 1 << 16
    /// Called on the packet thread every `progressEveryFrames` frames and once at the end of
    /// each input, for a progress line; nil: not counted at all.
    public var progress: (@Sendable (ReadProgress) -> Void)?
    public var progressEveryFrames = 8192
    /// The read-ahead's batches: how many, of how many bytes.
    public var readAheadBatches = 16
    public var readAheadBatchBytes = 1 << 20
    /// TLS secrets from `--keylog` files; a pcapng file's Decryption Secrets Blocks add to
    /// them for that file. Nil and no such blocks: nothing is decrypted.
    public var keys: TLSKeyMaterial?

    public init() {}
}

/// How a live run is steered from outside its packet loop. The checks run after every frame
/// and every quiet poll (at least ten times a second), so they must be cheap (an atomic load).
public struct LiveControl {
    /// True ends the run: open attempts are classified, the summary written.
    public var shouldStop: () -> Bool
    /// True (once per request) asks for a summary so far.
    public var takeSummaryRequest: () -> Bool
    /// Receives the summary so far and the sessions open now, on the thread that writes the
    /// reports, after every attempt reported before it.
    public var progress: (InputSummary, Int) -> Void
    /// Told, on the packet thread, how many connections were still open when the run stopped
    /// (they are classified as they stand next).
    public var stopping: (Int) -> Void
    /// The tracker's gauges, on the packet thread about once a second (for metrics).
    public var gauges: ((LiveGauges) -> Void)?
    /// Called on the packet thread about ten times a second, also while the wire is busy
    /// (the key-log watcher reads what its files gained).
    public var tick: ((Timestamp) -> Void)?
    /// `--export`: keep the open connections' frames within these bounds and hand each ended
    /// one's to `heldFrames`, under its attempt id, before its verdict reaches the sink.
    public var hold: FrameHoldLimits?
    public var heldFrames: HeldFramesHandoff?
    /// Report a successful logon when it happens (see `analyzeLive`), not at the session's end.
    public var successAtLogon = true
    /// A key log is still growing: a success waits up to `keyWaitSeconds` after the
    /// connection began for its secrets, so that its report can carry what they decrypt.
    public var keysGrowing = false
    public var keyWaitSeconds = 3.0

    public init(shouldStop: @escaping () -> Bool, takeSummaryRequest: @escaping () -> Bool = { false },
                progress: @escaping (InputSummary, Int) -> Void = { _, _ in }, stopping: @escaping (Int) -> Void = { _ in },
                gauges: ((LiveGauges) -> Void)? = nil) {
        self.shouldStop = shouldStop
        self.takeSummaryRequest = takeSummaryRequest
        self.progress = progress
        self.stopping = stopping
        self.gauges = gauges
    }
}

/// What the tracker holds at a moment of a live run.
public struct LiveGauges: Sendable {
    public var frames: Int
    public var openSessions: Int
    /// Bytes held in reassembly buffers now.
    public var reassemblyBytes: Int
    /// Sessions reported early because `--max-sessions` were open (a flood), so far.
    public var sessionsEvicted: Int
    public var sessions: Int
    /// `--export`'s frame hold: what it dropped so far.
    public var hold: FrameHoldStats?
}

/// Where `EngineOptions.stopAfter` cuts the pipeline, to measure what each stage costs.
public enum PipelineStage: String, Sendable, CaseIterable {
    /// Frames read from the source, nothing else.
    case read
    /// Frames decoded too.
    case decode
    /// TCP sessions tracked and reassembled, no protocol parsing.
    case track
    /// RDP parsed too; finished sessions dropped.
    case parse
    /// Each finished session's facts taken, then dropped (no classification, no report).
    case facts
}

/// Capture → decoding → sessions → protocols → diagnosis, for one input at a time.
public final class Engine {
    public let options: EngineOptions

    public init(options: EngineOptions) {
        self.options = options
    }

    /// Analyses a capture file (`-` for standard input). Input problems are reported to the
    /// sink in the summary, never thrown: the caller goes on with its next input.
    @discardableResult
    public func analyze(path: String, sink: any AnalysisSink) -> InputSummary {
        do {
            let file = try PcapFileSource(path: path, filter: options.filter)
            let source: any PacketSource =
                options.readAhead
                ? ReadAheadSource(file, batchBytes: options.readAheadBatchBytes, batches: options.readAheadBatches) : file
            var keys = options.keys
            if !file.tlsKeyLogs.isEmpty {
                var k = keys ?? TLSKeyMaterial()
                for text in file.tlsKeyLogs { k.add(keyLog: text) }
                keys = k
            }
            return analyze(
                source: source, sink: sink, snapshotLength: file.snapshotLength, linkTypes: file.linkTypes,
                size: file.isCompressed ? nil : Self.regularFileSize(path), keys: keys)
        } catch {
            sink.begin(InputInfo(input: path, linkType: nil, snapshotLength: nil))
            let summary = InputSummary(
                input: path, stats: TrackerStats(), error: error, filteredOut: 0, peakReassemblyBytes: 0, attempts: 0,
                failures: 0)
            sink.end(summary)
            return summary
        }
    }

    /// Analyses any packet source until it ends (a file's end, or a stopped live capture).
    /// `linkTypes`: what the source is known to mix (a pcapng file's interfaces), for the report.
    @discardableResult
    public func analyze(source: any PacketSource, sink: any AnalysisSink, snapshotLength: Int? = nil,
                        linkTypes: [LinkType]? = nil, size: Int64? = nil, keys: TLSKeyMaterial? = nil) -> InputSummary {
        var names: [String] = []
        for t in linkTypes ?? [source.linkType] where !names.contains(t.description) { names.append(t.description) }
        sink.begin(InputInfo(input: source.name, linkType: names.joined(separator: " + "), snapshotLength: snapshotLength))
        let order = ReorderBuffer(window: options.reorderWindow, sink: sink)
        let verdicts = VerdictStage(order: order, batchSize: options.verdictBatch)
        let stop = options.stopAfter
        let factory = stop == .track ? nil : RDPConsumerFactory(keys: keys ?? options.keys)
        let tracker = SessionTracker(input: source.name, configuration: options.tracker, factory: factory) {
            session, dns in
            if stop == nil {
                verdicts.add(Self.facts(session, dns: dns))
            } else if stop == .facts {
                _ = Self.facts(session, dns: dns)
            }
        }
        var decoded = DecodedPacket()
        var failure: CaptureError?
        var cutShort: CaptureError?
        let readOnly = stop == .read
        let decodeOnly = stop == .decode
        var handBack = ReadAheadHandBack(source: source, verdicts: verdicts, options: options)
        var reader = source
        let progress = options.progress
        let progressEvery = max(1, options.progressEveryFrames)
        var progressCountdown = progressEvery
        var progressBytes: Int64 = 0
        var frames = 0
        defer {
            progress?(
                ReadProgress(
                    input: source.name, bytes: progressBytes, total: size, frames: frames,
                    attempts: tracker.stats.sessions, finished: true))
        }
        do {
            while let raw = try reader.next() {
                if let direct = handBack.frameRead() { reader = direct }
                if let progress {
                    // A record header is 16 bytes in pcap; close enough for pcapng.
                    progressBytes &+= Int64(truncatingIfNeeded: raw.capturedLength &+ 16)
                    frames = raw.frameNumber
                    progressCountdown &-= 1
                    if progressCountdown == 0 {
                        progressCountdown = progressEvery
                        progress(
                            ReadProgress(
                                input: source.name, bytes: progressBytes, total: size, frames: frames,
                                attempts: tracker.stats.sessions, finished: false))
                    }
                }
                if readOnly { continue }
                PacketDecoder.decode(raw.bytes, linkType: raw.linkType, into: &decoded)
                if decodeOnly { continue }
                tracker.process(
                    decoded, bytes: raw.bytes, frameLength: raw.originalLength,
                    at: FrameRef(frame: raw.frameNumber, time: raw.timestamp))
            }
        } catch {
            // A record cut short can only be the last: the file ended inside it (tcpdump
            // killed while writing). Everything before it was read as usual.
            if error.kind == .truncated {
                cutShort = error
                options.warn("warning: \(error.description); the complete frames before it were analysed")
            } else {
                failure = error
            }
        }
        tracker.finishAll()
        verdicts.finish()
        let summary = InputSummary(
            input: source.name, stats: tracker.stats, error: failure, filteredOut: source.filteredOut,
            peakReassemblyBytes: tracker.budget.peak, attempts: order.emitted, failures: order.failures,
            warning: cutShort)
        sink.end(summary)
        return summary
    }

    /// A regular file's size; nil for a pipe or standard input.
    static func regularFileSize(_ path: String) -> Int64? {
        var st = stat()
        guard path != "-", stat(path, &st) == 0, (st.st_mode & S_IFMT) == S_IFREG else { return nil }
        return Int64(st.st_size)
    }

    /// Analyses a live capture until `control` says stop or the capture fails (the interface
    /// went down). Each attempt's verdict reaches the sink as soon as the tracker finishes it
    /// (no batching, no reordering behind attempts still open), and the clock moves on while
    /// the wire is quiet, so an unanswered SYN or a reset is reported without waiting for more
    /// traffic. On stop the frames already captured are read, then the attempts still open are
    /// classified as they stand. A capture that fails ends the run the same way, with the
    /// failure in the summary.
    @discardableResult
    public func analyzeLive(source: LiveSource, sink: any AnalysisSink, control: LiveControl) -> InputSummary {
        sink.begin(
            InputInfo(input: source.name, linkType: source.linkType.description, snapshotLength: source.snapshotLength))
        let order = ReorderBuffer(window: 0, sink: sink)
        let verdicts = VerdictStage(order: order, batchSize: 1)
        let hold = control.hold.map { FrameHold(limits: $0, snapshotLength: source.snapshotLength) }
        let handoff = control.heldFrames
        // Attempts already reported as a success while open: at their end they are reported
        // again only if the verdict on the whole connection is a failure.
        var reportedEarly = Set<Int>()
        let tracker = SessionTracker(input: source.name, configuration: options.tracker, factory: RDPConsumerFactory(keys: options.keys)) {
            session, dns in
            let facts = Self.facts(session, dns: dns)
            if let hold, let handoff, let frames = hold.take(session.key, first: session.firstFrame, last: session.lastFrame) {
                handoff.put(session.id, frames)
            }
            if reportedEarly.remove(session.id) != nil {
                verdicts.addFollowUp(facts) { id in _ = handoff?.take(id) }
            } else {
                verdicts.add(facts)
            }
        }
        var decoded = DecodedPacket()
        var failure: CaptureError?
        var lastGauges: Int64 = 0
        var lastTick: Int64 = 0
        var lastEarlyCheck: Int64 = 0
        let keyWait = Int64(control.keyWaitSeconds * 1e9)
        func gauges(_ now: Timestamp) {
            guard let g = control.gauges, now.nanoseconds &- lastGauges >= 1_000_000_000 else { return }
            lastGauges = now.nanoseconds
            let st = tracker.stats
            g(
                LiveGauges(
                    frames: st.frames, openSessions: tracker.openSessions, reassemblyBytes: tracker.budget.used,
                    sessionsEvicted: st.sessionsEvicted, sessions: st.sessions, hold: hold?.stats))
        }
        // A successful logon is reported when the facts as they stand already make it one
        // (the rule `analyze` applies at the end: with a key log, the server's logon
        // notification; without, the connection sequence's volume after CredSSP or TLS), at
        // most four times a second, for connections that carried data since the last look.
        func reportSuccesses(_ now: Timestamp) {
            guard control.successAtLogon, now.nanoseconds &- lastEarlyCheck >= 250_000_000 else { return }
            let since = lastEarlyCheck
            lastEarlyCheck = now.nanoseconds
            tracker.forEachOpenSession { s in
                guard s.lastFrame.time.nanoseconds > since, s.stats.server.dataSegments >= 4, !reportedEarly.contains(s.id)
                else { return }
                // Classified before with the same PDUs read: the facts that make a success have
                // not changed since (the server's packet count matters too, up to the 6 standard
                // security's rule asks for).
                let consumer = s.consumer as? RDPStreamConsumer
                let seen = consumer.map { $0.pdusRead &* 8 &+ min(s.stats.server.packets, 7) }
                if let seen, consumer?.classifiedAt == seen { return }
                let facts = Self.facts(s, dns: tracker.dns)
                let a = Attempt(classifying: facts, running: true)
                guard a.verdict.label == .success else {
                    if let seen { consumer?.classifiedAt = seen }
                    return
                }
                if control.keysGrowing, facts.rdp.decrypted?.status == .noSecrets,
                    now.nanoseconds &- s.firstFrame.time.nanoseconds < keyWait
                {
                    return
                }
                reportedEarly.insert(s.id)
                verdicts.addClassified(a)
            }
        }
        func tick(_ now: Timestamp) {
            guard now.nanoseconds &- lastTick >= 100_000_000 else { return }
            lastTick = now.nanoseconds
            control.tick?(now)
            reportSuccesses(now)
            if let hold { handoff?.update(hold.stats) }
        }
        while !control.shouldStop() {
            if control.takeSummaryRequest() {
                let stats = tracker.stats
                let peak = tracker.budget.peak
                let open = tracker.openSessions
                verdicts.onQueue {
                    control.progress(
                        InputSummary(
                            input: source.name, stats: stats, error: nil, filteredOut: 0, peakReassemblyBytes: peak,
                            attempts: order.emitted, failures: order.failures), open)
                }
            }
            let event: LiveEvent
            do throws(CaptureError) { event = try source.nextEvent() } catch {
                failure = error
                break
            }
            switch event {
            case .packet(let raw):
                PacketDecoder.decode(raw.bytes, linkType: raw.linkType, into: &decoded)
                hold?.add(decoded, raw)
                tracker.process(
                    decoded, bytes: raw.bytes, frameLength: raw.originalLength,
                    at: FrameRef(frame: raw.frameNumber, time: raw.timestamp))
                gauges(raw.timestamp)
                tick(raw.timestamp)
            case .idle(let now):
                tracker.advance(to: now)
                gauges(now)
                tick(now)
            }
        }
        if failure == nil {
            // What the kernel had already captured when the stop came is analysed too (the
            // packet thread may lag behind a burst): read up to the count libpcap received by
            // then, until the buffer stays empty, and for at most ten seconds, so a wire that
            // never goes quiet cannot hold the stop up.
            let received = source.stats()?.received ?? 0
            let until = LiveSource.now().nanoseconds &+ 10_000_000_000
            var quiet = 0
            while quiet < 2 && UInt64(source.framesRead) < received && LiveSource.now().nanoseconds < until {
                let event: LiveEvent
                do throws(CaptureError) { event = try source.nextEvent() } catch { break }
                guard case .packet(let raw) = event else {
                    quiet += 1
                    continue
                }
                quiet = 0
                PacketDecoder.decode(raw.bytes, linkType: raw.linkType, into: &decoded)
                hold?.add(decoded, raw)
                tracker.process(
                    decoded, bytes: raw.bytes, frameLength: raw.originalLength,
                    at: FrameRef(frame: raw.frameNumber, time: raw.timestamp))
            }
        }
        control.tick?(LiveSource.now())
        control.stopping(tracker.openSessions)
        tracker.finishAll()
        if let hold { handoff?.update(hold.stats) }
        verdicts.finish()
        let summary = InputSummary(
            input: source.name, stats: tracker.stats, error: failure, filteredOut: 0,
            peakReassemblyBytes: tracker.budget.peak, attempts: order.emitted, failures: order.failures)
        sink.end(summary)
        return summary
    }

    /// What a finished session showed: taken on the packet thread, since the DNS table keeps
    /// changing there and the session's memory is still in that core's cache. (Handing the
    /// session to the verdict thread to take them there cut the packet thread's instructions
    /// by a tenth but cost 7 % more CPU and 8 % more time: cold reads and frees across threads.)
    static func facts(_ session: TCPSession, dns: DNSTable) -> AttemptFacts {
        let tcp = TCPFacts(session)
        let rdp = (session.consumer as? RDPStreamConsumer)?.facts ?? RDPFacts()
        let resolutions = dns.resolutions(
            of: session.server.address, askedBy: session.client.address, before: session.firstFrame.time)
        return AttemptFacts(tcp: tcp, rdp: rdp, dns: resolutions)
    }
}

/// When to take a read-ahead source back (`EngineOptions.readAheadMaxCores` and the two after
/// it): counts frames on the packet thread and, every `readAheadCheckFrames`, looks at how
/// busy the verdict thread was since the last look.
struct ReadAheadHandBack {
    private enum State {
        /// Reading ahead, and watching the verdict thread.
        case watching(ReadAheadSource)
        /// Asked to stop, until the hand-over is complete.
        case stopping(ReadAheadSource)
        case done
    }
    private var state: State
    private let verdicts: VerdictStage
    private let checkEvery: Int
    private let busyShare: Double
    private var sinceCheck = 0
    private var lastCheck: UInt64
    private var lastBusy: Int
    private var busyStretches = 0

    init(source: any PacketSource, verdicts: VerdictStage, options: EngineOptions) {
        if Self.onlineCores() <= options.readAheadMaxCores, let ahead = source as? ReadAheadSource {
            state = .watching(ahead)
        } else {
            state = .done
        }
        self.verdicts = verdicts
        checkEvery = max(1, options.readAheadCheckFrames)
        busyShare = options.readAheadBusyShare
        lastCheck = DispatchTime.now().uptimeNanoseconds
        lastBusy = verdicts.busyNanoseconds
    }

    /// Counts a frame; returns the source to read directly from now on, once it is handed back.
    @inline(__always)
    mutating func frameRead() -> (any PacketSource)? {
        let source: ReadAheadSource
        switch state {
        case .done: return nil
        case .stopping(let s):
            guard let direct = s.handedBack else { return nil }
            state = .done
            return direct
        case .watching(let s): source = s
        }
        sinceCheck += 1
        guard sinceCheck >= checkEvery else { return nil }
        sinceCheck = 0
        let now = DispatchTime.now().uptimeNanoseconds
        let busy = verdicts.busyNanoseconds
        let share = Double(busy &- lastBusy) / Double(max(1, now &- lastCheck))
        busyStretches = share > busyShare ? busyStretches + 1 : 0
        (lastCheck, lastBusy) = (now, busy)
        if busyStretches >= 2 {
            source.stopReadingAhead()
            state = .stopping(source)
        }
        return nil
    }

    static func onlineCores() -> Int {
        #if canImport(Glibc)
            return max(1, Int(sysconf(Int32(_SC_NPROCESSORS_ONLN))))
        #else
            return 2
        #endif
    }
}

/// Classifies finished attempts and hands them to the reports off the packet thread, so
/// that reading packets and writing verdicts overlap. Attempts go over in batches, which
/// reach the sink in the order the tracker finished them; a sink that can render ahead
/// (`PrerenderingSink`) gets its batches rendered on any free core first. At most
/// `maxBatchesInFlight` batches wait, so memory stays bounded when reports are slower than
/// reading.
final class VerdictStage: @unchecked Sendable {
    // Unchecked: `order` (and the sink behind it) is only touched on `queue`, and the
    // caller waits for the queue in `finish` before it reads anything back.
    private let queue = DispatchQueue(label: "rdptriage.verdicts")
    private let slots: DispatchSemaphore
    private let order: ReorderBuffer
    private let batchSize: Int
    private let render: (@Sendable (Attempt) -> [UInt8])?
    private var batch: [AttemptFacts] = []
    /// Time the serial queue spent on batches (classifying and writing, or waiting to write).
    private let busy = Atomic<Int>(0)
    var busyNanoseconds: Int { busy.load(ordering: .relaxed) }

    static let maxBatchesInFlight = 16

    /// One batch on its way: filled on a worker, read on `queue` after `done`.
    private final class Work: @unchecked Sendable {
        var attempts: [Attempt] = []
        var rendered: [[UInt8]] = []
        let done = DispatchGroup()
    }

    init(order: ReorderBuffer, batchSize: Int) {
        self.order = order
        self.batchSize = max(1, batchSize)
        self.slots = DispatchSemaphore(value: Self.maxBatchesInFlight)
        self.render = (order.sink as? any PrerenderingSink)?.prerender
        batch.reserveCapacity(self.batchSize)
    }

    func add(_ facts: AttemptFacts) {
        batch.append(facts)
        if batch.count >= batchSize { send() }
    }

    /// An attempt already classified (a live success reported while open), in turn.
    func addClassified(_ a: Attempt) {
        send()
        slots.wait()
        queue.async { [self] in
            timed { order.add(a) }
            slots.signal()
        }
    }

    /// The end of an attempt reported earlier as a success: passed on only when the whole
    /// connection's verdict is a failure; otherwise `dropped` is told its id.
    func addFollowUp(_ facts: AttemptFacts, dropped: @escaping @Sendable (Int) -> Void) {
        send()
        slots.wait()
        queue.async { [self] in
            timed {
                let a = Attempt(classifying: facts)
                if a.verdict.isFailure { order.followUp(a) } else { dropped(facts.tcp.id) }
            }
            slots.signal()
        }
    }

    private func send() {
        guard !batch.isEmpty else { return }
        let ready = batch
        batch = []
        batch.reserveCapacity(batchSize)
        slots.wait()
        guard let render else {
            // Classification alone is cheap: on the serial queue, it leaves the other core to
            // the packet thread (spreading it over workers measured slower).
            queue.async { [self] in
                timed { for facts in ready { order.add(Attempt(classifying: facts)) } }
                slots.signal()
            }
            return
        }
        // Rendering is costly (a JSON report): batches are classified and rendered on any
        // free core, and the serial queue writes them in order.
        let work = Work()
        work.done.enter()
        DispatchQueue.global().async {
            work.attempts = ready.map { Attempt(classifying: $0) }
            work.rendered = work.attempts.map(render)
            work.done.leave()
        }
        queue.async { [self] in
            timed {
                work.done.wait()  // batches reach the sink in the order they were sent
                for (a, r) in zip(work.attempts, work.rendered) { order.add(a, rendered: r) }
            }
            slots.signal()
        }
    }

    /// Runs `body` on the queue, counting its time as busy.
    private func timed(_ body: () -> Void) {
        let start = DispatchTime.now().uptimeNanoseconds
        body()
        busy.add(Int(truncatingIfNeeded: DispatchTime.now().uptimeNanoseconds &- start), ordering: .relaxed)
    }

    /// Runs `body` on the thread that writes to the sink, after the attempts sent so far.
    func onQueue(_ body: () -> Void) {
        send()
        queue.sync(execute: body)
    }

    /// Sends what is left and waits until every attempt reached the sink.
    func finish() {
        send()
        queue.sync { order.flushAll() }
    }
}

/// Restores the order in which attempts started, within a bounded window.
final class ReorderBuffer {
    let window: Int
    let sink: any AnalysisSink
    /// Held attempts, boxed so the table moves references, not kilobyte-sized values.
    private final class Held {
        let attempt: Attempt
        let rendered: [UInt8]?
        init(_ a: Attempt, _ r: [UInt8]?) {
            attempt = a
            rendered = r
        }
    }
    private var ready: [Int: Held] = [:]
    private var next = 0
    private(set) var emitted = 0
    private(set) var failures = 0

    init(window: Int, sink: any AnalysisSink) {
        self.window = window
        self.sink = sink
    }

    func add(_ a: Attempt, rendered: [UInt8]? = nil) {
        if a.facts.tcp.id == next && ready.isEmpty {
            // The common case: nothing to reorder.
            emit(a, rendered)
            next += 1
            return
        }
        ready[a.facts.tcp.id] = Held(a, rendered)
        while let r = ready.removeValue(forKey: next) {
            emit(r.attempt, r.rendered)
            next += 1
        }
        if ready.count > window {
            // An early attempt is still open: let the finished ones through rather than grow.
            flushAll()
        }
    }

    /// A failure ending an attempt already reported (as a success, live): counted as a
    /// failure, not as another attempt.
    func followUp(_ a: Attempt) {
        failures += 1
        if let live = sink as? any FollowUpSink { live.followUp(a) } else { sink.attempt(a) }
    }

    func flushAll() {
        for id in ready.keys.sorted() {
            if let r = ready.removeValue(forKey: id) { emit(r.attempt, r.rendered) }
            next = max(next, id + 1)
        }
    }

    private func emit(_ a: Attempt, _ rendered: [UInt8]?) {
        emitted += 1
        if a.verdict.isFailure { failures += 1 }
        if let rendered, let p = sink as? any PrerenderingSink {
            p.attempt(a, prerendered: rendered)
        } else {
            sink.attempt(a)
        }
    }
}
