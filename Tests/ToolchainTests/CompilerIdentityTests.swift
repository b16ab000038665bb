import Foundation
import SystemSupport
import Testing
@testable import Toolchain

/// What `swlaunch env create --stand-in-for` and swlaunchd compare: gcc's own account of what decides its code.
@Suite struct CompilerIdentityTests {
    static func verbose(target: String, package: String, arch: String = "armv7-a+fp", float: String = "hard", build: String) -> String {
        """
        Using built-in specs.
        COLLECT_GCC=g++
        Target: \(target)
        Configured with: ../src/configure -v --with-pkgversion='\(package)' --enable-languages=c,c++ --prefix=/usr \
        --build=\(build) --host=\(build) --target=\(target) --with-arch=\(arch) --with-fpu=vfpv3-d16 --with-float=\(float) \
        --with-mode=thumb --enable-default-pie --disable-werror
        Thread model: posix
        gcc version 12.2.0 (\(package))
        """
    }

    static let help = "The following options are target specific:\n  -mfloat-abi=     \t\thard\n  -mthumb   \t\t[enabled]\n"
    static let macros = "#define __ARM_ARCH 7\n#define __ARM_PCS_VFP 1\n#define __thumb__ 1\n"

    @Test func aCrossCompilerOfTheSameConfigurationDiffersOnlyInRevision() throws {
        let native = try CompilerIdentity(verbose: Self.verbose(target: "arm-linux-gnueabihf", package: "Debian 12.2.0-14+deb12u1",
                                                                build: "arm-linux-gnueabihf"), targetHelp: Self.help, macros: Self.macros)
        let cross = try CompilerIdentity(verbose: Self.verbose(target: "arm-linux-gnueabihf", package: "Debian 12.2.0-14cross1",
                                                               build: "x86_64-linux-gnu"), targetHelp: Self.help, macros: Self.macros)
        #expect(native.version == "12.2.0" && native.target == "arm-linux-gnueabihf" && native.packageVersion == "Debian 12.2.0-14+deb12u1")
        // The build and host machines, paths and languages are not compared; --target and --with-* are.
        #expect(native.generationOptions == ["--enable-default-pie", "--target=arm-linux-gnueabihf", "--with-arch=armv7-a+fp",
                                             "--with-float=hard", "--with-fpu=vfpv3-d16", "--with-mode=thumb"])
        #expect(native.targetDefaults == ["-mfloat-abi= hard", "-mthumb [enabled]"])
        #expect(cross.differences(from: native).isEmpty)
        #expect(cross.differsOnlyInRevision(from: native))
        #expect(!native.differsOnlyInRevision(from: native))
    }

    @Test func otherTargetDefaultsAreDifferencesNamed() throws {
        let hard = try CompilerIdentity(verbose: Self.verbose(target: "arm-linux-gnueabihf", package: "Debian 12.2.0-14", build: "x"),
                                        targetHelp: Self.help, macros: Self.macros)
        let soft = try CompilerIdentity(verbose: Self.verbose(target: "arm-linux-gnueabihf", package: "Debian 12.2.0-14", arch: "armv5te",
                                                              float: "soft", build: "x"),
                                        targetHelp: Self.help.replacingOccurrences(of: "hard", with: "soft"),
                                        macros: Self.macros.replacingOccurrences(of: "#define __ARM_PCS_VFP 1\n", with: ""))
        let differences = soft.differences(from: hard)
        #expect(differences.count == 3, "\(differences)")
        #expect(differences.first { $0.hasPrefix("configure options") }?.contains("--with-arch=armv5te, --with-float=soft against --with-arch=armv7-a+fp, --with-float=hard") == true)
        #expect(differences.first { $0.hasPrefix("target defaults") }?.contains("-mfloat-abi= soft against -mfloat-abi= hard") == true)
        #expect(differences.first { $0.hasPrefix("predefined macros") }?.contains("none against #define __ARM_PCS_VFP 1") == true)
        var older = hard
        older.version = "11.3.0"
        #expect(older.differences(from: hard) == ["version 11.3.0 against 12.2.0"])
    }

    @Test func notGccIsAnError() {
        #expect(throws: CompilerIdentityError.self) { try CompilerIdentity(verbose: "clang version 16\n", targetHelp: "", macros: "") }
    }

    /// The host's own gcc, asked for real: it is itself, and its identity survives the manifest.
    @Test func theHostsGccProbedAndRecorded() throws {
        let identity = try CompilerIdentity.probe("/usr/bin/g++")
        #expect(identity.version.split(separator: ".").count == 3 && !identity.targetDefaults.isEmpty && identity.macros.contains { $0.hasPrefix("#define __GNUC__ ") })
        #expect(try CompilerIdentity.probe("/usr/bin/x86_64-linux-gnu-g++").differences(from: identity).isEmpty)
        let manifest = EnvironmentManifest(platform: "x86_64-linux", compilers: ["/usr/bin/arm-linux-gnueabihf-g++"],
                                           standsInFor: [.init(compiler: "g++", identity: identity, standInPackageVersion: "Debian 12.2.0-14cross1")])
        #expect(EnvironmentManifest(text: manifest.text) == manifest)
        #expect(manifest.compiler(for: "/usr/bin/g++") == "/usr/bin/arm-linux-gnueabihf-g++")
        #expect(manifest.standIn(for: "/usr/bin/g++")?.identity == identity)
        #expect(manifest.standIn(for: "gcc") == nil)
    }

    /// A driver that cannot run here (an x86_64 cross compiler on a Pi) is read from its file: the same version,
    /// target, package and configure options as when it runs.
    @Test func aDriverReadFromItsFile() throws {
        let probed = try CompilerIdentity.probe("/usr/bin/g++")
        let file = try #require(Posix.realPath("/usr/bin/g++").flatMap(Posix.readFile))
        let read = try CompilerIdentity(driverFile: file)
        #expect(read.isStatic && !probed.isStatic)
        #expect(read.version == probed.version && read.target == probed.target && read.packageVersion == probed.packageVersion)
        #expect(read.generationOptions == probed.generationOptions)
        #expect(read.differences(from: probed).isEmpty)
        #expect(throws: CompilerIdentityError.self) { try CompilerIdentity(driverFile: Array("not a compiler".utf8)) }
    }
}

