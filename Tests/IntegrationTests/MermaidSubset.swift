import Foundation

/// A parser for the part of Mermaid's `sequenceDiagram` syntax that rdptriage writes, strict
/// where Mermaid is strict (the Mermaid CLI needs npm, which this machine cannot reach): a
/// statement per line, participants declared before use, arrows `->>`, `-->>` and `-x`,
/// `Note over A,B: text`, `rect rgb(r, g, b)` ... `end`, and text free of the characters
/// Mermaid reads as syntax (`;` ends a statement, `#` starts an entity code, `%%` a comment,
/// `<`, `>` and `&` are HTML, a backtick could close the Markdown fence).
struct MermaidSubset {
    struct Message: Equatable {
        var from: String
        var to: String
        var arrow: String
        var text: String
        /// Inside a `rect` highlight.
        var highlighted: Bool
    }

    struct ParseError: Error, CustomStringConvertible {
        var line: Int
        var reason: String
        var description: String { "line \(line): \(reason)" }
    }

    var participants: [(id: String, alias: String)] = []
    var messages: [Message] = []
    var notes: [String] = []

    static func parse(_ source: String) throws(ParseError) -> MermaidSubset {
        var d = MermaidSubset()
        var depth = 0
        let lines = source.split(separator: "\n", omittingEmptySubsequences: false).map(String.init)
        guard lines.first == "sequenceDiagram" else { throw ParseError(line: 1, reason: "does not start with sequenceDiagram") }
        for (i, raw) in lines.enumerated().dropFirst() {
            let n = i + 1
            let line = raw.drop { $0 == " " }
            if line.isEmpty { continue }
            if line.hasPrefix("participant ") {
                let rest = line.dropFirst("participant ".count)
                guard let asRange = rest.range(of: " as ") else { throw ParseError(line: n, reason: "participant without alias") }
                let id = String(rest[..<asRange.lowerBound])
                let alias = String(rest[asRange.upperBound...])
                guard isIdentifier(id) else { throw ParseError(line: n, reason: "bad participant id \(id)") }
                guard d.messages.isEmpty else { throw ParseError(line: n, reason: "participant after messages") }
                try checkText(alias, line: n)
                d.participants.append((id, alias))
            } else if line.hasPrefix("rect ") {
                guard line.wholeMatch(of: /rect rgba?\(\d{1,3}, ?\d{1,3}, ?\d{1,3}(, ?[0-9.]+)?\)/) != nil else {
                    throw ParseError(line: n, reason: "bad rect colour")
                }
                depth += 1
            } else if line == "end" {
                guard depth > 0 else { throw ParseError(line: n, reason: "end without rect") }
                depth -= 1
            } else if line.hasPrefix("Note over ") {
                let rest = line.dropFirst("Note over ".count)
                guard let colon = rest.firstIndex(of: ":") else { throw ParseError(line: n, reason: "note without text") }
                for id in rest[..<colon].split(separator: ",") where !d.participants.contains(where: { $0.id == id }) {
                    throw ParseError(line: n, reason: "note over undeclared \(id)")
                }
                let text = String(rest[rest.index(after: colon)...]).trimmingPrefix(" ")
                try checkText(String(text), line: n)
                d.notes.append(String(text))
            } else if let m = line.wholeMatch(of: /([A-Za-z][A-Za-z0-9_]*)(-->>|->>|-x|--x)([A-Za-z][A-Za-z0-9_]*): (.+)/) {
                let from = String(m.1)
                let to = String(m.3)
                for id in [from, to] where !d.participants.contains(where: { $0.id == id }) {
                    throw ParseError(line: n, reason: "message names undeclared \(id)")
                }
                try checkText(String(m.4), line: n)
                d.messages.append(Message(from: from, to: to, arrow: String(m.2), text: String(m.4), highlighted: depth > 0))
            } else {
                throw ParseError(line: n, reason: "not in the subset: \(line)")
            }
        }
        guard depth == 0 else { throw ParseError(line: lines.count, reason: "rect not closed") }
        return d
    }

    static func isIdentifier(_ s: String) -> Bool {
        s.wholeMatch(of: /[A-Za-z][A-Za-z0-9_]*/) != nil && s.lowercased() != "end"
    }

    /// Text with no character Mermaid would read as syntax; `#` only as an entity code.
    static func checkText(_ s: String, line: Int) throws(ParseError) {
        for bad in [";", "%", "<", ">", "`", "\"", "\t", "\r"] where s.replacing(/#[A-Za-z0-9]+;/, with: "").contains(bad) {
            throw ParseError(line: line, reason: "unescaped \(bad) in \(s)")
        }
        if s.replacing(/#[A-Za-z0-9]+;/, with: "").contains("#") { throw ParseError(line: line, reason: "bare # in \(s)") }
        if s.replacing(/#[A-Za-z0-9]+;/, with: "").contains("&") { throw ParseError(line: line, reason: "bare & in \(s)") }
        if s.unicodeScalars.contains(where: { $0.value < 0x20 }) { throw ParseError(line: line, reason: "control character") }
    }

    /// The ```` ```mermaid ```` blocks of a Markdown document, in order.
    static func blocks(in markdown: String) -> [String] {
        var out: [String] = []
        var current: [Substring]?
        for line in markdown.split(separator: "\n", omittingEmptySubsequences: false) {
            if current == nil {
                if line == "```mermaid" { current = [] }
            } else if line == "```" {
                out.append(current!.joined(separator: "\n"))
                current = nil
            } else {
                current!.append(line)
            }
        }
        return out
    }
}
