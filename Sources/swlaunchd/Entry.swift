import Daemon

/// swlaunchd: the command line, its settings and the services live in the Daemon library (``DaemonCommand``).
@main
enum Entry {
    static func main() async {
        await DaemonCommand.main()
    }
}