/// Packing a driver that cannot run here: its programs from the configure line in its file, its libraries from
/// its ELF headers. Checked against what the running driver and ldd say, on Debian's armhf cross compiler.
@Suite(.enabled(if: Posix.isExecutableFile("/usr/bin/arm-linux-gnueabihf-g++"), "needs g++-arm-linux-gnueabihf"))
struct ForeignDriverTests {
    static func capture(_ arguments: [String]) throws -> String {
        let out = NSTemporaryDirectory() + "elf-test-" + randomHexString(bytes: 6)
        defer { Posix.removeFile(out) }
        #expect(Spawn.run(arguments[0], arguments, stdoutPath: out, stderrPath: "/dev/null") == 0)
        return String(decoding: Posix.readFile(out) ?? [], as: UTF8.self)
    }

    @Test func programsFromTheConfigureLineAreTheOnesTheDriverNames() throws {
        let driver = "/usr/bin/arm-linux-gnueabihf-g++"
        var asked: [String] = []
        for program in ["cc1", "cc1plus", "as"] {
            let answer = try Self.capture([driver, "-print-prog-name=\(program)"]).trimmingCharacters(in: .whitespacesAndNewlines)
            asked.append(Posix.realPath(answer) ?? answer)
        }
        let read = ToolchainRegistry.programs(ofDriverFile: driver).map { Posix.realPath($0) ?? $0 }
        #expect(Set(read).isSuperset(of: asked), "\(read) against \(asked)")
        #expect(read.count >= 3)
    }

