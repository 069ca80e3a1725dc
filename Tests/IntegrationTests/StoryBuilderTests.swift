import TestSupport
import Testing
import TriageCapture
import TriageDecoding
import TriageEngine
import TriageFlows

@testable import TriageDiagnosis

/// Stories group attempts of one client and server until they have been idle for 15 minutes of
/// capture time. The builder finds idle groups through a heap of attempt ends; the reference here
/// walks every open group and must find the same groups: the same attempts, client and server,
/// in the same order. (The story's wording is not the reference's business: it is written
/// from a group by one function, checked with hand-written sentences elsewhere.)
@Suite struct StoryBuilderTests {
    final class Reference {
        var groups: [StoryBuilder.Key: [AttemptSummary]] = [:]
        var closed: [(Int, Group)] = []
        var latest = Timestamp(nanoseconds: Int64.min)
        var added = 0
        let idle: Double
        init(idle: Double) { self.idle = idle }

        func add(_ a: AttemptSummary) {
            let key = StoryBuilder.Key(client: a.client.address, server: a.server)
            groups[key, default: []].append(a)
            if a.start.time > latest { latest = a.start.time }
            added += 1
            if added % 1024 == 0 {
                for (key, g) in groups where latest.seconds(since: g.last?.end.time ?? latest) > idle {
                    groups[key] = nil
                    keep(g)
                }
            }
        }

        struct Group: Equatable {
            var client: IPAddress
            var server: Endpoint
            /// The attempts a story names: all, or the first four and the last two.
            var attempts: [Int]
            var count: Int
        }

        func keep(_ g: [AttemptSummary]) {
            guard g.count >= 2, let first = g.first else { return }
            let ids = g.map(\.id)
            let named = ids.count <= 6 ? ids : Array(ids.prefix(4) + ids.suffix(2))
            closed.append((first.start.frame, Group(client: first.client.address, server: first.server, attempts: named, count: ids.count)))
        }

        func finish() -> [Group] {
            for g in groups.values { keep(g) }
            return closed.sorted { $0.0 < $1.0 }.map(\.1)
        }
    }

    @Test func idleGroupsCloseAsWhenEveryGroupWasWalked() throws {
        let template = try #require(analyze(Repo.captures + "/rst-refused.pcap").attempts.first)
        let base = AttemptSummary(id: 0, facts: template.facts, verdict: template.verdict)
        var rng = SplitMix(seed: 0x5709)
        for round in 0..<6 {
            let builder = StoryBuilder()
            let reference = Reference(idle: 900)
            var t: Int64 = 1_700_000_000 * 1_000_000_000
            for i in 0..<5000 {
                var a = base
                a.id = i
                // A few clients and servers, so that groups grow, go idle and come back.
                a.client = Endpoint(IPAddress(ipv4: 0xC000_0200 | UInt32(rng.next() % 12)), UInt16(40000 + i % 20000))
                a.server = Endpoint(IPAddress(ipv4: 0xC633_6400 | UInt32(rng.next() % 3)), 3389)
                // Mostly seconds apart, sometimes a quarter of an hour of quiet; ends out of order.
                t += Int64(rng.next() % (rng.next() % 50 == 0 ? 1_500_000_000_000 : 3_000_000_000))
                a.start = FrameRef(frame: i + 1, time: Timestamp(nanoseconds: t))
                let duration = Int64(rng.next() % (round % 2 == 0 ? 1_200_000_000_000 : 20_000_000_000))
                a.end = FrameRef(frame: i + 2, time: Timestamp(nanoseconds: t + duration))
                builder.add(a)
                reference.add(a)
            }
            let got = builder.finish().map {
                Reference.Group(client: $0.client, server: $0.server, attempts: $0.attempts, count: $0.attemptCount)
            }
            let want = reference.finish()
            #expect(got.count == want.count, "round \(round)")
            #expect(got == want, "round \(round)")
            #expect(want.count > 10, "round \(round): the sequence makes stories")
        }
    }

