/// A small, strict JSON reader/writer for message headers. Foundation's JSONEncoder/JSONDecoder
/// cost tens of microseconds per call on Linux, which made them the coordinator's main cost at
/// 10,000 jobs/s. The reader accepts exactly RFC 8259 JSON (checked against a corpus and against
/// Foundation's JSONSerialization in WireCodecTests): no leading zeros or `+`, no NaN/Infinity,
/// no trailing commas, valid UTF-8 only, escaped surrogates only in pairs, no raw control
/// characters. Beyond the grammar it refuses, as RFC 8259 lets a parser do: nesting deeper than
/// 32, numbers outside Double's finite range, and duplicate keys in an object (two readers of
/// one header must never see two different values).
enum FastJSON {
    enum Value {
        case number(Double), string(String), bool(Bool), null, array([Value]), object([String: Value])
        /// Integers exactly representable in a Double; anything else is not an int.
        var int: Int? { if case .number(let d) = self, d == d.rounded(), abs(d) < 9e15 { return Int(d) }; return nil }
        var double: Double? { if case .number(let d) = self { return d }; return nil }
        var string: String? { if case .string(let s) = self { return s }; return nil }
        var bool: Bool? { if case .bool(let b) = self { return b }; return nil }
        var object: [String: Value]? { if case .object(let o) = self { return o }; return nil }
        var array: [Value]? { if case .array(let a) = self { return a }; return nil }
    }

    struct Failure: Error {}

    static let maxDepth = 32

    /// Parses a whole JSON document.
    static func parse(_ bytes: [UInt8]) throws -> Value {
        try bytes.withUnsafeBufferPointer { buf in
            var p = Parser(b: buf, i: 0)
            let v = try p.value(depth: 0)
            p.skip()
            guard p.i == buf.count else { throw Failure() }
            return v
        }
    }

    struct Parser {
        let b: UnsafeBufferPointer<UInt8>
        var i: Int

        mutating func skip() { while i < b.count, b[i] == 32 || b[i] == 10 || b[i] == 13 || b[i] == 9 { i += 1 } }

        func isDigit(_ k: Int) -> Bool { k < b.count && b[k] >= 48 && b[k] <= 57 }

        mutating func value(depth: Int) throws -> Value {
            guard depth < FastJSON.maxDepth else { throw Failure() }
            skip()
            guard i < b.count else { throw Failure() }
            switch b[i] {
            case UInt8(ascii: "{"):
                i += 1
                var o: [String: Value] = [:]
                skip()
                if i < b.count, b[i] == UInt8(ascii: "}") { i += 1; return .object(o) }
                while true {
                    skip()
                    guard i < b.count, b[i] == UInt8(ascii: "\"") else { throw Failure() }
                    let k = try string()
                    skip()
                    guard i < b.count, b[i] == UInt8(ascii: ":") else { throw Failure() }
                    i += 1
                    let v = try value(depth: depth + 1)
                    guard o.updateValue(v, forKey: k) == nil else { throw Failure() }
                    skip()
                    guard i < b.count else { throw Failure() }
                    if b[i] == UInt8(ascii: ",") { i += 1; continue }
                    if b[i] == UInt8(ascii: "}") { i += 1; return .object(o) }
                    throw Failure()
                }
            case UInt8(ascii: "["):
                i += 1
                var a: [Value] = []
                skip()
                if i < b.count, b[i] == UInt8(ascii: "]") { i += 1; return .array(a) }
                while true {
                    a.append(try value(depth: depth + 1))
                    skip()
                    guard i < b.count else { throw Failure() }
                    if b[i] == UInt8(ascii: ",") { i += 1; continue }
                    if b[i] == UInt8(ascii: "]") { i += 1; return .array(a) }
                    throw Failure()
                }
            case UInt8(ascii: "\""): return .string(try string())
            case UInt8(ascii: "t"): try literal("true"); return .bool(true)
            case UInt8(ascii: "f"): try literal("false"); return .bool(false)
            case UInt8(ascii: "n"): try literal("null"); return .null
            default: return .number(try number())
            }
        }

        mutating func literal(_ s: StaticString) throws {
            let n = s.utf8CodeUnitCount
            guard i + n <= b.count else { throw Failure() }
            for k in 0 ..< n where b[i + k] != s.utf8Start[k] { throw Failure() }
            i += n
        }

        /// `-? (0 | [1-9][0-9]*) (. [0-9]+)? ([eE] [+-]? [0-9]+)?`, finite as a Double.
        mutating func number() throws -> Double {
            let start = i
            if i < b.count, b[i] == UInt8(ascii: "-") { i += 1 }
            guard isDigit(i) else { throw Failure() }
            if b[i] == UInt8(ascii: "0") { i += 1 } else { while isDigit(i) { i += 1 } }
            if i < b.count, b[i] == UInt8(ascii: ".") {
                i += 1
                guard isDigit(i) else { throw Failure() }
                while isDigit(i) { i += 1 }
            }
            if i < b.count, b[i] == UInt8(ascii: "e") || b[i] == UInt8(ascii: "E") {
                i += 1
                if i < b.count, b[i] == UInt8(ascii: "+") || b[i] == UInt8(ascii: "-") { i += 1 }
                guard isDigit(i) else { throw Failure() }
                while isDigit(i) { i += 1 }
            }
            guard i - start <= 64, let d = Double(String(decoding: UnsafeBufferPointer(rebasing: b[start ..< i]), as: UTF8.self)),
                  d.isFinite else { throw Failure() }
            return d
        }

