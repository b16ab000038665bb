import ArgumentParser
import ClusterKey

/// `swlaunch key generate FILE` and `swlaunch key show FILE`.
struct KeyCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "key",
        abstract: "Make or inspect a cluster key.",
        discussion: """
            A cluster key is a certificate authority in one PEM file (mode 0600). Give the same file to the \
            scheduler and every daemon (--key-file, cluster.key_file or SWLAUNCH_KEY_FILE): each issues itself a \
            host certificate from it, and every TCP connection is then mutual TLS 1.3. A host without the key \
            can neither join nor send jobs, and cannot read or alter what others send.
            """,
        subcommands: [Generate.self, Show.self])

    struct Generate: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Write a new cluster key to FILE (mode 0600; an existing file is kept).")
        @Argument(help: "Where to write the key.")
        var file: String

        func run() throws {
            let key = try ClusterKey.generate()
            do {
                try ClusterKey.write(key, to: file)
            } catch {
                throw ValidationError("\(error)")
            }
            print("wrote cluster key \(key.fingerprint) to \(file); copy it to every machine of the cluster (mode 0600)")
        }
    }

    struct Show: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Print a key file's fingerprint (the same on every machine that holds it).")
        @Argument(help: "The key file.")
        var file: String

        func run() throws {
            do {
                print(try ClusterKey.load(path: file).fingerprint)
            } catch {
                throw ValidationError("\(error)")
            }
        }
    }
}
