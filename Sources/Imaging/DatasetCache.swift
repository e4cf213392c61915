import Basics
import CSodium
import Engine
import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// A decoded, resized dataset held once per host: one file per (dataset content, preprocessing),
/// memory-mapped read-only by every job that loads it, so a dataset's pixels count once in the
/// page cache instead of once per process heap.
///
/// - Key: SHA-256 over the format version, the image size and channels, every `DatasetOptions`
///   field, and each pair in split order with its file names and the hash of each file's bytes.
///   Any change of content, size, channels, threshold, layout options or split is another file.
/// - Build: under an exclusive `flock` on `KEY.lock`; whoever gets the lock first decodes and
///   writes `KEY.rsds` beside it through a temporary name and `rename(2)`; the others wait, then
///   find it valid and map it. Two jobs starting together decode once.
/// - Open: header magic, key, lengths and a SHA-256 of everything after the header are checked
///   before a byte is used; a corrupt, truncated or foreign file is logged and rebuilt.
/// - Bound: every open touches the file's time; after a build, files idle for `maxIdleDays` go, and
///   then the least recently used until the folder holds at most `maxBytes` (see docs/SCALE.md).
public enum DatasetCache {
    /// Bumped whenever the file layout or what a sample holds changes: old files then miss.
    public static let formatVersion: UInt32 = 1
    static let magic: [UInt8] = Array("RSDSCACH".utf8)
    static let headerBytes = 4096
    public static let fileExtension = "rsds"
    /// Cache files not opened for this long are removed by the next build.
    public static let maxIdleDays = 14.0

    /// Where the cache lives, from `RANKSWEEP_DATASET_CACHE`: unset or empty means
    /// `$XDG_CACHE_HOME/ranksweep/datasets` (else `~/.cache/ranksweep/datasets`), one per host
    /// and user; `off` turns caching off (nil); anything else must be an absolute folder.
    public static func directory(environment: [String: String] = ProcessInfo.processInfo.environment) throws -> String? {
        let value = environment["RANKSWEEP_DATASET_CACHE"] ?? ""
        if value.isEmpty { return SyntheticDataset.cacheDirectory(environment: environment) + "/datasets" }
        if value == "off" { return nil }
        guard value.hasPrefix("/") else {
            throw FileError("RANKSWEEP_DATASET_CACHE must be an absolute folder or 'off', got '\(value)'")
        }
        return value
    }

    /// At most this many bytes of cache files are kept (`RANKSWEEP_DATASET_CACHE_MAX_GB`, default 32).
    public static func maxBytes(environment: [String: String] = ProcessInfo.processInfo.environment) -> Int {
        let gb = environment["RANKSWEEP_DATASET_CACHE_MAX_GB"].flatMap(Double.init).flatMap { $0 > 0 && $0 < 1e6 ? $0 : nil } ?? 32
        return Int(gb * 1_073_741_824)
    }

    /// How a load went: from a valid file, or decoded and written now.
    public enum Outcome: Equatable, Sendable {
        case opened
        /// `reason`: no file yet, or why the file there was not used.
        case built(reason: String)
    }

