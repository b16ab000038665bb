import Foundation
import Testing
@testable import Daemon

@Suite struct IncludeTranslationTests {
    /// The client compiler's include folders are listed again when its path is pointed at another compiler
    /// (`update-alternatives` switching `c++`): the scan then searches the folders the compiler now reads.
    @Test func aCompilerLinkPointedElsewhereListsItsFoldersAgain() throws {
        let dir = NSTemporaryDirectory() + "alternatives-" + UUID().uuidString.prefix(8)
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: dir) }
        symlink(dir + "/alternative", dir + "/c++")
        symlink("/usr/bin/x86_64-linux-gnu-g++-12", dir + "/alternative")
        let translation = IncludeTranslation()
        let native = try translation.searchPath(compiler: dir + "/c++", language: "c++", options: [])
        #expect(native.contains("/usr/include/x86_64-linux-gnu"))
        #expect(try translation.searchPath(compiler: dir + "/c++", language: "c++", options: []) == native)
        symlink("/usr/bin/arm-linux-gnueabihf-g++-12", dir + "/alternative.new")
        rename(dir + "/alternative.new", dir + "/alternative")
        let cross = try translation.searchPath(compiler: dir + "/c++", language: "c++", options: [])
        #expect(cross != native)
        #expect(cross.contains { $0.contains("arm-linux-gnueabihf") })
        #expect(!cross.contains("/usr/include/x86_64-linux-gnu"))
    }
}