        static func hexValue(_ c: UInt8) -> UInt32? {
            switch c {
            case 48 ... 57: return UInt32(c - 48)
            case 65 ... 70: return UInt32(c - 55)
            case 97 ... 102: return UInt32(c - 87)
            default: return nil
            }
        }

        /// Four hex digits after `\u`.
        mutating func hex4() throws -> UInt32 {
            guard i + 4 <= b.count else { throw Failure() }
            var u: UInt32 = 0
            for k in 0 ..< 4 {
                guard let h = Parser.hexValue(b[i + k]) else { throw Failure() }
                u = u << 4 | h
            }
            i += 4
            return u
        }

        mutating func string() throws -> String {
            i += 1  // opening quote
            let start = i
            // Fast path: no escapes. Raw bytes below 0x20 are refused; UTF-8 is validated below.
            while i < b.count, b[i] != UInt8(ascii: "\""), b[i] != UInt8(ascii: "\\") {
                guard b[i] >= 32 else { throw Failure() }
                i += 1
            }
            guard i < b.count else { throw Failure() }
            if b[i] == UInt8(ascii: "\"") {
                defer { i += 1 }
                guard let s = String(validating: UnsafeBufferPointer(rebasing: b[start ..< i]), as: UTF8.self) else { throw Failure() }
                return s
            }
            var out = Array(UnsafeBufferPointer(rebasing: b[start ..< i]))
            while true {
                guard i < b.count else { throw Failure() }
                let c = b[i]
                if c == UInt8(ascii: "\"") { i += 1; break }
                if c != UInt8(ascii: "\\") {
                    guard c >= 32 else { throw Failure() }
                    out.append(c); i += 1; continue
                }
                guard i + 1 < b.count else { throw Failure() }
                let e = b[i + 1]
                i += 2
                switch e {
                case UInt8(ascii: "\""), UInt8(ascii: "\\"), UInt8(ascii: "/"): out.append(e)
                case UInt8(ascii: "n"): out.append(10)
                case UInt8(ascii: "t"): out.append(9)
                case UInt8(ascii: "r"): out.append(13)
                case UInt8(ascii: "b"): out.append(8)
                case UInt8(ascii: "f"): out.append(12)
                case UInt8(ascii: "u"):
                    var u = try hex4()
                    if u >= 0xDC00 && u <= 0xDFFF { throw Failure() }  // a low surrogate first
                    if u >= 0xD800 && u <= 0xDBFF {
                        // A high surrogate must be followed by an escaped low one.
                        guard i + 2 <= b.count, b[i] == UInt8(ascii: "\\"), b[i + 1] == UInt8(ascii: "u") else { throw Failure() }
                        i += 2
                        let low = try hex4()
                        guard low >= 0xDC00 && low <= 0xDFFF else { throw Failure() }
                        u = 0x10000 + ((u - 0xD800) << 10) + (low - 0xDC00)
                    }
                    guard let scalar = UnicodeScalar(u) else { throw Failure() }
                    out.append(contentsOf: Array(String(Character(scalar)).utf8))
                default: throw Failure()
                }
            }
            guard let s = String(validating: out, as: UTF8.self) else { throw Failure() }
            return s
        }
    }

    // MARK: writing

    /// Appends `s` as a JSON string literal.
    static func appendString(_ s: String, to out: inout [UInt8]) {
        out.append(UInt8(ascii: "\""))
        for c in s.utf8 {
            switch c {
            case UInt8(ascii: "\""): out.append(contentsOf: [92, 34])
            case UInt8(ascii: "\\"): out.append(contentsOf: [92, 92])
            case 0 ..< 32:
                let hex = Array("0123456789abcdef".utf8)
                out.append(contentsOf: [92, UInt8(ascii: "u"), 48, 48, hex[Int(c >> 4)], hex[Int(c & 15)]])
            default: out.append(c)
            }
        }
        out.append(UInt8(ascii: "\""))
    }

    static func appendKey(_ k: StaticString, to out: inout [UInt8]) {
        if out.count > 1 { out.append(UInt8(ascii: ",")) }
        out.append(UInt8(ascii: "\""))
        out.append(contentsOf: UnsafeBufferPointer(start: k.utf8Start, count: k.utf8CodeUnitCount))
        out.append(contentsOf: [UInt8(ascii: "\""), UInt8(ascii: ":")])
    }

    static func appendInt(_ v: Int, to out: inout [UInt8]) { out.append(contentsOf: Array(String(v).utf8)) }

    static func appendDouble(_ v: Double, to out: inout [UInt8]) {
        out.append(contentsOf: Array((v.isFinite ? "\(v)" : "0").utf8))
    }
}

