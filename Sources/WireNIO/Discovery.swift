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
    public static func find(netname: String, udpPort: Int = defaultPort, broadcastAddress: String = "255.255.255.255",
                            logger: Logger) async throws -> (String, Int) {
        while true {
            try Task.checkCancellation()
            let channel = try await bind(host: "0.0.0.0", port: 0, broadcast: true)
            let found: (String, Int)? = try await channel.executeThenClose { inbound, outbound in
                let target = try SocketAddress(ipAddress: broadcastAddress, port: udpPort)
                try await outbound.write(AddressedEnvelope(remoteAddress: target, data: ByteBuffer(string: "SWLAUNCH-DISCOVER 1 \(netname)")))
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
            logger.debug("no scheduler answered discovery yet", metadata: ["netname": "\(netname)"])
            try await Task.sleep(for: .seconds(1))
        }
    }
}
