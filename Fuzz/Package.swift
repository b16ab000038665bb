// swift-tools-version: 6.0
// libFuzzer targets for swlaunch's parsers. Built and run by scripts/fuzz.sh:
//   swift build -c release --sanitize=fuzzer --sanitize=address
import PackageDescription

let parsers: Target.Dependency = .product(name: "SwlaunchParsers", package: "swlaunch")
let package = Package(
    name: "swlaunch-fuzz",
    platforms: [.macOS(.v15)],
    dependencies: [
        .package(name: "swlaunch", path: ".."),
    ],
    targets: [
        .executableTarget(name: "FuzzFrames", dependencies: [parsers]),
        .executableTarget(name: "FuzzMessages", dependencies: [parsers]),
        .executableTarget(name: "FuzzClassifier", dependencies: [parsers]),
        .executableTarget(name: "FuzzConfig", dependencies: [parsers]),
        .executableTarget(name: "FuzzNinjaLog", dependencies: [parsers]),
        .executableTarget(name: "FuzzArchive", dependencies: [parsers]),
    ]
)
