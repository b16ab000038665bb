import Daemon
import SystemSupport

/// swlaunchd: the command line, its settings and the services live in the Daemon library (``DaemonCommand``).
@main
enum Entry {
    static func main() async {
        Posix.closeJobserverDescriptors()
        await DaemonCommand.main()
    }
}
