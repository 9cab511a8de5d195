import Foundation

/// A JSON document as a value, read and written exactly.
///
/// Numbers keep the text they were written as and convert with Swift's correctly rounded
/// `Double(String)`, so every finite Double survives a write and a read bit for bit. Foundation's
/// `JSONSerialization` on Linux misreads some (0.3737361402788131 comes back as …132), which made a
/// run's files disagree with the values it had computed. Everything the project writes as JSON and
/// reads back goes through this type (or Codable), never through `JSONSerialization`.
public enum JSONValue: Equatable, Sendable {
    case null
    case bool(Bool)
    /// The number's literal text, as the JSON grammar allows it (validated when parsed or built).
    case number(String)
    case string(String)
    case array([JSONValue])
    case object([String: JSONValue])

    /// A finite Double as its shortest round-trip text; nil for NaN and infinities (not JSON).
    public init?(exactly value: Double) {
        guard value.isFinite else { return nil }
        self = .number(value.description)
    }

    public init(_ value: Int) { self = .number(String(value)) }

    public init(_ value: String) { self = .string(value) }

    public init(_ values: [String]) { self = .array(values.map(JSONValue.string)) }

    /// The value of a Codable type, as JSONEncoder writes it (keys sorted).
    public init<T: Encodable>(encoding value: T) throws {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        self = try JSONValue(parsing: encoder.encode(value))
    }

    /// A Codable type decoded from this value.
    public func decode<T: Decodable>(_ type: T.Type) throws -> T {
        try JSONDecoder().decode(type, from: serialized())
    }

    // MARK: Reading parts

    public subscript(key: String) -> JSONValue? {
        if case .object(let fields) = self { return fields[key] }
        return nil
    }

    public var object: [String: JSONValue]? {
        if case .object(let fields) = self { return fields }
        return nil
    }

    public var array: [JSONValue]? {
        if case .array(let items) = self { return items }
        return nil
    }

    public var string: String? {
        if case .string(let text) = self { return text }
        return nil
    }

    public var bool: Bool? {
        if case .bool(let flag) = self { return flag }
        return nil
    }

    /// The number, correctly rounded to the nearest Double.
    public var double: Double? {
        if case .number(let text) = self { return Double(text) }
        return nil
    }

    /// The number, correctly rounded to the nearest Float (not through Double, which could round twice).
    public var float: Float? {
        if case .number(let text) = self { return Float(text) }
        return nil
    }

    /// The number when it is a whole number that fits an Int ("5", "5.0", "5e0").
    public var int: Int? {
        guard case .number(let text) = self else { return nil }
        if let exact = Int(text) { return exact }
        guard let value = Double(text), value == value.rounded(), abs(value) < 9.2e18 else { return nil }
        return Int(value)
    }

    /// The strings of an array of strings.
    public var strings: [String]? {
        guard let items = array else { return nil }
        let texts = items.compactMap(\.string)
        return texts.count == items.count ? texts : nil
    }

    /// The value as text for messages: strings bare, everything else as JSON.
    public var displayText: String {
        if case .string(let text) = self { return text }
        return String(decoding: serialized(), as: UTF8.self)
    }
}

extension JSONValue: ExpressibleByStringLiteral, ExpressibleByIntegerLiteral, ExpressibleByBooleanLiteral,
    ExpressibleByArrayLiteral, ExpressibleByDictionaryLiteral, ExpressibleByNilLiteral
{
    public init(stringLiteral value: String) { self = .string(value) }
    public init(integerLiteral value: Int) { self = .number(String(value)) }
    public init(booleanLiteral value: Bool) { self = .bool(value) }
    public init(arrayLiteral elements: JSONValue...) { self = .array(elements) }
    public init(nilLiteral: ()) { self = .null }
    public init(dictionaryLiteral elements: (String, JSONValue)...) {
        self = .object(Dictionary(elements, uniquingKeysWith: { _, last in last }))
    }
}