    /// Scans `root`, then maps its cache file in `directory` (building it first if it is missing
    /// or invalid). The samples' bytes live in the mapping; float planes (16-bit or resized
    /// images) are copied out of it.
    public static func load(root: String, size: Int, channels: Int, fractions: SplitFractions = .standard, seed: UInt64 = 42,
                            options: DatasetOptions = DatasetOptions(), directory: String) throws -> (dataset: LoadedDataset, outcome: Outcome, path: String) {
        precondition(size > 0 && (channels == 1 || channels == 3), "DatasetCache.load: size \(size), channels \(channels)")
        let index = try DatasetLoader.scan(root: root, fractions: fractions, seed: seed, options: options)
        let key = try self.key(index, size: size, channels: channels)
        try AtomicFile.makeDirectory(directory)
        let path = directory + "/" + key.hex + "." + fileExtension

        // Fast path without the lock: a valid file is immutable once renamed into place.
        if case .success(let dataset) = open(path, key: key, index: index) { return (dataset, .opened, path) }

        let lockPath = directory + "/" + key.hex + ".lock"
        let lock = Glibc.open(lockPath, O_RDWR | O_CREAT | O_CLOEXEC, 0o644)
        guard lock >= 0 else { throw FileError("\(lockPath): cannot open the dataset cache's lock (\(String(cString: strerror(errno))))") }
        defer { close(lock) }
        while flock(lock, LOCK_EX) != 0 {
            guard errno == EINTR else { throw FileError("\(lockPath): cannot lock (\(String(cString: strerror(errno))))") }
        }
        defer { flock(lock, LOCK_UN) }
        var reason = "no cache file yet"
        switch open(path, key: key, index: index) {
        case .success(let dataset): return (dataset, .opened, path)   // built by whoever held the lock before us
        case .failure(let problem):
            if problem != .missing {
                reason = problem.description
                Log.warn("\(path): dataset cache not used (\(problem.description)); rebuilding it")
            }
        }
        Log.info("\(index.root): decoding \(index.pairs.count) pairs at \(size)x\(size) into the dataset cache \(path)")
        // The heap copy is gone before the file is mapped: a build peaks at one copy, not two.
        try {
            let decoded = try DatasetLoader.decode(index, size: size, channels: channels)
            try write(decoded, key: key, to: path)
        }()
        prune(directory, keeping: path)
        switch open(path, key: key, index: index) {
        case .success(let dataset): return (dataset, .built(reason: reason), path)
        case .failure(let problem): throw FileError("\(path): the dataset cache just written does not verify (\(problem.description))")
        }
    }

    // MARK: - Key

    struct Key: Equatable {
        let bytes: [UInt8]
        var hex: String { bytes.map { String(format: "%02x", $0) }.joined() }
    }