    @Test func librariesFromTheELFFileAreTheOnesLddLists() throws {
        let cc1plus = try Self.capture(["/usr/bin/arm-linux-gnueabihf-g++", "-print-prog-name=cc1plus"]).trimmingCharacters(in: .whitespacesAndNewlines)
        for program in [cc1plus, "/usr/bin/arm-linux-gnueabihf-g++-12", "/usr/bin/arm-linux-gnueabihf-as"] {
            let ldd = try Self.capture(["/usr/bin/ldd", program]).split(separator: "\n").compactMap { line -> String? in
                let parts = line.split(separator: " ")
                if let arrow = parts.firstIndex(of: "=>"), arrow + 1 < parts.count, parts[arrow + 1].hasPrefix("/") { return String(parts[arrow + 1]) }
                return parts.first.map { $0.trimmingCharacters(in: .whitespaces) }.flatMap { $0.hasPrefix("/") ? $0 : nil }
            }
            let read = ELFFile.sharedLibraries(of: program)
            #expect(Set(read.map { Posix.realPath($0) ?? $0 }) == Set(ldd.map { Posix.realPath($0) ?? $0 }), "\(program): \(read) against \(ldd)")
        }
    }

    @Test func anARMFileIsReadToo() throws {
        let libc = try #require(Posix.readFile("/usr/arm-linux-gnueabihf/lib/libc.so.6").flatMap(ELFFile.init(bytes:)))
        #expect(libc.machine == 40 && libc.needed.contains("ld-linux-armhf.so.3"))
        #expect(ELFFile(bytes: Array("#!/bin/sh\n".utf8)) == nil)
        #expect(ELFFile.machine(of: "/usr/bin/arm-linux-gnueabihf-g++-12") == 62)
    }
}

extension ForeignDriverTests {
    /// The cross compiler's files copied into a folder that stands for another machine's root, packed from there
    /// without running anything: the same environment (same id, so the same files and links) as packing the
    /// installed compiler by asking it.
    @Test func packingFromARootIsPackingTheInstalledCompiler() throws {
        let registry = ToolchainRegistry(resolver: FileResolver(), platform: "x86_64-linux")
        let drivers = ["/usr/bin/arm-linux-gnueabihf-gcc", "/usr/bin/arm-linux-gnueabihf-g++"]
        let installed = try registry.environment(compilers: drivers)
        let root = NSTemporaryDirectory() + "foreign-root-" + randomHexString(bytes: 6)
        defer { try? FileManager.default.removeItem(atPath: root) }
        for link in installed.symlinks {
            try FileManager.default.createDirectory(atPath: root + SandboxTree.parent(link.path), withIntermediateDirectories: true)
            try FileManager.default.createSymbolicLink(atPath: root + link.path, withDestinationPath: link.target)
        }
        for file in installed.files {
            try FileManager.default.createDirectory(atPath: root + SandboxTree.parent(file.path), withIntermediateDirectories: true)
            try FileManager.default.copyItem(atPath: file.path, toPath: root + file.path)
        }
        let packed = try registry.foreignEnvironment(compilers: drivers, root: root)
        #expect(Set(packed.files.map(\.path)) == Set(installed.files.map(\.path)))
        #expect(Set(packed.symlinks.map(\.path)) == Set(installed.symlinks.map(\.path)))
        #expect(packed.id == installed.id)
        #expect(packed.files.contains { $0.path.hasSuffix("/cc1plus") } && packed.files.contains { $0.path.hasSuffix("/libc.so.6") })
        // And written from the root, it unpacks to the same id.
        let archive = root + ".tar.zst"
        defer { Posix.removeFile(archive); try? FileManager.default.removeItem(atPath: root + ".unpacked") }
        try EnvironmentArchive.write(packed, manifest: EnvironmentManifest(platform: "x86_64-linux", compilers: drivers), to: archive, sourceRoot: root)
        #expect(try EnvironmentArchive.unpack(archive, into: root + ".unpacked").1.id == installed.id)
    }
}
