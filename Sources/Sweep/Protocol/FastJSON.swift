/// A small JSON reader/writer for the hot message headers (JOB, DONE, ACK, HEARTBEAT, READY).
/// Foundation's JSONEncoder/JSONDecoder cost tens of microseconds per call on Linux, which made
/// them the coordinator's main cost at 10,000 jobs/s; this handles the headers' flat shapes only.
enum FastJSON {
    enum Value {
        case number(Double), string(String), bool(Bool), null, array([Value]), object([String: Value])
        var int: Int? { if case .number(let d) = self, d == d.rounded(), abs(d) < 9e15 { return Int(d) }; return nil }
        var double: Double? { if case .number(let d) = self { return d }; return nil }
        var string: String? { if case .string(let s) = self { return s }; return nil }
        var bool: Bool? { if case .bool(let b) = self { return b }; return nil }
        var object: [String: Value]? { if case .object(let o) = self { return o }; return nil }
        var array: [Value]? { if case .array(let a) = self { return a }; return nil }
    }

    struct Failure: Error {}

    /// Parses a whole JSON document (nesting limited to 32 levels).
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

        mutating func value(depth: Int) throws -> Value {
            guard depth < 32 else { throw Failure() }
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
                    o[k] = try value(depth: depth + 1)
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

        mutating func number() throws -> Double {
            let start = i
            while i < b.count, (b[i] >= 48 && b[i] <= 57) || b[i] == 45 || b[i] == 43 || b[i] == 46 || b[i] == 101 || b[i] == 69 { i += 1 }
            guard i > start, let d = Double(String(decoding: UnsafeBufferPointer(rebasing: b[start ..< i]), as: UTF8.self)) else { throw Failure() }
            return d
        }

        mutating func string() throws -> String {
            i += 1  // opening quote
            let start = i
            var simple = true
            while i < b.count, b[i] != UInt8(ascii: "\"") {
                if b[i] == UInt8(ascii: "\\") { simple = false; i += 2 } else {
                    if b[i] < 32 { throw Failure() }
                    i += 1
                }
            }
            guard i < b.count else { throw Failure() }
            defer { i += 1 }
            let raw = UnsafeBufferPointer(rebasing: b[start ..< i])
            if simple { return String(decoding: raw, as: UTF8.self) }
            var out: [UInt8] = []
            var k = 0
            while k < raw.count {
                let c = raw[k]
                if c != UInt8(ascii: "\\") { out.append(c); k += 1; continue }
                guard k + 1 < raw.count else { throw Failure() }
                let e = raw[k + 1]
                k += 2
                switch e {
                case UInt8(ascii: "n"): out.append(10)
                case UInt8(ascii: "t"): out.append(9)
                case UInt8(ascii: "r"): out.append(13)
                case UInt8(ascii: "b"): out.append(8)
                case UInt8(ascii: "f"): out.append(12)
                case UInt8(ascii: "u"):
                    guard k + 4 <= raw.count, let u = UInt32(String(decoding: UnsafeBufferPointer(rebasing: raw[k ..< k + 4]), as: UTF8.self), radix: 16) else { throw Failure() }
                    k += 4
                    out.append(contentsOf: Array(String(UnicodeScalar(u) ?? "?").utf8))
                default: out.append(e)
                }
            }
            return String(decoding: out, as: UTF8.self)
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
        if !h.inputs.isEmpty { return WireMessage(.job, h, payload: [spec]) }
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
        return JobHeader(job: job, attempt: attempt, kind: kind, inputs: refs)
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
