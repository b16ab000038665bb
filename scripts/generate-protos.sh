#!/usr/bin/env bash
# Generates Sources/REAPIProtos/Generated from Protos/ (run after changing a .proto; the output is committed,
# since building protoc's Swift plugins in every build is slow).
#
#   scripts/generate-protos.sh [PLUGIN_FOLDER]
#
# PLUGIN_FOLDER holds protoc-gen-swift (swift-protobuf 1.39.0) and protoc-gen-grpc-swift-2 (grpc-swift-protobuf
# 2.4.1); without it they are built in .build-protoc-plugins. protoc comes from Debian's protobuf-compiler.
set -euo pipefail
cd "$(dirname "$0")/.."
plugins=${1:-}
[[ -z $plugins ]] || plugins=$(cd "$plugins" && pwd)
if [[ -z $plugins ]]; then
    scratch=.build-protoc-plugins
    mkdir -p "$scratch/package/Sources/dummy"
    cat >"$scratch/package/Package.swift" <<'SWIFT'
// swift-tools-version: 6.0
import PackageDescription
let package = Package(
    name: "plugins",
    dependencies: [
        .package(url: "https://github.com/apple/swift-protobuf.git", exact: "1.39.0"),
        .package(url: "https://github.com/grpc/grpc-swift-protobuf.git", exact: "2.4.1"),
    ],
    targets: [.executableTarget(name: "dummy")]
)
SWIFT
    echo 'print("")' >"$scratch/package/Sources/dummy/main.swift"
    (cd "$scratch/package" && swift build --product protoc-gen-swift && swift build --product protoc-gen-grpc-swift-2)
    plugins=$(pwd)/$scratch/package/.build/debug
fi
root=$(pwd)
out=Sources/REAPIProtos/Generated
rm -rf "$out"
mkdir -p "$out"
protos=$(cd Protos && find . -name '*.proto' | sed 's|^\./||' | sort)
(cd Protos && protoc --plugin=protoc-gen-swift="$plugins/protoc-gen-swift" \
    --swift_out="$root/$out" --swift_opt=Visibility=Public --swift_opt=FileNaming=PathToUnderscores $protos)
(cd Protos && protoc --plugin=protoc-gen-grpc-swift="$plugins/protoc-gen-grpc-swift-2" \
    --grpc-swift_out="$root/$out" --grpc-swift_opt=Visibility=Public --grpc-swift_opt=FileNaming=PathToUnderscores \
    --grpc-swift_opt=Server=true --grpc-swift_opt=Client=true $protos)
ls "$out"