    /// The content-and-options key of `index` decoded at `size` x `size` with `channels`.
    static func key(_ index: DatasetIndex, size: Int, channels: Int) throws -> Key {
        var h = ContentHash()
        h.update("ranksweep dataset cache v\(formatVersion)\nsize \(size)\nchannels \(channels)\n")
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys]
        h.update(String(decoding: try encoder.encode(index.options), as: UTF8.self) + "\n")
        for (part, pairs) in [("train", index.train), ("val", index.val), ("test", index.test)] {
            for pair in pairs {
                h.update("\(part)\t\(pair.name)\t\(pair.image)\t\(pair.masks.joined(separator: "\t"))\n")
                for file in [pair.image] + pair.masks {
                    h.update(try ContentHash.file(index.root + "/" + file))
                }
            }
        }
        return Key(bytes: h.finish())
    }

    // MARK: - File

    /// What the file holds besides the pixels: each sample's planes, and the decoding warnings.
    struct Metadata: Codable {
        struct Plane: Codable {
            var shape: [Int]
            /// "u8" (value k is k/255) or "f32" (little-endian Float32).
            var kind: String
            /// Byte offset in the data section.
            var offset: Int
        }
        struct Sample: Codable { var name: String; var image: Plane; var mask: Plane }
        var samples: [Sample]
        var decodeWarnings: [String]
    }

    /// Writes `dataset` to a temporary file beside `path`, then renames it over `path`.
    static func write(_ dataset: LoadedDataset, key: Key, to path: String) throws {
        let samples = dataset.train + dataset.val + dataset.test
        var offset = 0
        func plane(_ p: SamplePixels) -> Metadata.Plane {
            let here = offset
            offset += (p.storedBytes + 63) / 64 * 64
            return Metadata.Plane(shape: p.shape, kind: p.isCompact ? "u8" : "f32", offset: here)
        }
        let meta = Metadata(samples: samples.map { Metadata.Sample(name: $0.name, image: plane($0.imagePixels), mask: plane($0.maskPixels)) },
                            decodeWarnings: Array(dataset.warnings.dropFirst(dataset.index.warnings.count)))
        let metaBytes = [UInt8](try JSONEncoder().encode(meta))
        let dataStart = alignedDataStart(metadataLength: metaBytes.count)
        let dataLength = offset

        let tmp = AtomicFile.temporaryPath(beside: path)
        let fd = Glibc.open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0o644)
        guard fd >= 0 else { throw FileError("\(tmp): cannot write the dataset cache (\(String(cString: strerror(errno))))") }
        var ok = false
        defer { close(fd); if !ok { unlink(tmp) } }
        var hash = ContentHash()
        var position = 0
        func put(_ bytes: UnsafeRawBufferPointer, hashed: Bool = true) throws {
            if hashed { hash.update(bytes) }
            var done = 0
            while done < bytes.count {
                let n = Glibc.write(fd, bytes.baseAddress! + done, bytes.count - done)
                if n < 0 && errno == EINTR { continue }
                guard n > 0 else { throw FileError("\(tmp): cannot write the dataset cache (\(String(cString: strerror(errno))))") }
                done += n
            }
            position += bytes.count
        }
        func pad(to target: Int) throws {
            let zeros = [UInt8](repeating: 0, count: target - position)
            try zeros.withUnsafeBytes { try put($0) }
        }
        // The header is written last (it holds the hash); its space first.
        guard lseek(fd, off_t(headerBytes), SEEK_SET) == off_t(headerBytes) else { throw FileError("\(tmp): cannot seek") }
        position = headerBytes
        try metaBytes.withUnsafeBytes { try put($0) }
        try pad(to: dataStart)
        for s in samples {
            for p in [s.imagePixels, s.maskPixels] {
                if p.isCompact {
                    _ = try p.withBytes { try put($0) }
                } else {
                    try p.tensor.storage.withUnsafeBytes { try put($0) }   // little-endian hosts only (Linux x86-64/arm64)
                }
                try pad(to: (position - dataStart + 63) / 64 * 64 + dataStart)
            }
        }
        precondition(position - dataStart == dataLength, "DatasetCache.write: wrote \(position - dataStart) data bytes, planned \(dataLength)")
        var header = magic
        header += le(formatVersion)
        header += key.bytes
        header += le(UInt64(metaBytes.count)) + le(UInt64(dataLength))
        header += hash.finish()
        header += [UInt8](repeating: 0, count: headerBytes - header.count)
        guard lseek(fd, 0, SEEK_SET) == 0 else { throw FileError("\(tmp): cannot seek") }
        position = 0
        try header.withUnsafeBytes { try put($0, hashed: false) }
        guard fsync(fd) == 0 else { throw FileError("\(tmp): cannot sync (\(String(cString: strerror(errno))))") }
        try AtomicFile.commit(tmp, to: path)
        ok = true
    }

    static func alignedDataStart(metadataLength: Int) -> Int {
        let page = 4096
        return (headerBytes + metadataLength + page - 1) / page * page
    }

    static func le<T: FixedWidthInteger>(_ v: T) -> [UInt8] { withUnsafeBytes(of: v.littleEndian) { Array($0) } }

    /// Why a cache file was not used.
    enum Problem: Error, Equatable, CustomStringConvertible {
        case missing
        case invalid(String)
        var description: String {
            switch self {
            case .missing: return "no cache file"
            case .invalid(let why): return why
            }
        }
    }

    /// Maps and verifies `path`; the samples view the mapping.
    static func open(_ path: String, key: Key, index: DatasetIndex) -> Result<LoadedDataset, Problem> {
        let fd = Glibc.open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { return .failure(errno == ENOENT ? .missing : .invalid("cannot open: \(String(cString: strerror(errno)))")) }
        defer { close(fd) }
        var st = stat()
        guard fstat(fd, &st) == 0 else { return .failure(.invalid("cannot stat")) }
        let fileSize = Int(st.st_size)
        guard fileSize >= headerBytes else { return .failure(.invalid("truncated: \(fileSize) bytes, less than its header")) }
        guard let mapping = MappedFile(fd: fd, length: fileSize) else { return .failure(.invalid("cannot map: \(String(cString: strerror(errno)))")) }
        let bytes = UnsafeRawBufferPointer(start: mapping.base, count: fileSize)

        guard Array(bytes[0..<8]) == magic else { return .failure(.invalid("not a ranksweep dataset cache (bad magic)")) }
        let version = bytes.loadUnaligned(fromByteOffset: 8, as: UInt32.self).littleEndian
        guard version == formatVersion else { return .failure(.invalid("format version \(version), expected \(formatVersion)")) }
        guard Array(bytes[12..<44]) == key.bytes else { return .failure(.invalid("it belongs to other data or options (key differs)")) }
        let metaLength = Int(bytes.loadUnaligned(fromByteOffset: 44, as: UInt64.self).littleEndian)
        let dataLength = Int(bytes.loadUnaligned(fromByteOffset: 52, as: UInt64.self).littleEndian)
        guard metaLength >= 0, dataLength >= 0, metaLength < fileSize, dataLength <= fileSize else {
            return .failure(.invalid("lengths \(metaLength)/\(dataLength) do not fit a file of \(fileSize) bytes"))
        }
        let dataStart = alignedDataStart(metadataLength: metaLength)
        guard dataStart + dataLength == fileSize else {
            return .failure(.invalid("\(fileSize) bytes where the header promises \(dataStart + dataLength) (truncated or extended)"))
        }
        // The check reads every page; each 64 MiB leaves this job's RSS once hashed (the page
        // cache keeps it), so opening never holds the whole file resident.
        var h = ContentHash()
        var at = headerBytes
        while at < fileSize {
            let end = min(fileSize, at + (64 << 20))
            h.update(UnsafeRawBufferPointer(rebasing: bytes[at..<end]))
            mapping.evict(offset: at, count: end - at)
            at = end
        }
        guard h.finish() == Array(bytes[60..<92]) else { return .failure(.invalid("content hash mismatch (corrupt)")) }
        guard let meta = try? JSONDecoder().decode(Metadata.self, from: Data(bytes[headerBytes..<(headerBytes + metaLength)])) else {
            return .failure(.invalid("unreadable sample table"))
        }
        let pairs = index.pairs
        guard meta.samples.count == pairs.count, zip(meta.samples, pairs).allSatisfy({ $0.name == $1.name }) else {
            return .failure(.invalid("its samples are not the dataset's"))
        }
        let region = PixelRegion(base: mapping.base + dataStart, count: dataLength, owner: mapping)
        func pixels(_ p: Metadata.Plane) -> SamplePixels? {
            guard p.shape.count == 3, p.shape.allSatisfy({ $0 > 0 && $0 <= 1 << 16 }) else { return nil }
            let n = p.shape.reduce(1, *)
            let width = p.kind == "u8" ? 1 : p.kind == "f32" ? 4 : 0
            guard width > 0, p.offset >= 0, p.offset % 64 == 0, p.offset <= dataLength - n * width else { return nil }
            if width == 1 { return .bytes(shape: p.shape, region: region, offset: p.offset) }
            let floats = [Float](unsafeUninitializedCapacity: n) { buffer, initialised in
                UnsafeMutableRawBufferPointer(buffer).copyMemory(from: UnsafeRawBufferPointer(start: region.base + p.offset, count: n * 4))
                initialised = n
            }
            return .floats(Tensor(shape: p.shape, storage: floats))
        }
        var samples: [SegmentationSample] = []
        samples.reserveCapacity(pairs.count)
        for s in meta.samples {
            guard let image = pixels(s.image), let mask = pixels(s.mask),
                  image.shape[0] == mask.shape[0], image.shape[1] == mask.shape[1], mask.shape[2] == 1,
                  image.shape[2] == 1 || image.shape[2] == 3 else {
                return .failure(.invalid("sample \(s.name)'s planes do not fit the file"))
            }
            samples.append(SegmentationSample(name: s.name, imagePixels: image, maskPixels: mask))
        }
        _ = futimens(fd, nil)   // the least-recently-used bound goes by this time
        let t = index.train.count, v = index.val.count
        return .success(LoadedDataset(index: index, train: Array(samples[0..<t]), val: Array(samples[t..<(t + v)]),
                                      test: Array(samples[(t + v)...]), warnings: index.warnings + meta.decodeWarnings))
    }

    /// Removes cache files idle for `maxIdleDays`, then the least recently used until the folder
    /// holds at most `maxBytes`; never `keeping`. A file mapped by a running job stays readable
    /// to it after removal (Linux keeps unlinked mappings).
    static func prune(_ directory: String, keeping: String, maxBytes: Int = maxBytes()) {
        guard let names = try? FileManager.default.contentsOfDirectory(atPath: directory) else { return }
        var files: [(path: String, size: Int, time: Double)] = []
        for name in names where name.hasSuffix("." + fileExtension) {
            let path = directory + "/" + name
            var st = stat()
            guard stat(path, &st) == 0 else { continue }
            files.append((path, Int(st.st_size), Double(st.st_mtim.tv_sec)))
        }
        let now = Date().timeIntervalSince1970
        var total = files.reduce(0) { $0 + $1.size }
        for f in files.sorted(by: { $0.time < $1.time }) where f.path != keeping {
            guard now - f.time > maxIdleDays * 86_400 || total > maxBytes else { continue }
            if unlink(f.path) == 0 {
                total -= f.size
                Log.info("\(f.path): removed from the dataset cache (\(f.size) bytes, idle \(Int((now - f.time) / 86_400)) days)")
            }
            unlink(String(f.path.dropLast(fileExtension.count)) + "lock")
        }
    }
}

