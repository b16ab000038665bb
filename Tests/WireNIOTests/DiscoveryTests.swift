import Testing
@testable import WireNIO

/// Discovery beside icecream: only a well-formed query for this netname gets an answer, only an answer to this
/// daemon's nonce (with the key's mac) is taken; icecream's datagrams and any other noise are ignored.
@Suite struct DiscoveryTests {
    static let key: [UInt8] = Array(repeating: 7, count: 32)
    static let nonce = String(repeating: "ab", count: 16)

    @Test(arguments: [
        "\u{25}lab",                                  // icecream's scheduler query: a protocol byte and its netname
        "SWLAUNCH-DISCOVER 1 other \(nonce)",          // another netname
        "SWLAUNCH-DISCOVER 2 lab \(nonce)",            // another version
        "SWLAUNCH-DISCOVER 1 lab nothex",
        "SWLAUNCH-DISCOVER 1 lab \(nonce) extra",
        "SWLAUNCH-SCHEDULER 1 lab 8775 -",             // an answer sent to the scheduler
        "",
    ])
    func foreignQueriesGetNoAnswer(_ datagram: String) {
        #expect(Discovery.answer(to: datagram, netname: "lab", schedulerPort: 8775, key: Self.key) == nil)
    }

    @Test func onlyAnAnswerToThisNonceUnderTheKeyIsTaken() throws {
        let answer = try #require(Discovery.answer(to: "SWLAUNCH-DISCOVER 1 lab \(Self.nonce)", netname: "lab", schedulerPort: 8775, key: Self.key))
        #expect(Discovery.port(fromAnswer: answer, netname: "lab", nonce: Self.nonce, key: Self.key) == 8775)
        let otherNonce = String(repeating: "cd", count: 16)
        #expect(Discovery.port(fromAnswer: answer, netname: "lab", nonce: otherNonce, key: Self.key) == nil)
        #expect(Discovery.port(fromAnswer: answer, netname: "lab", nonce: Self.nonce, key: Array(repeating: 8, count: 32)) == nil)
        // icecream's scheduler answers its daemons with a binary reply: not a port.
        for noise in ["\u{25}\u{0}\u{0}lab", "SWLAUNCH-SCHEDULER 1 lab 99999 -", "SWLAUNCH-SCHEDULER 1 lab x -"] {
            #expect(Discovery.port(fromAnswer: noise, netname: "lab", nonce: Self.nonce, key: nil) == nil)
        }
    }
}
