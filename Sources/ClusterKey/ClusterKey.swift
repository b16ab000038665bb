import Crypto
import Foundation
import NIOSSL
import SwiftASN1
import X509

/// Why a cluster key could not be made, read or used.
public struct ClusterKeyError: Error, CustomStringConvertible, Sendable {
    public let path: String
    public let reason: String
    public init(path: String, reason: String) {
        self.path = path
        self.reason = reason
    }
    public var description: String { "\(path): \(reason)" }
}

/// The secret every member of a cluster holds: a P-256 certificate authority (its private key and its
/// self-signed certificate, PEM, in one file of mode 0600).
///
/// Each process issues itself a short-lived host certificate from it at start-up, and every TCP connection
/// is mutual TLS 1.3 with that authority as the only trust root: a peer without the key cannot complete a
/// handshake, and a recorded session cannot be replayed (TLS 1.3's fresh key exchange). Discovery answers
/// carry an HMAC under a key derived from the authority's private key.
public struct ClusterKey: Sendable {
    public let authority: Certificate
    /// The authority's private key, as its raw scalar (crypto key types are not `Sendable`).
    private let authorityKeyBytes: [UInt8]
    var authorityKey: P256.Signing.PrivateKey { try! P256.Signing.PrivateKey(rawRepresentation: authorityKeyBytes) }

    /// A new random cluster key.
    public static func generate(now: Date = Date()) throws -> ClusterKey {
        let key = P256.Signing.PrivateKey()
        let name = try DistinguishedName {
            OrganizationName("swlaunch")
            CommonName("swlaunch cluster authority")
        }
        let extensions = try Certificate.Extensions {
            Critical(BasicConstraints.isCertificateAuthority(maxPathLength: 0))
            Critical(KeyUsage(keyCertSign: true))
            SubjectKeyIdentifier(hash: Certificate.PublicKey(key.publicKey))
        }
        let certificate = try Certificate(
            version: .v3, serialNumber: Certificate.SerialNumber(), publicKey: Certificate.PublicKey(key.publicKey),
            notValidBefore: now.addingTimeInterval(-86_400), notValidAfter: now.addingTimeInterval(100 * 365 * 86_400),
            issuer: name, subject: name, signatureAlgorithm: .ecdsaWithSHA256, extensions: extensions,
            issuerPrivateKey: Certificate.PrivateKey(key))
        return ClusterKey(authority: certificate, authorityKey: key)
    }

    /// The key file's text: the private key, then the certificate.
    public func pemText() throws -> String {
        authorityKey.pemRepresentation + "\n" + (try authority.serializeAsPEM().pemString) + "\n"
    }

    /// Parses a key file's text; `path` names it in errors.
    public init(pemText text: String, path: String) throws(ClusterKeyError) {
        let documents: [PEMDocument]
        do {
            documents = try PEMDocument.parseMultiple(pemString: text)
        } catch {
            throw ClusterKeyError(path: path, reason: "not a cluster key (no PEM blocks: \(error))")
        }
        guard let keyDocument = documents.first(where: { $0.discriminator == "PRIVATE KEY" || $0.discriminator == "EC PRIVATE KEY" }),
              let certificateDocument = documents.first(where: { $0.discriminator == "CERTIFICATE" }) else {
            throw ClusterKeyError(path: path, reason: "not a cluster key (it needs a PRIVATE KEY and a CERTIFICATE block; make one with `swlaunch key generate`)")
        }
        let key: P256.Signing.PrivateKey
        do {
            key = try P256.Signing.PrivateKey(pemRepresentation: keyDocument.pemString)
            authority = try Certificate(pemDocument: certificateDocument)
        } catch {
            throw ClusterKeyError(path: path, reason: "not a cluster key: \(error)")
        }
        authorityKeyBytes = Array(key.rawRepresentation)
        guard authority.publicKey == Certificate.PublicKey(key.publicKey) else {
            throw ClusterKeyError(path: path, reason: "the certificate does not belong to the private key")
        }
    }

    init(authority: Certificate, authorityKey: P256.Signing.PrivateKey) {
        self.authority = authority
        self.authorityKeyBytes = Array(authorityKey.rawRepresentation)
    }

