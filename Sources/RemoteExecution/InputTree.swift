import Crypto
import Foundation
import REAPIProtos
import SwiftProtobuf
import SystemSupport
import Wire

typealias REDigest = Build_Bazel_Remote_Execution_V2_Digest
typealias REDirectory = Build_Bazel_Remote_Execution_V2_Directory

/// A blob's name in a REAPI content-addressable store: SHA-256 of the contents in lowercase hex, and their size.
public struct BlobDigest: Hashable, Sendable, CustomStringConvertible {
    public var hash: String
    public var size: Int64

    public init(hash: String, size: Int64) {
        self.hash = hash
        self.size = size
    }

    /// The digest of `bytes`.
    public init(of bytes: [UInt8]) {
        hash = hexString(SHA256.hash(data: bytes))
        size = Int64(bytes.count)
    }

    public var description: String { "\(hash)/\(size)" }

    var proto: REDigest { .with { $0.hash = hash; $0.sizeBytes = size } }

    init(_ proto: REDigest) {
        hash = proto.hash
        size = proto.sizeBytes
    }

    /// Whether this can name a SHA-256 blob at all (64 lowercase hex digits, a size not below zero).
    var isWellFormed: Bool { hash.utf8.count == 64 && hash.utf8.allSatisfy { (48...57).contains($0) || (97...102).contains($0) } && size >= 0 }
}

/// Why an input root or an action cannot be built or read.
public struct InputTreeError: Error, Equatable, CustomStringConvertible {
    public let path: String
    public let reason: String
    public init(path: String, reason: String) {
        self.path = path
        self.reason = reason
    }
    public var description: String { "\(path): \(reason)" }
}

/// An action's input root: files, symbolic links and directories at absolute paths (the root is `/` of the
/// machine that runs the action), turned into REAPI `Directory` messages (a Merkle tree, each directory's
/// entries sorted by name, as the API requires).
public struct InputTree: Sendable {
    public enum Node: Sendable, Equatable {
        case file(BlobDigest, executable: Bool)
        case symlink(target: String)
        case directory
    }

    /// Every node by its absolute, normalized path.
    public private(set) var nodes: [String: Node] = [:]

    public init() {}

    /// Adds a file; one already at the path is replaced (a job's own copy of a file wins over its environment's).
    public mutating func addFile(_ path: String, digest: BlobDigest, executable: Bool) throws {
        try addParents(of: path)
        if case .directory? = nodes[path] { throw InputTreeError(path: path, reason: "both a directory and a file") }
        nodes[path] = .file(digest, executable: executable)
    }

    public mutating func addSymlink(_ path: String, target: String) throws {
        try addParents(of: path)
        if case .directory? = nodes[path] { throw InputTreeError(path: path, reason: "both a directory and a symbolic link") }
        nodes[path] = .symlink(target: target)
    }

    /// Adds a directory and its parents (an empty one stays in the tree: the compile may need it to exist).
    public mutating func addDirectory(_ path: String) throws {
        let components = try Self.components(path)
        var current = ""
        for component in components {
            current += "/" + component
            switch nodes[current] {
            case .directory?: continue
            case nil: nodes[current] = .directory
            default: throw InputTreeError(path: current, reason: "both a directory and a file or link")
            }
        }
    }

    private mutating func addParents(of path: String) throws {
        let components = try Self.components(path)
        guard !components.isEmpty else { throw InputTreeError(path: path, reason: "the root is not a file") }
        if components.count > 1 { try addDirectory("/" + components.dropLast().joined(separator: "/")) }
    }

    static func components(_ path: String) throws -> [Substring] {
        let parts = path.split(separator: "/", omittingEmptySubsequences: false)
        guard path.hasPrefix("/"), !path.utf8.contains(0), !parts.dropFirst().contains(where: { $0 == "." || $0 == ".." }) else {
            throw InputTreeError(path: path, reason: "not a normalized absolute path")
        }
        return parts.filter { !$0.isEmpty }
    }

    /// The root directory's digest and every directory message by digest (the blobs to upload beside the files).
    public func encode() -> (root: BlobDigest, directories: [BlobDigest: [UInt8]]) {
        // Children of each directory, by parent path ("" for the root).
        var children: [String: [(name: String, path: String, node: Node)]] = ["": []]
        for (path, node) in nodes {
            let slash = path.utf8.lastIndex(of: UInt8(ascii: "/"))!
            let parent = String(path[..<slash])
            children[parent, default: []].append((String(path[path.index(after: slash)...]), path, node))
            if node == .directory, children[path] == nil { children[path] = [] }
        }
        var blobs: [BlobDigest: [UInt8]] = [:]
        func encodeDirectory(_ path: String) -> BlobDigest {
            var message = REDirectory()
            // Names sorted by their UTF-8 bytes, as REAPI requires of a canonical Directory.
            for entry in (children[path] ?? []).sorted(by: { $0.name.utf8.lexicographicallyPrecedes($1.name.utf8) }) {
                switch entry.node {
                case let .file(digest, executable):
                    message.files.append(.with { $0.name = entry.name; $0.digest = digest.proto; $0.isExecutable = executable })
                case let .symlink(target):
                    message.symlinks.append(.with { $0.name = entry.name; $0.target = target })
                case .directory:
                    let digest = encodeDirectory(entry.path)
                    message.directories.append(.with { $0.name = entry.name; $0.digest = digest.proto })
                }
            }
            let bytes: [UInt8] = (try? message.serializedBytes()) ?? []
            let digest = BlobDigest(of: bytes)
            blobs[digest] = bytes
            return digest
        }
        return (encodeDirectory(""), blobs)
    }
}
