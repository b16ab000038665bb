/// swlaunch's default ports: its own, so that it runs beside icecream (whose scheduler takes TCP and UDP 8765
/// and 8766 for its text interface, and whose daemon takes 10245) while a site moves from one to the other.
public enum DefaultPorts {
    /// The scheduler's TCP port (daemons connect here).
    public static let scheduler = 8775
    /// A daemon's TCP port for jobs from peers.
    public static let daemon = 8776
    /// UDP discovery broadcasts (schedulers answer on it).
    public static let discovery = 8775
}
