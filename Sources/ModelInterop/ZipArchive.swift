import Engine
import Foundation

/// Reads the members of a ZIP archive (a `.keras` file) from its central directory. Keras writes
/// its members uncompressed ("stored"); deflated members are refused with a clear error rather
/// than guessed at.
struct ZipArchive {
    struct Member {
        let name: String
        let method: UInt16
        let compressedSize: Int
        let size: Int
        let localHeaderOffset: Int
    }

    let path: String
    let data: Data
    let members: [Member]

    /// The 4 bytes a ZIP archive (its first local file header) starts with.
    static let signature: [UInt8] = [0x50, 0x4B, 0x03, 0x04]

    init(path: String, data: Data) throws {
        self.path = path
        self.data = data
        func fail(_ reason: String) -> ModelFileError { ModelFileError(path: path, reason: "not a readable ZIP archive: \(reason)") }
        let bytes = [UInt8](data)
        func u16(_ at: Int) -> Int { Int(bytes[at]) | Int(bytes[at + 1]) << 8 }
        func u32(_ at: Int) -> Int { u16(at) | u16(at + 2) << 16 }
        // The end-of-central-directory record sits in the last 22 + 65535 bytes (after the comment).
        guard bytes.count >= 22 else { throw fail("only \(bytes.count) bytes") }
        var end = -1
        for at in stride(from: bytes.count - 22, through: max(0, bytes.count - 22 - 65535), by: -1)
        where bytes[at] == 0x50 && bytes[at + 1] == 0x4B && bytes[at + 2] == 0x05 && bytes[at + 3] == 0x06 {
            end = at
            break
        }
        guard end >= 0 else { throw fail("no end of central directory (truncated?)") }
        let count = u16(end + 10)
        var at = u32(end + 16)
        var members: [Member] = []
        for _ in 0..<count {
            guard at + 46 <= bytes.count, u32(at) == 0x0201_4B50 else { throw fail("damaged central directory") }
            let nameLength = u16(at + 28), extraLength = u16(at + 30), commentLength = u16(at + 32)
            guard at + 46 + nameLength <= bytes.count else { throw fail("damaged central directory") }
            let member = Member(name: String(decoding: bytes[(at + 46)..<(at + 46 + nameLength)], as: UTF8.self),
                                method: UInt16(u16(at + 10)), compressedSize: u32(at + 20), size: u32(at + 24),
                                localHeaderOffset: u32(at + 42))
            members.append(member)
            at += 46 + nameLength + extraLength + commentLength
        }
        self.members = members
    }

    /// The bytes of the member called `name`, or nil when the archive has none.
    func contents(of name: String) throws -> Data? {
        guard let m = members.first(where: { $0.name == name }) else { return nil }
        func fail(_ reason: String) -> ModelFileError { ModelFileError(path: path, reason: "member \(name): \(reason)") }
        guard m.method == 0 else {
            throw fail("compressed with ZIP method \(m.method); only stored (uncompressed) members, as Keras writes them, are read")
        }
        let header = m.localHeaderOffset
        guard header + 30 <= data.count else { throw fail("local header outside the file") }
        let bytes = data[(data.startIndex + header)..<(data.startIndex + header + 30)].map { $0 }
        guard bytes[0] == 0x50, bytes[1] == 0x4B, bytes[2] == 0x03, bytes[3] == 0x04 else { throw fail("damaged local header") }
        let start = header + 30 + (Int(bytes[26]) | Int(bytes[27]) << 8) + (Int(bytes[28]) | Int(bytes[29]) << 8)
        guard m.size == m.compressedSize, start + m.size <= data.count else { throw fail("data outside the file (truncated?)") }
        return data.subdata(in: (data.startIndex + start)..<(data.startIndex + start + m.size))
    }
}
