import FileFormats
import Foundation
import Testing

@Suite("JSON values")
struct JSONValueTests {
    /// Finite Doubles from random bit patterns (every exponent, subnormals included) and the edges.
    static func doubles(count: Int, seed: UInt64) -> [Double] {
        var values: [Double] = [
            0, -0.0, 1, -1, .leastNonzeroMagnitude, -.leastNonzeroMagnitude, .greatestFiniteMagnitude,
            -.greatestFiniteMagnitude, .leastNormalMagnitude, Double.leastNormalMagnitude.nextDown, .ulpOfOne,
            0.3737361402788131, 0.1, 1e23, 5e-324, 9_007_199_254_740_993,
        ]
        // A Weyl sequence of bit patterns: every bit position varies, reproducibly.
        var index = seed
        while values.count < count {
            index &+= 1
            let value = Double(bitPattern: index &* 0x9E37_79B9_7F4A_7C15)
            if value.isFinite { values.append(value) }
        }
        return values
    }

    /// Every finite Double survives serialising and parsing bit for bit, alone and inside an
    /// object and an array, compact and pretty.
    @Test func doublesRoundTripExactly() throws {
        let values = Self.doubles(count: 100_000, seed: 27)
        for value in values {
            let text = try #require(JSONValue(exactly: value)).serialized()
            let back = try #require(try JSONValue(parsing: text).double)
            #expect(back.bitPattern == value.bitPattern, "\(value) read back as \(back)")
        }
        let array = JSONValue.array(values.prefix(1000).map { JSONValue(exactly: $0)! })
        for pretty in [false, true] {
            let parsed = try #require(try JSONValue(parsing: array.serialized(pretty: pretty)).array)
            #expect(parsed.map { $0.double!.bitPattern } == values.prefix(1000).map(\.bitPattern))
        }
        // JSONDecoder reads what this writes exactly, and this reads what JSONEncoder writes exactly.
        let decoded = try JSONDecoder().decode([Double].self, from: array.serialized())
        #expect(decoded.map(\.bitPattern) == values.prefix(1000).map(\.bitPattern))
        let encoded = try JSONValue(encoding: Array(values.prefix(1000)))
        #expect(encoded.array?.map { $0.double!.bitPattern } == values.prefix(1000).map(\.bitPattern))
        #expect(JSONValue(exactly: .nan) == nil && JSONValue(exactly: -.infinity) == nil)
    }

    @Test func floatsReadWithoutDoubleRounding() throws {
        for index in 1...UInt32(20_000) {
            let value = Float(bitPattern: index &* 0x9E37_79B9)
            guard value.isFinite else { continue }
            let parsed = try JSONValue(parsing: value.description)
            #expect(parsed.float?.bitPattern == value.bitPattern, "\(value)")
        }
    }

    @Test func documentsParse() throws {
        let text = #"{"a": [1, -2.5e-3, true, false, null], "b": {"c": "x\"\\\/\b\f\n\r\t\u00e9\ud83d\ude00"}, "d": 0}"#
        let value = try JSONValue(parsing: text)
        #expect(value["a"] == [1, .number("-2.5e-3"), true, false, nil])
        #expect(value["a"]?.array?[1].double == -0.0025)
        #expect(value["b"]?["c"]?.string == "x\"\\/\u{8}\u{c}\n\r\té😀")
        #expect(value["d"]?.int == 0 && value["missing"] == nil)
        #expect(JSONValue.number("5.0").int == 5 && JSONValue.number("5.5").int == nil)
        #expect(try JSONValue(parsing: value.serialized()) == value)
        #expect(try JSONValue(parsing: value.serialized(pretty: true)) == value)
        #expect(String(decoding: (["b": 1, "a": "/"] as JSONValue).serialized(), as: UTF8.self) == #"{"a":"/","b":1}"#)
        #expect(String(decoding: JSONValue("\u{1}").serialized(), as: UTF8.self) == #""\u0001""#)
    }

    @Test func badDocumentsAreRefusedWithTheirOffset() {
        let bad = [
            "", "{", "[1,]", "{\"a\" 1}", "01", "1.", "1e", "-", "+1", ".5", "\"\\x\"", "\"\u{1}\"", "tru", "nul",
            "[1] 2", "{\"a\":1,\"a\":2}", "\"\\ud800\"", "\"\\udc00x\"", "NaN", "Infinity", "{1:2}", "'a'",
        ]
        for text in bad {
            #expect(throws: JSONParseError.self, "\(text)") { try JSONValue(parsing: text) }
        }
        #expect(throws: JSONParseError(offset: 3, reason: "expected ',' or ']'")) { try JSONValue(parsing: "[1 2]") }
        #expect(throws: JSONParseError.self) { try JSONValue(parsing: [UInt8(ascii: "\""), 0xFF, UInt8(ascii: "\"")]) }
        let deep = String(repeating: "[", count: 600) + String(repeating: "]", count: 600)
        #expect(throws: JSONParseError.self) { try JSONValue(parsing: deep) }
        let fine = String(repeating: "[", count: 500) + String(repeating: "]", count: 500)
        #expect((try? JSONValue(parsing: fine)) != nil)
    }
}
