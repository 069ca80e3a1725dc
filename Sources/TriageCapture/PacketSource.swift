/// One captured frame as a source hands it out. `bytes` is borrowed from the source and
/// valid only until the next call to `next()`.
public struct RawPacket {
    /// 1-based frame number, as Wireshark and tshark number frames in a file.
    public var frameNumber: Int
    public var timestamp: Timestamp
    public var capturedLength: Int
    public var originalLength: Int
    /// The frame's own link type: in pcapng each interface has one, and one file may mix them.
    public var linkType: LinkType
    public var bytes: UnsafeRawBufferPointer

    public init(frameNumber: Int, timestamp: Timestamp, capturedLength: Int, originalLength: Int,
                linkType: LinkType, bytes: UnsafeRawBufferPointer) {
        self.frameNumber = frameNumber
        self.timestamp = timestamp
        self.capturedLength = capturedLength
        self.originalLength = originalLength
        self.linkType = linkType
        self.bytes = bytes
    }
}

/// Where packets come from: a capture file or a live interface (`LiveSource`). The session
/// tracker reads every source the same way.
public protocol PacketSource: AnyObject {
    /// What to call the source in messages: the file path, `-` for standard input, or the interface.
    var name: String { get }
    /// The link type of the input's first interface; each frame carries its own
    /// (`RawPacket.linkType`), which differs from this one in a pcapng file that mixes them.
    var linkType: LinkType { get }
    /// The next frame, `nil` at the end of the input. A live source returns `nil` when stopped.
    func next() throws(CaptureError) -> RawPacket?
    /// Frames the source skipped because the BPF filter rejected them (they still count
    /// for frame numbering).
    var filteredOut: Int { get }
}

/// A problem reading an input: it names the input, says what is wrong and, where it
/// applies, the byte offset. One line, suitable for a terminal.
public struct CaptureError: Error, Sendable, CustomStringConvertible, Equatable {
    public enum Kind: String, Sendable {
        case notFound = "not-found"
        case isDirectory = "is-directory"
        case unreadable
        case empty
        case notACapture = "not-a-capture"
        case truncated
        case corrupt
        case unsupportedLinkType = "unsupported-link-type"
        case badFilter = "bad-filter"
        case interface
        /// No right to capture on a live interface.
        case permission
        case noSuchInterface = "no-such-interface"
    }

    public var input: String
    public var kind: Kind
    public var detail: String
    public var byteOffset: Int64?
    /// `byteOffset` counts bytes of the decompressed data of a gzip-compressed input, not of
    /// the file.
    public var inDecompressedData = false

    public init(input: String, kind: Kind, detail: String, byteOffset: Int64? = nil) {
        self.input = input
        self.kind = kind
        self.detail = detail
        self.byteOffset = byteOffset
    }

    public var description: String {
        let name = input == "-" ? "standard input" : input
        if let o = byteOffset {
            return "\(name): \(detail) (at byte \(o)\(inDecompressedData ? " of the decompressed data" : ""))"
        }
        return "\(name): \(detail)"
    }

    /// The same error, its offset marked as one in the decompressed data when `compressed`.
    func decompressed(_ compressed: Bool) -> CaptureError {
        var e = self
        e.inDecompressedData = compressed
        return e
    }
}
