import CHDF5
import Engine
import Foundation

/// A read-only HDF5 file (libhdf5's C API), just enough to read Keras weight files: list a group's
/// children, tell groups from datasets, read a dataset as float32, read string attributes.
///
/// One owner: the handle is closed when the value goes away. libhdf5 as Debian builds it is not
/// thread-safe, so every call goes through one process-wide lock.
final class HDF5File {
    enum Kind { case group, dataset }

    let path: String
    private let file: hid_t
    private static let lock = NSLock()

    /// The 8-byte signature an HDF5 file starts with (without a user block, as h5py writes).
    static let signature: [UInt8] = [0x89, 0x48, 0x44, 0x46, 0x0D, 0x0A, 0x1A, 0x0A]

    init(path: String) throws {
        self.path = path
        let id: hid_t = HDF5File.locked {
            chdf5_silence_errors()
            return H5Fopen(path, chdf5_read_only(), chdf5_default_properties())
        }
        guard id >= 0 else { throw ModelFileError(path: path, reason: "cannot open as an HDF5 file") }
        file = id
    }

    deinit { _ = HDF5File.locked { H5Fclose(file) } }

    private static func locked<T>(_ body: () throws -> T) rethrows -> T {
        lock.lock(); defer { lock.unlock() }
        return try body()
    }

    private func fail(_ reason: String) -> ModelFileError { ModelFileError(path: path, reason: reason) }

    /// Whether `object` ("/a/b") is a group, a dataset, or absent (nil).
    func kind(_ object: String) -> Kind? {
        HDF5File.locked {
            // H5Lexists fails when an intermediate group is missing, so check each prefix in turn.
            var prefix = ""
            for part in object.split(separator: "/") {
                prefix += "/" + part
                guard H5Lexists(file, prefix, chdf5_default_properties()) > 0 else { return nil }
            }
            let id = H5Oopen(file, object, chdf5_default_properties())
            guard id >= 0 else { return nil }
            defer { H5Oclose(id) }
            switch H5Iget_type(id) {
            case H5I_GROUP: return .group
            case H5I_DATASET: return .dataset
            default: return nil
            }
        }
    }

    /// The names of `group`'s links, in name order (as HDF5 lists them: "conv2d_10" before "conv2d_2").
    func children(of group: String) throws -> [String] {
        try HDF5File.locked {
            let g = H5Gopen2(file, group, chdf5_default_properties())
            guard g >= 0 else { throw fail("no group \(group)") }
            defer { H5Gclose(g) }
            var info = H5G_info_t()
            guard H5Gget_info(g, &info) >= 0 else { throw fail("cannot list group \(group)") }
            var names: [String] = []
            for i in 0..<info.nlinks {
                let length = H5Lget_name_by_idx(g, ".", H5_INDEX_NAME, H5_ITER_INC, i, nil, 0, chdf5_default_properties())
                guard length >= 0 else { throw fail("cannot list group \(group)") }
                var buffer = [CChar](repeating: 0, count: Int(length) + 1)
                _ = H5Lget_name_by_idx(g, ".", H5_INDEX_NAME, H5_ITER_INC, i, &buffer, buffer.count, chdf5_default_properties())
                names.append(String(decoding: buffer.prefix(Int(length)).map { UInt8(bitPattern: $0) }, as: UTF8.self))
            }
            return names
        }
    }

    /// A numeric dataset as a float32 tensor of the dataset's shape (libhdf5 converts other float
    /// and integer types).
    func readTensor(_ dataset: String) throws -> Tensor {
        try HDF5File.locked {
            let d = H5Dopen2(file, dataset, chdf5_default_properties())
            guard d >= 0 else { throw fail("no dataset \(dataset)") }
            defer { H5Dclose(d) }
            let type = H5Dget_type(d)
            defer { H5Tclose(type) }
            let typeClass = H5Tget_class(type)
            guard typeClass == H5T_FLOAT || typeClass == H5T_INTEGER else {
                throw fail("dataset \(dataset) is not numeric")
            }
            let space = H5Dget_space(d)
            defer { H5Sclose(space) }
            let rank = H5Sget_simple_extent_ndims(space)
            guard rank >= 0 && rank <= 8 else { throw fail("dataset \(dataset) has an unreadable shape") }
            var dims = [hsize_t](repeating: 0, count: Int(max(rank, 1)))
            _ = H5Sget_simple_extent_dims(space, &dims, nil)
            let shape = rank == 0 ? [1] : dims.map { Int($0) }
            let count = shape.reduce(1, *)
            guard count < 1 << 30 else { throw fail("dataset \(dataset) is too large (\(shape))") }
            var storage = [Float](repeating: 0, count: count)
            let status = storage.withUnsafeMutableBytes {
                H5Dread(d, chdf5_native_float(), chdf5_all(), chdf5_all(), chdf5_default_properties(), $0.baseAddress)
            }
            guard status >= 0 else { throw fail("cannot read dataset \(dataset)") }
            return Tensor(shape: shape, storage: storage)
        }
    }

    /// A scalar string attribute of `object` (variable-length or fixed, as h5py writes them), or nil.
    func stringAttribute(_ name: String, of object: String = "/") throws -> String? {
        try HDF5File.locked {
            guard H5Aexists_by_name(file, object, name, chdf5_default_properties()) > 0 else { return nil }
            let a = H5Aopen_by_name(file, object, name, chdf5_default_properties(), chdf5_default_properties())
            guard a >= 0 else { throw fail("cannot open attribute \(name) of \(object)") }
            defer { H5Aclose(a) }
            let type = H5Aget_type(a)
            defer { H5Tclose(type) }
            guard H5Tget_class(type) == H5T_STRING else { throw fail("attribute \(name) of \(object) is not a string") }
            let memoryType = H5Tcopy(chdf5_c_string())
            defer { H5Tclose(memoryType) }
            if H5Tis_variable_str(type) > 0 {
                H5Tset_size(memoryType, chdf5_variable_size())
                var pointer: UnsafeMutablePointer<CChar>? = nil
                guard H5Aread(a, memoryType, &pointer) >= 0, let pointer else {
                    throw fail("cannot read attribute \(name) of \(object)")
                }
                defer { H5free_memory(pointer) }
                return String(cString: pointer)
            }
            let size = H5Tget_size(type)
            H5Tset_size(memoryType, size)
            var buffer = [UInt8](repeating: 0, count: size + 1)
            guard H5Aread(a, memoryType, &buffer) >= 0 else { throw fail("cannot read attribute \(name) of \(object)") }
            return String(decoding: buffer.prefix { $0 != 0 }, as: UTF8.self)
        }
    }
}