/// A read-only shared mapping of a whole file, unmapped when the last sample viewing it goes.
final class MappedFile: @unchecked Sendable {
    let base: UnsafeRawPointer
    let length: Int

    init?(fd: Int32, length: Int) {
        guard let p = mmap(nil, length, PROT_READ, MAP_SHARED, fd, 0), p != MAP_FAILED else { return nil }
        base = UnsafeRawPointer(p)
        self.length = length
    }

    deinit { munmap(UnsafeMutableRawPointer(mutating: base), length) }

    /// Drops the whole pages of a byte range from this process's resident set (the page cache keeps them).
    func evict(offset: Int, count: Int) {
        let page = Int(sysconf(Int32(_SC_PAGESIZE)))
        let first = offset / page * page, last = min(length, (offset + count + page - 1) / page * page)
        if last > first { _ = madvise(UnsafeMutableRawPointer(mutating: base + first), last - first, MADV_DONTNEED) }
    }
}

/// SHA-256 through libsodium: the dataset cache's content key and its check on open. (SHA-256
/// would be faster, but its 64-byte-aligned state does not import into Swift.)
struct ContentHash {
    private var state = crypto_hash_sha256_state()
    static let ready: Bool = sodium_init() >= 0

    init() {
        precondition(Self.ready, "libsodium failed to initialise")
        crypto_hash_sha256_init(&state)
    }

