import ClusterKey
import Config
import SystemSupport
import Testing
@testable import Daemon

/// `swlaunchd`'s settings: its options beat the configuration (files and SWLAUNCH_* variables), which beats the
/// defaults; without a key nothing listens beyond loopback.
@Suite struct DaemonSettingsTests {
    func config(_ variables: [String: String]) throws -> Configuration {
        try Configuration.load(workingDirectory: "/", environment: { variables[$0] }, systemFile: "/nonexistent/config.toml",
                               userFile: .some(nil), includeProject: false)
    }

    @Test func optionsBeatTheConfigurationWhichBeatsTheDefaults() throws {
        let variables = ["SWLAUNCH_MAX_JOBS": "5", "SWLAUNCH_LOCAL_JOBS": "3", "SWLAUNCH_SCHEDULER": "sched:9000",
                         "SWLAUNCH_LISTEN": "127.0.0.1:9100", "SWLAUNCH_STATE_DIR": "/var/tmp/swl"]
        let fromConfig = try ResolvedDaemonSettings.resolve(DaemonOptions(), config: config(variables), hostName: "box", cores: 8).configuration
        #expect(fromConfig.maxJobs == 5 && fromConfig.localSlots == 3 && fromConfig.name == "box")
        #expect(fromConfig.schedulers == [HostPort(host: "sched", port: 9000)])
        #expect(fromConfig.listenHost == "127.0.0.1" && fromConfig.listenPort == 9100 && fromConfig.stateDirectory == "/var/tmp/swl")
        let options = DaemonOptions(listen: "127.0.0.2:9200", scheduler: "other:9001, [::1]:9002", maxJobs: 7, name: "named", deadlineFloor: 4)
        let fromOptions = try ResolvedDaemonSettings.resolve(options, config: config(variables), hostName: "box", cores: 8).configuration
        #expect(fromOptions.maxJobs == 7 && fromOptions.localSlots == 3 && fromOptions.name == "named")
        #expect(fromOptions.schedulers == [HostPort(host: "other", port: 9001), HostPort(host: "::1", port: 9002)])
        #expect(fromOptions.listenHost == "127.0.0.2" && fromOptions.deadlines.floor == .seconds(4))
        let defaults = try ResolvedDaemonSettings.resolve(DaemonOptions(noRemote: true), config: config([:]), hostName: "box", cores: 8)
        #expect(defaults.configuration.maxJobs == 8 && defaults.configuration.listenHost == nil && defaults.configuration.schedulers.isEmpty)
        #expect(defaults.configuration.listenPort == 8776)
    }

    @Test func aBadSchedulerListIsRefusedNamingTheValue() throws {
        for bad in ["a:1,", "a:1,,b:2", "a:1,b", "a:70000"] {
            #expect(throws: AddressError.self, "\(bad)") {
                try ResolvedDaemonSettings.resolve(DaemonOptions(scheduler: bad, noRemote: true), config: config([:]), hostName: "box", cores: 2)
            }
        }
    }

    @Test func withoutAKeyOnlyLoopbackUnlessInsecure() throws {
        #expect(throws: ClusterKeyError.self) {
            try ResolvedDaemonSettings.resolve(DaemonOptions(listen: "0.0.0.0:9100"), config: config([:]), hostName: "box", cores: 2)
        }
        let insecure = try ResolvedDaemonSettings.resolve(DaemonOptions(listen: "0.0.0.0:9100"), config: config(["SWLAUNCH_INSECURE": "true"]),
                                                          hostName: "box", cores: 2)
        #expect(insecure.warning?.hasPrefix("INSECURE") == true)
        let loopback = try ResolvedDaemonSettings.resolve(DaemonOptions(listen: "127.0.0.1:9100"), config: config([:]), hostName: "box", cores: 2)
        #expect(loopback.warning == nil && !loopback.configuration.security.isAuthenticated)
    }
}
