import TriageCapture
import TriageDecoding
import TriageFlows
import TriageProtocols

/// Everything known about one connection attempt: the classifier's only input.
public struct AttemptFacts: Sendable, Codable, Equatable {
    public var tcp: TCPFacts
    public var rdp: RDPFacts
    /// DNS answers in the capture that pointed the client at this server.
    public var dns: [DNSResolution]

    public init(tcp: TCPFacts, rdp: RDPFacts, dns: [DNSResolution]) {
        self.tcp = tcp
        self.rdp = rdp
        self.dns = dns
    }
}