    /// Reads a key file, refusing one that other users can read or write.
    public static func load(path: String) throws(ClusterKeyError) -> ClusterKey {
        var info = stat()
        guard stat(path, &info) == 0 else {
            throw ClusterKeyError(path: path, reason: String(cString: strerror(errno)))
        }
        guard (info.st_mode & S_IFMT) == S_IFREG else { throw ClusterKeyError(path: path, reason: "not a regular file") }
        guard (info.st_mode & 0o077) == 0 else {
            throw ClusterKeyError(path: path, reason: String(format: "mode %o lets other users read it; chmod 600 it", info.st_mode & 0o777))
        }
        guard let data = FileManager.default.contents(atPath: path) else {
            throw ClusterKeyError(path: path, reason: "unreadable")
        }
        return try ClusterKey(pemText: String(decoding: data, as: UTF8.self), path: path)
    }

    /// Writes a new key to `path` with mode 0600; refuses to overwrite an existing file.
    public static func write(_ key: ClusterKey, to path: String) throws {
        let text = try key.pemText()
        let fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0o600)
        guard fd >= 0 else { throw ClusterKeyError(path: path, reason: String(cString: strerror(errno))) }
        defer { close(fd) }
        fchmod(fd, 0o600)
        let bytes = Array(text.utf8)
        var written = 0
        while written < bytes.count {
            let n = bytes[written...].withUnsafeBytes { Glibc.write(fd, $0.baseAddress, $0.count) }
            guard n > 0 else { throw ClusterKeyError(path: path, reason: String(cString: strerror(errno))) }
            written += n
        }
    }

    /// A short fingerprint of the authority (the first 16 hex digits of its certificate's SHA-256), shown in
    /// `status` and `doctor` so that two machines can be checked to hold the same key.
    public var fingerprint: String {
        var serializer = DER.Serializer()
        try? serializer.serialize(authority)
        return SHA256.hash(data: serializer.serializedBytes).prefix(8).map { String(format: "%02x", $0) }.joined()
    }

    /// A host certificate issued from the authority, with a fresh key, for this process's lifetime.
    public func issueHostCredentials(name: String, now: Date = Date()) throws -> HostCredentials {
        let key = P256.Signing.PrivateKey()
        let subject = try DistinguishedName {
            OrganizationName("swlaunch")
            CommonName(name.isEmpty ? "swlaunch host" : String(name.prefix(64)))
        }
        let extensions = try Certificate.Extensions {
            Critical(BasicConstraints.notCertificateAuthority)
            Critical(KeyUsage(digitalSignature: true))
            try ExtendedKeyUsage([.serverAuth, .clientAuth])
            AuthorityKeyIdentifier(keyIdentifier: try authority.extensions.subjectKeyIdentifier?.keyIdentifier)
        }
        let certificate = try Certificate(
            version: .v3, serialNumber: Certificate.SerialNumber(), publicKey: Certificate.PublicKey(key.publicKey),
            notValidBefore: now.addingTimeInterval(-86_400), notValidAfter: now.addingTimeInterval(3650 * 86_400),
            issuer: authority.subject, subject: subject, signatureAlgorithm: .ecdsaWithSHA256, extensions: extensions,
            issuerPrivateKey: Certificate.PrivateKey(authorityKey))
        return HostCredentials(certificate: certificate, keyBytes: Array(key.rawRepresentation), authority: authority)
    }

    /// The key for discovery MACs, derived from the authority's private key (never the key itself).
    public var discoveryKey: [UInt8] {
        HKDF<SHA256>.deriveKey(inputKeyMaterial: SymmetricKey(data: authorityKeyBytes),
                               info: Array("swlaunch discovery v1".utf8), outputByteCount: 32)
            .withUnsafeBytes { Array($0) }
    }
}

/// One process's certificate and key, issued from the cluster key.
public struct HostCredentials: Sendable {
    public let certificate: Certificate
    let keyBytes: [UInt8]
    let authority: Certificate

    private func der(_ certificate: Certificate) throws -> [UInt8] {
        var serializer = DER.Serializer()
        try serializer.serialize(certificate)
        return serializer.serializedBytes
    }

