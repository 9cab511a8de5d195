import FileFormats
import Foundation
import Testing

/// The command line names every setting the libraries name in messages (Sources/SaganCLI/FlagNames.swift).
@Suite("Flag names")
struct FlagNamesTests {
    static let sources = URL(fileURLWithPath: #filePath).deletingLastPathComponent()
        .deletingLastPathComponent().deletingLastPathComponent().appendingPathComponent("Sources")

    @Test func everySettingHasAFlag() throws {
        let table = try String(
            contentsOf: Self.sources.appendingPathComponent("SaganCLI/FlagNames.swift"), encoding: .utf8)
        let named = Set(table.matches(of: /\.(\w+): "--[a-z0-9-]+"/).map { String($0.1) })
        let declarations = try String(
            contentsOf: Self.sources.appendingPathComponent("FileFormats/Setting.swift"), encoding: .utf8)
        let declared = declarations.matches(of: /public static let (\w+) = Setting\("([^"]+)"\)/)
        #expect(declared.count == Setting.all.count, "Setting.all lists \(Setting.all.count) of \(declared.count)")
        for match in declared {
            #expect(named.contains(String(match.1)), "Setting.\(match.1) has no flag in FlagNames.swift")
            #expect(Setting.all.contains(Setting(String(match.2))), "Setting.\(match.1) is missing from Setting.all")
        }
    }

    @Test func aSettingIsNamedByItsKeyUnlessAFrontEndNamesIt() {
        #expect(Setting("stepsForThisTest").description == "stepsForThisTest")
    }
}
