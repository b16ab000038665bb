import ArgumentParser
import Config
import Launch

struct ConfigCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "config",
        abstract: "Show the effective settings, each with where it came from.",
        discussion: """
            Settings come from /etc/swlaunch/config.toml, then ~/.config/swlaunch/config.toml, then the closest \
            swlaunch.toml at or above the current directory, then SWLAUNCH_* environment variables; each layer \
            overrides the one before. Mistakes are listed with file, line and key, and the exit status is 1.
            """)

    @Flag(help: "List every known key with its environment variable and meaning.") var keys = false

    func run() throws {
        if keys {
            for spec in configKeys {
                print("\(spec.key)  (\(spec.environment ?? "-"))\n    \(spec.help)")
            }
            print("toolchains.<compiler>\n    Environment archive per helper platform, e.g. \"arm-linux-gnueabihf-g++\" = { x86_64-linux = \"envs/arm.tar.zst\" }")
            return
        }
        let config: Configuration
        do {
            config = try Configuration.load(workingDirectory: Posix.currentDirectory() ?? "/", environment: Posix.environment)
        } catch {
            for problem in error.errors { print("error: \(problem)") }
            throw ExitCode(1)
        }
        print("# files read: " + (config.files.isEmpty ? "none" : config.files.joined(separator: ", ")))
        for key in config.settings.keys.sorted() {
            let setting = config.settings[key]!
            print("\(key) = \(setting.value.rendered)  # \(setting.source)")
        }
    }
}
