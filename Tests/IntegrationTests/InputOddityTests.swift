import Foundation
import Testing

/// Inputs at the edges: empty standard input, capture times past 2038 or running backwards.
@Suite struct InputOddityTests: RunsTheTool {
    @Test func emptyStandardInputSaysEmpty() throws {
        let r = try Run.program(exe, ["analyze", "-"], stdin: "/dev/null")
        #expect(r.status == 2)
        #expect(r.stderr == "rdptriage: standard input: empty input (0 bytes)\n", "\(r.stderr)")
    }
}