/// Hand-written wire forms of the hot headers (same JSON the Codable versions produce/accept).
extension WireMessage {
    static func fastHeader(_ body: (inout [UInt8]) -> Void) -> [UInt8] {
        var out: [UInt8] = [UInt8(ascii: "{")]
        FastJSON.appendKey("v", to: &out)
        FastJSON.appendInt(Wire.version, to: &out)
        body(&out)
        out.append(UInt8(ascii: "}"))
        return out
    }

    static func job(_ h: JobHeader, spec: [UInt8]) -> WireMessage {
        if !h.inputs.isEmpty || h.checkpointSeconds != nil { return WireMessage(.job, h, payload: [spec]) }
        return WireMessage(.job, header: fastHeader { o in
            FastJSON.appendKey("job", to: &o); FastJSON.appendString(h.job, to: &o)
            FastJSON.appendKey("attempt", to: &o); FastJSON.appendInt(h.attempt, to: &o)
            FastJSON.appendKey("kind", to: &o); FastJSON.appendString(h.kind, to: &o)
            FastJSON.appendKey("inputs", to: &o); o.append(contentsOf: [UInt8(ascii: "["), UInt8(ascii: "]")])
        }, payload: [spec])
    }

    static func ack(_ refs: [JobRef]) -> WireMessage {
        WireMessage(.ack, header: fastHeader { o in
            FastJSON.appendKey("jobs", to: &o)
            o.append(UInt8(ascii: "["))
            for (n, r) in refs.enumerated() {
                if n > 0 { o.append(UInt8(ascii: ",")) }
                o.append(contentsOf: Array("{\"job\":".utf8)); FastJSON.appendString(r.job, to: &o)
                o.append(contentsOf: Array(",\"attempt\":".utf8)); FastJSON.appendInt(r.attempt, to: &o)
                o.append(UInt8(ascii: "}"))
            }
            o.append(UInt8(ascii: "]"))
        })
    }

    static func done(_ h: DoneHeader, result: [UInt8]) -> WireMessage {
        WireMessage(.done, header: fastHeader { o in
            FastJSON.appendKey("job", to: &o); FastJSON.appendString(h.job, to: &o)
            FastJSON.appendKey("attempt", to: &o); FastJSON.appendInt(h.attempt, to: &o)
            FastJSON.appendKey("seconds", to: &o); FastJSON.appendDouble(h.seconds, to: &o)
            FastJSON.appendKey("artifacts", to: &o)
            o.append(UInt8(ascii: "{"))
            for (n, (k, v)) in h.artifacts.sorted(by: { $0.key < $1.key }).enumerated() {
                if n > 0 { o.append(UInt8(ascii: ",")) }
                FastJSON.appendString(k, to: &o); o.append(UInt8(ascii: ":")); FastJSON.appendString(v, to: &o)
            }
            o.append(UInt8(ascii: "}"))
        }, payload: [result])
    }

    static let emptyHeader: [UInt8] = fastHeader { _ in }
}

/// Fast decoders of the hot headers from a parsed object.
extension FastJSON.Value {
    func decodeJob() throws -> JobHeader {
        guard let o = object, let job = o["job"]?.string, let attempt = o["attempt"]?.int, let kind = o["kind"]?.string,
              let inputs = o["inputs"]?.array else { throw SweepError.protocolViolation("JOB header is not valid") }
        var refs: [InputRef] = []
        for i in inputs {
            guard let io = i.object, let name = io["name"]?.string, let hash = io["hash"]?.string, let size = io["size"]?.int,
                  let unpack = io["unpack"]?.bool else { throw SweepError.protocolViolation("JOB input is not valid") }
            refs.append(InputRef(name: name, hash: hash, size: Int64(size), unpack: unpack))
        }
        var h = JobHeader(job: job, attempt: attempt, kind: kind, inputs: refs)
        if let c = o["checkpointSeconds"] {
            guard let seconds = c.double, seconds >= 0, seconds.isFinite else { throw SweepError.protocolViolation("JOB checkpointSeconds is not valid") }
            h.checkpointSeconds = seconds
        }
        return h
    }

    func decodeDone() throws -> DoneHeader {
        guard let o = object, let job = o["job"]?.string, let attempt = o["attempt"]?.int, let seconds = o["seconds"]?.double,
              let arts = o["artifacts"]?.object else { throw SweepError.protocolViolation("DONE header is not valid") }
        var map: [String: String] = [:]
        for (k, v) in arts {
            guard let s = v.string else { throw SweepError.protocolViolation("DONE artifacts are not valid") }
            map[k] = s
        }
        return DoneHeader(job: job, attempt: attempt, artifacts: map, seconds: seconds)
    }

    func decodeAck() throws -> [JobRef] {
        guard let o = object, let jobs = o["jobs"]?.array else { throw SweepError.protocolViolation("ACK header is not valid") }
        return try jobs.map {
            guard let r = $0.object, let j = r["job"]?.string, let a = r["attempt"]?.int else { throw SweepError.protocolViolation("ACK entry is not valid") }
            return JobRef(job: j, attempt: a)
        }
    }
}
