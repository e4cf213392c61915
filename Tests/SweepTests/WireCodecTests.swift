import Foundation
import XCTest
@testable import Sweep

/// The header codec accepts exactly RFC 8259 JSON (issue 13, finding 5): a corpus of near-misses
/// is refused without a crash, valid edge cases are read with the right values, and every corpus
/// entry gets the same verdict from Foundation's JSONSerialization, except where Foundation is
/// lenient (trailing commas, a byte order mark) and the limits RFC 8259 §9 lets a parser set.
final class WireCodecTests: XCTestCase {
    static let refused: [(String, [UInt8])] = [
        ("leading zero", b(#"{"v":01}"#)), ("leading zero negative", b(#"{"v":-01}"#)), ("plus sign", b(#"{"v":+1}"#)),
        ("NaN", b(#"{"v":NaN}"#)), ("Infinity", b(#"{"v":Infinity}"#)), ("-Infinity", b(#"{"v":-Infinity}"#)),
        ("trailing comma in object", b(#"{"v":1,}"#)), ("trailing comma in array", b(#"{"v":[1,]}"#)),
        ("single quotes", b("{'v':1}")), ("single-quoted value", b(#"{"v":'1'}"#)),
        ("lone high surrogate", b(#"{"s":"\ud800"}"#)), ("lone low surrogate", b(#"{"s":"\udc00"}"#)),
        ("reversed surrogates", b(#"{"s":"\udc00\ud800"}"#)), ("high surrogate then letter", b(#"{"s":"\ud800x"}"#)),
        ("high surrogate then non-surrogate escape", b(#"{"s":"\ud800\u0041"}"#)),
        ("invalid UTF-8 byte", [0x7B, 0x22, 0x73, 0x22, 0x3A, 0x22, 0xFF, 0x22, 0x7D]),
        ("overlong UTF-8", [0x7B, 0x22, 0x73, 0x22, 0x3A, 0x22, 0xC0, 0xAF, 0x22, 0x7D]),
        ("UTF-8 encoded surrogate", [0x7B, 0x22, 0x73, 0x22, 0x3A, 0x22, 0xED, 0xA0, 0x80, 0x22, 0x7D]),
        ("truncated UTF-8", [0x7B, 0x22, 0x73, 0x22, 0x3A, 0x22, 0xE2, 0x82, 0x22, 0x7D]),
        ("raw newline in string", b("{\"s\":\"a\nb\"}")), ("raw tab in string", b("{\"s\":\"a\tb\"}")), ("raw NUL in string", b("{\"s\":\"a\u{0}b\"}")),
        ("bad escape", b(#"{"s":"\x41"}"#)), ("short unicode escape", b(#"{"s":"\u41"}"#)), ("signed hex escape", b(#"{"s":"\u+041"}"#)),
        ("hex fraction", b("{\"v\":0x1}")), ("dot without digits", b(#"{"v":1.}"#)), ("leading dot", b(#"{"v":.5}"#)),
        ("exponent without digits", b(#"{"v":1e}"#)), ("double minus", b(#"{"v":--1}"#)), ("number out of Double range", b(#"{"v":1e400}"#)),
        ("unquoted key", b("{v:1}")), ("comment", b("{\"v\":1 /* c */}")), ("missing value", b(#"{"v":}"#)),
        ("two values", b(#"{"v":1} {}"#)), ("byte order mark", [0xEF, 0xBB, 0xBF] + b(#"{"v":1}"#)), ("empty", []),
        ("True capitalised", b(#"{"v":True}"#)), ("unterminated string", b(#"{"s":"abc}"#)), ("vertical tab whitespace", b("{\"v\":\u{0B}1}")),
        ("10,000-deep nesting", b(String(repeating: "[", count: 10_000) + String(repeating: "]", count: 10_000))),
        ("10,000-deep open only", b(String(repeating: "{\"a\":", count: 10_000))),
    ]

    static let accepted: [(String, [UInt8])] = [
        ("escaped surrogate pair", b(#"{"s":"\ud83d\ude00"}"#)), ("-0", b(#"{"n":-0}"#)), ("1e308", b(#"{"n":1e308}"#)),
        ("empty string", b(#"{"s":""}"#)), ("escapes", b(#"{"s":"\"\\\/\b\f\n\r\t\u00e9"}"#)), ("raw UTF-8", b(#"{"s":"é😀"}"#)),
        ("exponent forms", b(#"{"a":1E+2,"b":-1.5e-3,"c":0.0}"#)), ("whitespace", b(" \t\r\n{ \"a\" : [ 1 , 2 ] } \n")),
        ("nested 31 deep", b(String(repeating: "[", count: 31) + String(repeating: "]", count: 31))),
        ("scalar document", b("true")), ("1 MB string", b("\"" + String(repeating: "x", count: 1 << 20) + "\"")),
    ]

    static func b(_ s: String) -> [UInt8] { Array(s.utf8) }

    func testRFC8259CorpusRefusedWithoutCrash() {
        for (name, bytes) in Self.refused {
            XCTAssertThrowsError(try FastJSON.parse(bytes), name)
            // As a header it is refused too (and never reaches a command handler).
            XCTAssertThrowsError(try WireMessage.parse([Array("READY".utf8), bytes][...]), name)
        }
    }

    func testValidEdgeCasesReadWithTheRightValues() throws {
        for (name, bytes) in Self.accepted { XCTAssertNoThrow(try FastJSON.parse(bytes), name) }
        XCTAssertEqual(try FastJSON.parse(Self.b(#"{"s":"\ud83d\ude00"}"#)).object?["s"]?.string, "😀")
        let minusZero = try XCTUnwrap(FastJSON.parse(Self.b(#"{"n":-0}"#)).object?["n"]?.double)
        XCTAssertEqual(minusZero, 0)
        XCTAssertEqual(minusZero.sign, .minus)
        XCTAssertEqual(try FastJSON.parse(Self.b(#"{"n":1e308}"#)).object?["n"]?.double, 1e308)
        XCTAssertEqual(try FastJSON.parse(Self.b(#"{"s":""}"#)).object?["s"]?.string, "")
        XCTAssertEqual(try FastJSON.parse(Self.b(#"{"s":"\"\\\/\b\f\n\r\t\u00e9"}"#)).object?["s"]?.string, "\"\\/\u{8}\u{C}\n\r\té")
        let e = try FastJSON.parse(Self.b(#"{"a":1E+2,"b":-1.5e-3,"c":0.0}"#)).object
        XCTAssertEqual(e?["a"]?.int, 100)
        XCTAssertEqual(e?["b"]?.double, -0.0015)
        XCTAssertEqual(try FastJSON.parse(Self.b("\"" + String(repeating: "x", count: 1 << 20) + "\"")).string?.utf8.count, 1 << 20)
        // A 1 MB string is JSON, but no header may be that large.
        XCTAssertThrowsError(try WireMessage.parse([Array("READY".utf8), Self.b("{\"v\":\(Wire.version),\"s\":\"" + String(repeating: "x", count: 1 << 20) + "\"}")][...]))
        // Integers only where a Double holds them exactly: Int64.max is not an attempt number.
        XCTAssertNil(try FastJSON.parse(Self.b(#"{"a":9223372036854775807}"#)).object?["a"]?.int)
        XCTAssertNil(try FastJSON.parse(Self.b(#"{"a":1.5}"#)).object?["a"]?.int)
    }

    /// Where Foundation's parser (this toolchain's JSONSerialization) is lenient: it accepts these
    /// non-RFC 8259 documents, which is one reason it is not the gate for peers' headers.
    static let foundationLeniencies: Set<String> = ["trailing comma in object", "trailing comma in array", "byte order mark"]

    /// Foundation's parser gives the same verdict on every other entry (depth limits aside).
    func testSameVerdictsAsFoundation() {
        var lenient = Set<String>()
        for (name, bytes) in Self.refused where !name.contains("deep") {
            if (try? JSONSerialization.jsonObject(with: Data(bytes), options: [.fragmentsAllowed])) != nil { lenient.insert(name) }
        }
        XCTAssertEqual(lenient, Self.foundationLeniencies)
        for (name, bytes) in Self.accepted {
            XCTAssertNotNil(try? JSONSerialization.jsonObject(with: Data(bytes), options: [.fragmentsAllowed]), "Foundation refuses \(name)?")
        }
    }

    func testDuplicateKeysRefused() {
        // Two readers (this one and JSONDecoder) must never see two different attempts in one header.
        XCTAssertThrowsError(try FastJSON.parse(Self.b(#"{"attempt":1,"attempt":5}"#)))
        XCTAssertThrowsError(try WireMessage.parse([Array("READY".utf8), Self.b("{\"v\":\(Wire.version),\"v\":\(Wire.version)}")][...]))
    }

    func testRandomBytesNeverCrash() {
        var rng = SplitMix64(seed: 13)
        var accepted = 0
        let alphabet = Self.b("{}[]\",:0123456789-+.eE truefalsnul\\u") + [0, 0x7F, 0x80, 0xC3, 0xA9, 0xED, 0xFF]
        for _ in 0 ..< 50_000 {
            let n = Int(rng.next() % 40)
            let bytes = (0 ..< n).map { _ in alphabet[Int(rng.next() % UInt64(alphabet.count))] }
            if (try? FastJSON.parse(bytes)) != nil {
                accepted += 1
                XCTAssertNotNil(try? JSONSerialization.jsonObject(with: Data(bytes), options: [.fragmentsAllowed]),
                                "we accept what Foundation refuses: \(String(decoding: bytes, as: UTF8.self))")
            }
        }
        XCTAssertGreaterThan(accepted, 0, "the generator produces some valid JSON")
    }

    /// Control signals are typed header fields (issue 13): the worker acts on BYE's `code`, never on its text.
    func testByeCarriesATypedCode() throws {
        let m = WireMessage(.bye, ByeHeader(code: .sweepComplete, reason: "anything at all"))
        let parsed = try WireMessage.parse(m.frames[...])
        XCTAssertEqual(parsed.fields.object?["code"]?.string, "sweep-complete")
        XCTAssertEqual(try parsed.decode(ByeHeader.self).code, .sweepComplete)
        let unknown = WireMessage(.bye, header: Self.b("{\"v\":\(Wire.version),\"code\":\"sweep complete\",\"reason\":\"x\"}"))
        XCTAssertThrowsError(try WireMessage.parse(unknown.frames[...]).decode(ByeHeader.self), "free text is no code")
    }
}

/// A small seeded generator (reproducible fuzz input).
struct SplitMix64: RandomNumberGenerator {
    var state: UInt64
    init(seed: UInt64) { state = seed }
    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}
