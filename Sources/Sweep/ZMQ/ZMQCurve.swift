import Basics
import CZeroMQ
import Foundation

/// CurveZMQ key handling: Z85 text keys (40 characters), key pairs, and the socket options.
public struct CurveKeyPair: Sendable, Equatable {
    public let publicKey: String
    public let secretKey: String

    /// The example keys printed in libzmq's documentation (zmq_curve(7)). Anyone can look them up,
    /// so a deployment using them has no security at all: we refuse them everywhere.
    public static let publishedTestKeys: Set<String> = [
        "Yne@$w-vo<fVvi]a<NY6T1ed:M$fCG*[IaLV{hID", "D:)Q[IlAW!ahhC2ac:9*A}h:p?([4%wOTJ%JR%cs",
        "rq:rM>}U?@Lns47E1%kR.o@n%FcmmsL/@{H8]yf7", "JTKVSB%%)wK0E.X)V>+}o?pNmC{O&4W4b!Ni{Lh6",
    ]

    /// A fresh key pair (never one of the published test keys) as `directory/name.pub` (public,
    /// Z85) and `name.key` (secret, mode 0600); refuses to overwrite either. Returns both paths.
    public static func writeNew(directory: String, name: String) throws -> (publicKey: String, secretKey: String) {
        let pub = directory + "/" + name + ".pub", sec = directory + "/" + name + ".key"
        for p in [pub, sec] where FileManager.default.fileExists(atPath: p) {
            throw SweepError.invalid("\(p) exists; not overwriting a key")
        }
        var keys = try generate()
        while publishedTestKeys.contains(keys.publicKey) { keys = try generate() }
        try AtomicFile.write(Data((keys.secretKey + "\n").utf8), to: sec, permissions: 0o600)
        try AtomicFile.write(Data((keys.publicKey + "\n").utf8), to: pub, permissions: 0o644)
        return (pub, sec)
    }

    public static func generate() throws -> CurveKeyPair {
        var pub = [CChar](repeating: 0, count: 41), sec = [CChar](repeating: 0, count: 41)
        guard zmq_curve_keypair(&pub, &sec) == 0 else { throw ZMQError.last("zmq_curve_keypair (libzmq built without CURVE?)") }
        return CurveKeyPair(publicKey: String(cString: pub), secretKey: String(cString: sec))
    }

    /// Derives the public key from a Z85 secret key.
    public init(secretKey: String) throws {
        try CurveKeyPair.validate(secretKey, what: "secret key")
        var pub = [CChar](repeating: 0, count: 41)
        guard zmq_curve_public(&pub, secretKey) == 0 else { throw ZMQError.last("zmq_curve_public") }
        self.init(publicKey: String(cString: pub), secretKey: secretKey)
    }

    init(publicKey: String, secretKey: String) {
        self.publicKey = publicKey
        self.secretKey = secretKey
    }

    /// A Z85 CURVE key is 40 characters; the published test keys are rejected.
    public static func validate(_ key: String, what: String) throws {
        guard key.utf8.count == 40, z85Decode(key) != nil else {
            throw SweepError.invalid("\(what) is not a 40-character Z85 CURVE key")
        }
        guard !publishedTestKeys.contains(key) else {
            throw SweepError.invalid("\(what) is one of libzmq's published test keys; run `ranksweep keygen`")
        }
    }

    /// Reads a key file: the first non-empty, non-comment line.
    public static func readKey(_ path: String, what: String) throws -> String {
        guard let text = try? String(contentsOfFile: path, encoding: .utf8) else {
            throw SweepError.invalid("\(what) file \(path) cannot be read")
        }
        guard let line = text.split(whereSeparator: \.isNewline).map({ $0.trimmingCharacters(in: .whitespaces) })
            .first(where: { !$0.isEmpty && !$0.hasPrefix("#") }) else {
            throw SweepError.invalid("\(what) file \(path) is empty")
        }
        do { try validate(line, what: "\(what) in \(path)") }
        return line
    }

    /// Z85 text -> 32 raw bytes (nil when malformed). ZAP hands us raw keys; we compare in Z85.
    public static func z85Decode(_ text: String) -> [UInt8]? {
        var out = [UInt8](repeating: 0, count: 32)
        guard text.utf8.count == 40, zmq_z85_decode(&out, text) != nil else { return nil }
        return out
    }

    public static func z85Encode(_ raw: [UInt8]) -> String? {
        guard raw.count == 32 else { return nil }
        var out = [CChar](repeating: 0, count: 41)
        guard zmq_z85_encode(&out, raw, 32) != nil else { return nil }
        return String(cString: out)
    }
}

extension ZMQSocket {
    /// Server side: must be set before bind. Clients are checked by the ZAP handler.
    public func makeCurveServer(_ keys: CurveKeyPair) throws {
        try set(ZMQ_CURVE_SERVER, Int32(1))
        try set(ZMQ_CURVE_SECRETKEY, keys.secretKey)
        // A ZAP domain makes libzmq consult the handler for every connection.
        try set(ZMQ_ZAP_DOMAIN, "ranksweep")
    }

    /// Client side: must be set before connect.
    public func makeCurveClient(_ keys: CurveKeyPair, serverPublicKey: String) throws {
        try set(ZMQ_CURVE_SERVERKEY, serverPublicKey)
        try set(ZMQ_CURVE_PUBLICKEY, keys.publicKey)
        try set(ZMQ_CURVE_SECRETKEY, keys.secretKey)
    }
}