    mutating func update(_ bytes: UnsafeRawBufferPointer) {
        guard let base = bytes.baseAddress, bytes.count > 0 else { return }
        crypto_hash_sha256_update(&state, base.assumingMemoryBound(to: UInt8.self), UInt64(bytes.count))
    }

    mutating func update(_ bytes: [UInt8]) { bytes.withUnsafeBytes { update($0) } }
    mutating func update(_ text: String) { update(Array(text.utf8)) }

    mutating func finish() -> [UInt8] {
        var out = [UInt8](repeating: 0, count: 32)
        crypto_hash_sha256_final(&state, &out)
        return out
    }

    /// The hash of a file's bytes, read in 1 MiB pieces.
    static func file(_ path: String) throws -> [UInt8] {
        let fd = Glibc.open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { throw FileError("\(path): cannot read (\(String(cString: strerror(errno))))") }
        defer { close(fd) }
        var h = ContentHash()
        var buffer = [UInt8](repeating: 0, count: 1 << 20)
        while true {
            let n = buffer.withUnsafeMutableBytes { Glibc.read(fd, $0.baseAddress, $0.count) }
            if n < 0 && errno == EINTR { continue }
            guard n >= 0 else { throw FileError("\(path): cannot read (\(String(cString: strerror(errno))))") }
            if n == 0 { break }
            buffer.withUnsafeBytes { h.update(UnsafeRawBufferPointer(rebasing: $0[0..<n])) }
        }
        return h.finish()
    }
}
