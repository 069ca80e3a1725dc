import Foundation
import TriageReports

#if canImport(Glibc)
    import Glibc
#elseif canImport(Darwin)
    import Darwin
#endif

/// Serves `GET /metrics` (Prometheus text exposition) on one thread, one short request at a
/// time: a scraper asks every few seconds, so no server framework is needed, and a client
/// that sends nothing is dropped after two seconds.
final class MetricsServer: Sendable {
    let socket: Int32
    let metrics: LiveMetrics
    /// Where it listens, as bound (`127.0.0.1:9110`).
    let address: String

    struct Failure: Error, CustomStringConvertible {
        var description: String
    }

    /// Binds `hostPort` (`HOST:PORT`, `[v6]:PORT`, or `:PORT` for every address).
    init(_ hostPort: String, metrics: LiveMetrics) throws {
        self.metrics = metrics
        guard let colon = hostPort.lastIndex(of: ":"), let port = UInt16(hostPort[hostPort.index(after: colon)...]) else {
            throw Failure(description: "--metrics \(hostPort): expected HOST:PORT (e.g. 127.0.0.1:9110)")
        }
        var host = String(hostPort[..<colon])
        if host.hasPrefix("[") && host.hasSuffix("]") { host = String(host.dropFirst().dropLast()) }
        var hints = addrinfo()
        hints.ai_socktype = Int32(SOCK_STREAM.rawValue)
        hints.ai_flags = AI_PASSIVE | AI_NUMERICSERV
        var list: UnsafeMutablePointer<addrinfo>?
        let rc = getaddrinfo(host.isEmpty ? nil : host, String(port), &hints, &list)
        guard rc == 0, let first = list else {
            throw Failure(description: "--metrics \(hostPort): \(String(cString: gai_strerror(rc)))")
        }
        defer { freeaddrinfo(list) }
        let fd = Glibc.socket(first.pointee.ai_family, first.pointee.ai_socktype, first.pointee.ai_protocol)
        guard fd >= 0 else { throw Failure(description: "--metrics \(hostPort): \(String(cString: strerror(errno)))") }
        var on: Int32 = 1
        setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &on, socklen_t(MemoryLayout<Int32>.size))
        guard bind(fd, first.pointee.ai_addr, first.pointee.ai_addrlen) == 0, listen(fd, 16) == 0 else {
            let e = errno
            close(fd)
            throw Failure(description: "--metrics \(hostPort): cannot listen: \(String(cString: strerror(e)))")
        }
        _ = fcntl(fd, F_SETFD, FD_CLOEXEC)
        socket = fd
        // The port as bound (`:0` picks a free one).
        var storage = sockaddr_storage()
        var length = socklen_t(MemoryLayout<sockaddr_storage>.size)
        var bound = Int(port)
        withUnsafeMutablePointer(to: &storage) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { sa in
                if getsockname(fd, sa, &length) == 0 {
                    if sa.pointee.sa_family == sa_family_t(AF_INET6) {
                        sa.withMemoryRebound(to: sockaddr_in6.self, capacity: 1) { bound = Int(UInt16(bigEndian: $0.pointee.sin6_port)) }
                    } else {
                        sa.withMemoryRebound(to: sockaddr_in.self, capacity: 1) { bound = Int(UInt16(bigEndian: $0.pointee.sin_port)) }
                    }
                }
            }
        }
        let shownHost = host.isEmpty ? "0.0.0.0" : (host.contains(":") ? "[\(host)]" : host)
        address = "\(shownHost):\(bound)"
    }

    func start() {
        Thread.detachNewThread { [self] in
            while true {
                let c = accept(socket, nil, nil)
                if c < 0 {
                    if errno == EINTR || errno == ECONNABORTED { continue }
                    return
                }
                serve(c)
                close(c)
            }
        }
    }

    private func serve(_ c: Int32) {
        var timeout = timeval(tv_sec: 2, tv_usec: 0)
        setsockopt(c, SOL_SOCKET, SO_RCVTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
        setsockopt(c, SOL_SOCKET, SO_SNDTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
        var request: [UInt8] = []
        var buffer = [UInt8](repeating: 0, count: 2048)
        while request.count < 8192 {
            let n = buffer.withUnsafeMutableBytes { recv(c, $0.baseAddress, $0.count, 0) }
            if n <= 0 { break }
            request += buffer[0..<n]
            if request.count >= 4 && request.suffix(4) == [13, 10, 13, 10] { break }
        }
        let line = String(decoding: request.prefix { $0 != 13 && $0 != 10 }, as: UTF8.self).split(separator: " ")
        let response: String
        if line.count >= 2 && (line[0] == "GET" || line[0] == "HEAD") && (line[1] == "/metrics" || line[1].hasPrefix("/metrics?")) {
            let body = metrics.render()
            response =
                "HTTP/1.1 200 OK\r\nContent-Type: text/plain; version=0.0.4; charset=utf-8\r\nContent-Length: \(body.utf8.count)\r\nConnection: close\r\n\r\n"
                + (line[0] == "HEAD" ? "" : body)
        } else {
            let body = "rdptriage: metrics are at /metrics\n"
            response = "HTTP/1.1 404 Not Found\r\nContent-Type: text/plain\r\nContent-Length: \(body.utf8.count)\r\nConnection: close\r\n\r\n" + body
        }
        var bytes = Array(response.utf8)
        var sent = 0
        while sent < bytes.count {
            let n = bytes.withUnsafeMutableBytes { send(c, $0.baseAddress! + sent, $0.count - sent, Int32(MSG_NOSIGNAL)) }
            if n <= 0 { return }
            sent += n
        }
    }
}
