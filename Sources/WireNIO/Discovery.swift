import Logging
import NIOCore
import NIOPosix

/// UDP broadcast discovery of a scheduler within a network name, as icecream does it.
/// A daemon broadcasts `SWLAUNCH-DISCOVER 1 <netname>`; a scheduler of that netname answers
/// `SWLAUNCH-SCHEDULER 1 <netname> <tcp port>` to the sender, whose source address is the scheduler's.
public enum Discovery {
    public static let defaultPort = 8765
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
    public static func respond(netname: String, udpPort: Int, schedulerPort: Int, logger: Logger) async throws {
        let channel = try await bind(host: "0.0.0.0", port: udpPort, broadcast: false)
        logger.info("answering discovery", metadata: ["netname": "\(netname)", "udp_port": "\(udpPort)"])
        try await channel.executeThenClose { inbound, outbound in
            for try await envelope in inbound {
                let text = String(buffer: envelope.data)
                guard text == "SWLAUNCH-DISCOVER 1 \(netname)" else { continue }
                let reply = ByteBuffer(string: "SWLAUNCH-SCHEDULER 1 \(netname) \(schedulerPort)")
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

    public static func find(netname: String, udpPort: Int = defaultPort, logger: Logger) async throws -> (String, Int) {
        while true {
            try Task.checkCancellation()
            let channel = try await bind(host: "0.0.0.0", port: 0, broadcast: true)
            let found: (String, Int)? = try await channel.executeThenClose { inbound, outbound in
                for target in broadcastTargets(port: udpPort) {
                    try await outbound.write(AddressedEnvelope(remoteAddress: target, data: ByteBuffer(string: "SWLAUNCH-DISCOVER 1 \(netname)")))
                }
                return try await withThrowingTaskGroup(of: (String, Int)?.self) { group in
                    group.addTask {
                        for try await envelope in inbound {
                            let words = String(buffer: envelope.data).split(separator: " ")
                            if words.count == 4, words[0] == "SWLAUNCH-SCHEDULER", words[1] == "1", words[2] == netname,
                               let port = Int(words[3]), let host = envelope.remoteAddress.ipAddress {
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
