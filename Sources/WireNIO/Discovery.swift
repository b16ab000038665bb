import Crypto
import Logging
import NIOCore
import NIOPosix
import SystemSupport

/// UDP broadcast discovery of a scheduler within a network name, as icecream does it.
/// A daemon broadcasts `SWLAUNCH-DISCOVER 1 <netname> <nonce>` (16 random bytes, hex); a scheduler of that
/// netname answers `SWLAUNCH-SCHEDULER 1 <netname> <tcp port> <mac>` to the sender, whose source address is the
/// scheduler's. With a cluster key the mac is the HMAC-SHA256, under the key's discovery key, of
/// `<netname> <tcp port> <nonce>`, and a daemon takes only an answer whose mac checks (a replayed answer
/// fails: the nonce is new each time); without a key it is `-`. Anything else is ignored.
public enum Discovery {
    /// The text a scheduler's answer is authenticated over.
    static func answerMAC(netname: String, port: Int, nonce: String, key: [UInt8]?) -> String {
        guard let key else { return "-" }
        let code = HMAC<SHA256>.authenticationCode(for: Array("\(netname) \(port) \(nonce)".utf8), using: SymmetricKey(data: key))
        return hexString(code)
    }

    /// The answer to a discovery datagram, or nil when it is not a query for `netname`.
    public static func answer(to datagram: String, netname: String, schedulerPort: Int, key: [UInt8]?) -> String? {
        let words = datagram.split(separator: " ", omittingEmptySubsequences: false)
        guard words.count == 4, words[0] == "SWLAUNCH-DISCOVER", words[1] == "1", words[2] == netname,
              words[3].count == 32, words[3].allSatisfy(\.isHexDigit) else { return nil }
        let mac = answerMAC(netname: netname, port: schedulerPort, nonce: String(words[3]), key: key)
        return "SWLAUNCH-SCHEDULER 1 \(netname) \(schedulerPort) \(mac)"
    }

    /// The scheduler port an answer names, when it answers `nonce` for `netname` and (with a key) its mac checks.
    public static func port(fromAnswer datagram: String, netname: String, nonce: String, key: [UInt8]?) -> Int? {
        let words = datagram.split(separator: " ", omittingEmptySubsequences: false)
        guard words.count == 5, words[0] == "SWLAUNCH-SCHEDULER", words[1] == "1", words[2] == netname,
              let port = Int(words[3]), (1...65535).contains(port) else { return nil }
        let expected = answerMAC(netname: netname, port: port, nonce: nonce, key: key)
        if key != nil {
            // Compared in constant time.
            let given = Array(words[4].utf8), wanted = Array(expected.utf8)
            guard given.count == wanted.count, zip(given, wanted).reduce(0, { $0 | ($1.0 ^ $1.1) }) == 0 else { return nil }
        }
        return port
    }

    static func newNonce() -> String { randomHexString(bytes: 16) }

    public static let defaultPort = DefaultPorts.discovery
    typealias Datagrams = NIOAsyncChannel<AddressedEnvelope<ByteBuffer>, AddressedEnvelope<ByteBuffer>>

    static func bind(host: String, port: Int, broadcast: Bool) async throws -> Datagrams {
        try await DatagramBootstrap(group: MultiThreadedEventLoopGroup.singleton)
            .channelOption(.socketOption(.so_reuseaddr), value: 1)
            .channelOption(.socketOption(.so_broadcast), value: broadcast ? 1 : 0)
            .bind(host: host, port: port) { channel in
                channel.eventLoop.makeCompletedFuture { try Datagrams(wrappingChannelSynchronously: channel) }
            }
    }

    /// Answers discovery broadcasts for `netname` until cancelled.
    public static func respond(netname: String, udpPort: Int, schedulerPort: Int, key: [UInt8]?, logger: Logger) async throws {
        let channel = try await bind(host: "0.0.0.0", port: udpPort, broadcast: false)
        logger.info("answering discovery", metadata: ["netname": "\(netname)", "udp_port": "\(udpPort)"])
        try await channel.executeThenClose { inbound, outbound in
            for try await envelope in inbound {
                guard envelope.data.readableBytes <= 256,
                      let answer = answer(to: String(buffer: envelope.data), netname: netname, schedulerPort: schedulerPort, key: key) else { continue }
                let reply = ByteBuffer(string: answer)
                try await outbound.write(AddressedEnvelope(remoteAddress: envelope.remoteAddress, data: reply))
            }
        }
    }

    /// Broadcasts until a scheduler of `netname` answers; returns its address and TCP port.
    /// The broadcast address of every interface that has one (loopback has none), as icecream does it:
    /// a limited broadcast to 255.255.255.255 needs a route that test namespaces do not have.
    static func broadcastTargets(port: Int) -> [SocketAddress] {
        let devices = (try? System.enumerateDevices()) ?? []
        var targets: [SocketAddress] = []
        for device in devices {
            // Derive the broadcast address from the IPv4 address and netmask: an interface configured without
            // one reports its own address as its broadcast address.
            var ip: String?
            if case let .v4(address)? = device.address, case let .v4(mask)? = device.netmask {
                let host = UInt32(bigEndian: address.address.sin_addr.s_addr)
                let bits = UInt32(bigEndian: mask.address.sin_addr.s_addr)
                if bits != 0xffff_ffff, (host >> 24) != 127 {
                    let broadcast = host | ~bits
                    ip = "\(broadcast >> 24).\((broadcast >> 16) & 255).\((broadcast >> 8) & 255).\(broadcast & 255)"
                }
            }
            guard let ip, let target = try? SocketAddress(ipAddress: ip, port: port),
                  !targets.contains(where: { $0.ipAddress == ip }) else { continue }
            targets.append(target)
        }
        return targets
    }

    public static func find(netname: String, udpPort: Int = defaultPort, key: [UInt8]?, logger: Logger) async throws -> (String, Int) {
        while true {
            try Task.checkCancellation()
            let channel = try await bind(host: "0.0.0.0", port: 0, broadcast: true)
            let nonce = newNonce()
            let found: (String, Int)? = try await channel.executeThenClose { inbound, outbound in
                for target in broadcastTargets(port: udpPort) {
                    try await outbound.write(AddressedEnvelope(remoteAddress: target, data: ByteBuffer(string: "SWLAUNCH-DISCOVER 1 \(netname) \(nonce)")))
                }
                return try await withThrowingTaskGroup(of: (String, Int)?.self) { group in
                    group.addTask {
                        for try await envelope in inbound {
                            guard envelope.data.readableBytes <= 256, let host = envelope.remoteAddress.ipAddress else { continue }
                            if let port = port(fromAnswer: String(buffer: envelope.data), netname: netname, nonce: nonce, key: key) {
                                return (host, port)
                            }
                        }
                        return nil
                    }
                    group.addTask {
                        try await Task.sleep(for: .seconds(1))
                        return nil
                    }
                    let first = try await group.next() ?? nil
                    group.cancelAll()
                    return first
                }
            }
            if let found { return found }
            logger.debug("no scheduler answered discovery yet", metadata: [
                "netname": "\(netname)", "sent_to": "\(broadcastTargets(port: udpPort).compactMap(\.ipAddress))"])
            try await Task.sleep(for: .seconds(1))
        }
    }
}
