import Testing
import CompilerArgs

/// The byte-wise substring test the launcher uses, which stands in for `String.contains(_:)` on the compile path.
@Suite struct LauncherTextTests {
    @Test func containsBytesFindsWhatContainsFinds() {
        let cases: [(String, String)] = [
            ("clang++-16", "clang"), ("x86_64-linux-gnu-g++-12", "clang"), ("cla", "clang"), ("aclangb", "clang"),
            ("clanclang", "clang"), ("clang", "clang"), ("", "clang"), ("gcc", ""), ("", ""), ("ßclangé", "clang"), ("cl ang", "clang"),
        ]
        for (text, part) in cases {
            #expect(text.containsBytes(part) == (part.isEmpty || text.contains(part)), "\(text) / \(part)")
        }
    }
}