    private func base() throws -> (chain: [NIOSSLCertificateSource], key: NIOSSLPrivateKeySource, roots: NIOSSLTrustRoots) {
        let leaf = try NIOSSLCertificate(bytes: try der(certificate), format: .der)
        let root = try NIOSSLCertificate(bytes: try der(authority), format: .der)
        let key = try P256.Signing.PrivateKey(rawRepresentation: keyBytes)
        let privateKey = try NIOSSLPrivateKey(bytes: Array(key.derRepresentation), format: .der)
        return ([.certificate(leaf)], .privateKey(privateKey), .certificates([root]))
    }

    /// Mutual TLS 1.3 for the accepting side: the peer must present a certificate from the same authority.
    public func serverContext() throws -> NIOSSLContext {
        let (chain, key, roots) = try base()
        var configuration = TLSConfiguration.makeServerConfigurationWithMTLS(certificateChain: chain, privateKey: key, trustRoots: roots)
        configuration.minimumTLSVersion = .tlsv13
        configuration.shutdownTimeout = .seconds(2)
        return try NIOSSLContext(configuration: configuration)
    }

    /// Mutual TLS 1.3 for the connecting side. Hosts are members by the authority, not by name, so no
    /// host name is checked.
    public func clientContext() throws -> NIOSSLContext {
        let (chain, key, roots) = try base()
        var configuration = TLSConfiguration.makeClientConfiguration()
        configuration.certificateChain = chain
        configuration.privateKey = key
        configuration.trustRoots = roots
        configuration.certificateVerification = .noHostnameVerification
        configuration.minimumTLSVersion = .tlsv13
        configuration.shutdownTimeout = .seconds(2)
        return try NIOSSLContext(configuration: configuration)
    }
}

/// How a process's TCP connections are protected: mutual TLS from the cluster key, or nothing (loopback
/// only, unless the operator said `--insecure`).
public struct TransportSecurity: Sendable {
    public let server: NIOSSLContext?
    public let client: NIOSSLContext?
    /// The key's fingerprint, or nil without a key.
    public let fingerprint: String?
    /// The discovery MAC key, or nil without a key.
    public let discoveryKey: [UInt8]?

    /// No TLS: only for loopback, or with `--insecure`.
    public static let none = TransportSecurity(server: nil, client: nil, fingerprint: nil, discoveryKey: nil)

    public var isAuthenticated: Bool { server != nil }

    init(server: NIOSSLContext?, client: NIOSSLContext?, fingerprint: String?, discoveryKey: [UInt8]?) {
        self.server = server
        self.client = client
        self.fingerprint = fingerprint
        self.discoveryKey = discoveryKey
    }

    /// TLS contexts for one process holding `key`.
    public init(key: ClusterKey, hostName: String) throws {
        let credentials = try key.issueHostCredentials(name: hostName)
        self.init(server: try credentials.serverContext(), client: try credentials.clientContext(),
                  fingerprint: key.fingerprint, discoveryKey: key.discoveryKey)
    }

    /// Whether `host` is a loopback address (the only kind a process without a key may listen on).
    public static func isLoopback(_ host: String) -> Bool {
        host == "localhost" || host == "::1" || host.hasPrefix("127.")
    }
}

extension TransportSecurity {
    /// The security a daemon or scheduler runs with: TLS from `keyFile` when one is given; without one,
    /// only loopback `listenHosts`, unless `insecure`. `name` goes into the host certificate.
    public static func resolve(keyFile: String?, insecure: Bool, listenHosts: [String], name: String) throws -> TransportSecurity {
        if let keyFile {
            return try TransportSecurity(key: try ClusterKey.load(path: keyFile), hostName: name)
        }
        if !insecure, let exposed = listenHosts.first(where: { !isLoopback($0) }) {
            throw ClusterKeyError(path: exposed, reason: """
                without a cluster key, only a loopback address may be listened on: any host that reaches \(exposed) could \
                join the cluster, send jobs and receive others' sources. Make a key with `swlaunch key generate FILE` and \
                give it to every machine (--key-file, cluster.key_file, SWLAUNCH_KEY_FILE), listen on 127.0.0.1, or pass \
                --insecure on a network you trust
                """)
        }
        return .none
    }
}
