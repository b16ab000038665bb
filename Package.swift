// swift-tools-version: 6.0
import PackageDescription

let package = Package(
    name: "swlaunch",
    platforms: [.macOS(.v15)],
    products: [
        .executable(name: "swlaunch", targets: ["swlaunch"]),
        .executable(name: "swlaunch-ctl", targets: ["swlaunch-ctl"]),
        .executable(name: "swlaunchd", targets: ["swlaunchd"]),
        .executable(name: "swlaunch-scheduler", targets: ["swlaunch-scheduler"]),
        // The parsers the fuzz targets in Fuzz/ exercise.
        .library(name: "SwlaunchParsers", targets: ["Wire", "WireNIO", "CompilerArgs", "Config", "NinjaLog", "Toolchain"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-nio.git", from: "2.101.2"),
        .package(url: "https://github.com/apple/swift-argument-parser.git", from: "1.8.2"),
        .package(url: "https://github.com/apple/swift-log.git", from: "1.16.2"),
        .package(url: "https://github.com/apple/swift-crypto.git", from: "3.12.3"),
        .package(url: "https://github.com/apple/swift-nio-ssl.git", from: "2.37.0"),
        .package(url: "https://github.com/apple/swift-certificates.git", from: "1.21.0"),
        .package(url: "https://github.com/apple/swift-asn1.git", from: "1.7.0"),
        .package(url: "https://github.com/swift-server/swift-service-lifecycle.git", from: "2.13.0"),
        .package(url: "https://github.com/hummingbird-project/hummingbird.git", from: "2.28.1"),
        .package(url: "https://github.com/apple/swift-metrics.git", from: "2.13.0"),
        .package(url: "https://github.com/swift-server/swift-prometheus.git", from: "2.4.1"),
        .package(url: "https://github.com/groue/GRDB.swift.git", from: "7.10.0"),
        .package(url: "https://github.com/apple/swift-protobuf.git", from: "1.39.0"),
        .package(url: "https://github.com/grpc/grpc-swift-2.git", from: "2.4.3"),
        .package(url: "https://github.com/grpc/grpc-swift-nio-transport.git", from: "2.9.2"),
        .package(url: "https://github.com/grpc/grpc-swift-protobuf.git", from: "2.4.1"),
    ],
    targets: [
        // C libraries from Debian.
        .systemLibrary(name: "CZstd", pkgConfig: "libzstd", providers: [.apt(["libzstd-dev"])]),
        .systemLibrary(name: "CArchive", pkgConfig: "libarchive", providers: [.apt(["libarchive-dev"])]),

        // Pure logic: no Foundation, no I/O beyond what the launcher's hot path needs.
        // Linux calls Swift cannot make directly (openat2, pidfd_open, SO_PEERCRED).
        .target(name: "CLinuxShims"),
        .target(name: "SystemSupport", dependencies: ["CLinuxShims"]),
        .target(name: "CompilerArgs"),
        .target(name: "Config", dependencies: ["SystemSupport"]),
        .target(name: "NinjaLog", dependencies: ["SystemSupport"]),
        .target(name: "Wire", dependencies: ["CZstd"]),
        .target(name: "Scheduling", dependencies: ["Wire"]),
        // The JSON records of stats, status and the job journal, shared by their writers and readers.
        .target(name: "Records"),
        // The build wrappers' rules (swlaunch make/ninja/cmake): job counts and argument rewriting, pure.
        .target(name: "BuildWrappers"),
        // The daemon's own include scan (a superset of what gcc reads, from the text), in place of the compiler's.
        .target(name: "IncludeScan", dependencies: ["SystemSupport"]),

        // The cluster key: host certificates issued from it, mutual TLS 1.3 configurations, discovery MACs.
        .target(name: "ClusterKey", dependencies: [
            .product(name: "NIOSSL", package: "swift-nio-ssl"),
            .product(name: "X509", package: "swift-certificates"),
            .product(name: "SwiftASN1", package: "swift-asn1"),
            .product(name: "Crypto", package: "swift-crypto"),
        ]),

        .target(name: "WireNIO", dependencies: [
            "Wire", "ClusterKey", "SystemSupport", "CLinuxShims",
            .product(name: "NIOSSL", package: "swift-nio-ssl"),
            .product(name: "Crypto", package: "swift-crypto"),
            .product(name: "NIOCore", package: "swift-nio"),
            .product(name: "NIOPosix", package: "swift-nio"),
            .product(name: "Logging", package: "swift-log"),
            .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
        ]),

        // Toolchain packaging: native toolchain discovery, environment archives, the environment cache.
        .target(name: "Toolchain", dependencies: [
            "Wire", "SystemSupport", "CArchive", "CLinuxShims",
            .product(name: "Crypto", package: "swift-crypto"),
        ]),

        // Services.
        .target(name: "Launch", dependencies: ["CompilerArgs", "Config", "Wire", "SystemSupport"]),
        // Bazel's Remote Execution API: the messages and services swlaunch uses, generated from Protos/ by
        // scripts/generate-protos.sh and committed.
        .target(name: "REAPIProtos", dependencies: [
            .product(name: "SwiftProtobuf", package: "swift-protobuf"),
            .product(name: "GRPCCore", package: "grpc-swift-2"),
            .product(name: "GRPCProtobuf", package: "grpc-swift-protobuf"),
        ]),
        // The REAPI backend: a job as an Action (input root, command, platform), the client of a REAPI service,
        // and a Remote Workers API bot that runs actions in the daemon's sandbox.
        .target(name: "RemoteExecution", dependencies: [
            "REAPIProtos", "Wire", "Toolchain", "SystemSupport", "CompilerArgs",
            .product(name: "SwiftProtobuf", package: "swift-protobuf"),
            .product(name: "GRPCCore", package: "grpc-swift-2"),
            .product(name: "GRPCProtobuf", package: "grpc-swift-protobuf"),
            .product(name: "GRPCNIOTransportHTTP2", package: "grpc-swift-nio-transport"),
            .product(name: "Crypto", package: "swift-crypto"),
            .product(name: "Logging", package: "swift-log"),
        ]),
        .target(name: "Daemon", dependencies: [
            "RemoteExecution", "Wire", "WireNIO", "ClusterKey", "CompilerArgs", "SystemSupport", "Scheduling", "Toolchain", "Config", "Records", "IncludeScan",
            .product(name: "ArgumentParser", package: "swift-argument-parser"),
            .product(name: "NIOCore", package: "swift-nio"),
            .product(name: "NIOPosix", package: "swift-nio"),
            .product(name: "Logging", package: "swift-log"),
            .product(name: "Crypto", package: "swift-crypto"),
        ]),
        // What monitors see: the model a stream of cluster events builds and the terminal view of it (pure).
        .target(name: "MonitorView", dependencies: ["Records"]),
        // The scheduler's job history and measured host speeds in SQLite, bounded in size.
        .target(name: "History", dependencies: ["Records", .product(name: "GRDB", package: "GRDB.swift")]),
        // The scheduler's read-only HTTP side: dashboard, server-sent events, Prometheus /metrics.
        .target(name: "SchedulerHTTP", dependencies: [
            "Records",
            .product(name: "Hummingbird", package: "hummingbird"),
            .product(name: "Metrics", package: "swift-metrics"),
            .product(name: "Prometheus", package: "swift-prometheus"),
        ]),
        .target(name: "SchedulerService", dependencies: [
            "Wire", "WireNIO", "ClusterKey", "SystemSupport", "Scheduling", "Records", "History", "SchedulerHTTP",
            .product(name: "NIOCore", package: "swift-nio"),
            .product(name: "NIOPosix", package: "swift-nio"),
            .product(name: "Logging", package: "swift-log"),
        ]),

        // Entry points.
        // The launcher runs once per compile: a fully static executable starts in about a millisecond,
        // against about three for one that loads the Swift runtime's shared dependencies.
        .executableTarget(name: "swlaunch", dependencies: ["Launch"],
                          linkerSettings: [.unsafeFlags(["-static-executable"], .when(platforms: [.linux]))]),
        .executableTarget(name: "swlaunch-ctl", dependencies: [
            "Wire", "Launch", "Config", "Toolchain", "NinjaLog", "ClusterKey", "Records", "BuildWrappers", "MonitorView", "CLinuxShims",
            .product(name: "ArgumentParser", package: "swift-argument-parser"),
        ]),
        .executableTarget(name: "swlaunchd", dependencies: ["Daemon", "SystemSupport"]),
        .executableTarget(name: "swlaunch-scheduler", dependencies: [
            "SchedulerService", "WireNIO", "SystemSupport", "Config", "ClusterKey",
            .product(name: "ArgumentParser", package: "swift-argument-parser"),
        ]),

        // Loads a scheduler with simulated daemons and clients (scripts/bench-scheduler.sh); not installed.
        .executableTarget(name: "swlaunch-scheduler-bench", dependencies: [
            "Wire", "WireNIO", "SystemSupport",
            .product(name: "ArgumentParser", package: "swift-argument-parser"),
            .product(name: "NIOCore", package: "swift-nio"),
            .product(name: "NIOPosix", package: "swift-nio"),
        ]),

        .testTarget(name: "CompilerArgsTests", dependencies: ["CompilerArgs"]),
        .testTarget(name: "WireTests", dependencies: ["Wire", "SystemSupport"]),
        .testTarget(name: "WireNIOTests", dependencies: [
            "Wire", "WireNIO", .product(name: "NIOEmbedded", package: "swift-nio"), .product(name: "NIOCore", package: "swift-nio"),
        ]),
        .testTarget(name: "SchedulingTests", dependencies: ["Scheduling"]),
        .testTarget(name: "RecordsTests", dependencies: ["Records"]),
        .testTarget(name: "MonitoringTests", dependencies: ["MonitorView", "History", "SchedulerHTTP", "Records"]),
        .testTarget(name: "BuildWrappersTests", dependencies: ["BuildWrappers"]),
        .testTarget(name: "SystemSupportTests", dependencies: ["SystemSupport"]),
        .testTarget(name: "IncludeScanTests", dependencies: ["IncludeScan", "SystemSupport"]),
        .testTarget(name: "ConfigTests", dependencies: ["Config", "SystemSupport"]),
        .testTarget(name: "NinjaLogTests", dependencies: ["NinjaLog", "SystemSupport"], exclude: ["Fixtures"]),
        .testTarget(name: "RemoteExecutionTests", dependencies: ["RemoteExecution", "REAPIProtos", "Wire", "SystemSupport"]),
        .testTarget(name: "DaemonTests", dependencies: ["Daemon", "Wire", "Toolchain", "Config", "SystemSupport", "ClusterKey"]),
        .testTarget(name: "ToolchainTests", dependencies: ["Toolchain", "Wire", "CArchive"], exclude: ["Fixtures"]),
        .testTarget(name: "EndToEndTests", dependencies: ["Wire", "Launch", "SystemSupport", "Toolchain", "Records"], exclude: ["Fixtures"]),
    ]
)