    /// Story sentences written by hand from how the lab made the captures (retry-then-success:
    /// two refused SYNs, a client that gives up after TLS-only is selected, then a success) and
    /// the gaps tshark shows between one attempt's last frame and the next one's SYN
    /// (frames 2→3: 0.009571 s, 4→5: 2.895447 s, 14→15: 1.366750 s; rst-refused 2→3: 0.007705 s).
    @Test func sentencesOfTheLabsRetries() throws {
        func stories(_ name: String) -> [Story] {
            Story.build(analyze(Repo.captures + "/" + name).attempts.map { AttemptSummary(id: $0.facts.tcp.id, facts: $0.facts, verdict: $0.verdict) })
        }
        let retry = try #require(stories("retry-then-success.pcap").first)
        #expect(retry.outcome == .success)
        #expect(retry.narrative == "192.0.2.10 reached 198.51.100.20:3389 after 3 failed attempts: #1 rst-refused, "
            + "#2 rst-refused 0.01 s later, #3 client-abort 2.895 s later, #4 succeeded 1.367 s later.")
        let refused = try #require(stories("rst-refused.pcap").first)
        #expect(refused.outcome == .rstRefused)
        #expect(refused.cause == .hostNotAccepting)
        #expect(refused.narrative.hasPrefix("192.0.2.10 never reached 198.51.100.20:3389 in 2 attempts: #1 rst-refused, #2 rst-refused 0.008 s later."))
    }

    /// A client retrying 50,000 times: the story names the first four and the last two
    /// attempts and counts the rest by label (issue 12: a story never lists more than a
    /// handful of attempt numbers inline).
    @Test func longSeriesAreCountedNotListed() throws {
        let template = try #require(analyze(Repo.captures + "/rst-refused.pcap").attempts.first)
        var a = AttemptSummary(id: 0, facts: template.facts, verdict: template.verdict)
        let builder = StoryBuilder()
        for i in 0..<50_000 {
            a.id = i
            a.start = FrameRef(frame: 2 * i + 1, time: Timestamp(nanoseconds: 1_700_000_000_000_000_000 + Int64(i) * 1_000_000))
            a.end = FrameRef(frame: 2 * i + 2, time: Timestamp(nanoseconds: 1_700_000_000_000_000_000 + Int64(i) * 1_000_000 + 500_000))
            builder.add(a)
        }
        let story = try #require(builder.finish().first)
        #expect(story.attemptCount == 50_000)
        #expect(story.attempts == [0, 1, 2, 3, 49_998, 49_999])
        // Each attempt starts 0.5 ms after the previous one ended.
        #expect(story.narrative.hasPrefix(
            "192.0.2.10 never reached 198.51.100.20:3389 in 50000 attempts: #1 rst-refused, #2 rst-refused 0.001 s later, "
                + "#3 rst-refused 0.001 s later, #4 rst-refused 0.001 s later, … 49994 more (49994 rst-refused) …, "
                + "#49999 rst-refused, #50000 rst-refused 0.001 s later. The last one: "))
    }

    /// Past `maxGroups` open client/server pairs the one idle longest is closed, and past
    /// `maxStories` stories are counted, not kept.
    @Test func groupsAndStoriesAreBounded() throws {
        let template = try #require(analyze(Repo.captures + "/rst-refused.pcap").attempts.first)
        var a = AttemptSummary(id: 0, facts: template.facts, verdict: template.verdict)
        let builder = StoryBuilder(maxGroups: 10, maxStories: 5)
        var id = 0
        // 40 clients, two attempts each, one after the other: every pair is a story.
        for client in 0..<40 {
            for _ in 0..<2 {
                a.id = id
                a.client = Endpoint(IPAddress(ipv4: 0xC000_0200 | UInt32(client)), 50_000)
                a.start = FrameRef(frame: id + 1, time: Timestamp(nanoseconds: 1_700_000_000_000_000_000 + Int64(id) * 1_000_000))
                a.end = a.start
                builder.add(a)
                id += 1
            }
        }
        let stories = builder.finish()
        #expect(stories.count == 5)
        #expect(builder.storiesOmitted == 35)
        #expect(stories.map(\.attempts) == [[0, 1], [2, 3], [4, 5], [6, 7], [8, 9]])
    }
}
