import Foundation

/// File helpers: nothing is ever half written (temp file in the same directory, then rename).
public enum Files {
    public static func writeAtomically(_ data: Data, to path: String, permissions: Int? = nil) throws {
        let url = URL(fileURLWithPath: path)
        let dir = url.deletingLastPathComponent().path
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        let tmp = dir + "/.tmp-\(getpid())-\(UInt32.random(in: 0 ... .max))-" + url.lastPathComponent
        guard FileManager.default.createFile(atPath: tmp, contents: data,
                                             attributes: permissions.map { [.posixPermissions: $0] }) else {
            throw SweepError.io("cannot write \(tmp)")
        }
        guard rename(tmp, path) == 0 else {
            unlink(tmp)
            throw SweepError.io("cannot rename \(tmp) to \(path): \(String(cString: strerror(errno)))")
        }
    }

    public static func makeDirectory(_ path: String) throws {
        do { try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true) } catch {
            throw SweepError.io("cannot create directory \(path): \(error.localizedDescription)")
        }
    }

    public static func exists(_ path: String) -> Bool { FileManager.default.fileExists(atPath: path) }

    public static func isDirectory(_ path: String) -> Bool {
        var isDir: ObjCBool = false
        return FileManager.default.fileExists(atPath: path, isDirectory: &isDir) && isDir.boolValue
    }
}
