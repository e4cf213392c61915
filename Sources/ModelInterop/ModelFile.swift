import Engine
import Foundation

/// Loading any model file ranksweep accepts, chosen by the file's content (not its name, since a
/// sweep ships the baseline under a fixed name):
/// - safetensors written by ranksweep (`UNet.save`): baselines and compressed models;
/// - HDF5 (signature `\x89HDF`): a Keras legacy full-model `.h5`, or a `.weights.h5`;
/// - ZIP (signature `PK\x03\x04`): a Keras 3 `.keras` archive.
/// Keras models are mapped onto ranksweep's U-Net by `KerasUNet`; the input channel count the
/// model was built for is its `config.inputChannels`, which is what callers load data with.
public enum ModelFile {
    /// Metadata key: where a model came from when ranksweep did not train it (`keras .keras unet.keras`).
    public static let sourceKey = "ranksweep.source"
    /// Metadata key: the square input size the Keras model was built for, when its config says.
    public static let imageSizeKey = "ranksweep.image_size"

    /// What a file holds, by its first bytes.
    enum Content { case safetensors, hdf5, zip }

    static func content(of path: String) throws -> Content {
        var isDirectory: ObjCBool = false
        guard FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory) else {
            throw ModelFileError(path: path, reason: "cannot read file (no such file)")
        }
        guard !isDirectory.boolValue else { throw ModelFileError(path: path, reason: "a folder, not a model file") }
        // The throwing read: `readData(ofLength:)` traps on errors.
        guard let handle = FileHandle(forReadingAtPath: path) else { throw ModelFileError(path: path, reason: "cannot read file") }
        defer { try? handle.close() }
        let head: [UInt8]
        do { head = [UInt8](try handle.read(upToCount: 9) ?? Data()) } catch {
            throw ModelFileError(path: path, reason: "cannot read file (\(error.localizedDescription))")
        }
        if head.starts(with: HDF5File.signature) { return .hdf5 }
        if head.starts(with: ZipArchive.signature) { return .zip }
        // safetensors: an 8-byte header length, then the JSON header's `{`.
        guard head.count == 9, head[8] == UInt8(ascii: "{") else {
            throw ModelFileError(path: path, reason: "not a safetensors or Keras file (a model is a .safetensors from `ranksweep train`/`compress`, or a .keras/.h5/.weights.h5)")
        }
        return .safetensors
    }

    public static func load(path: String) throws -> (model: UNet, metadata: [String: String]) {
        switch try content(of: path) {
        case .hdf5:
            return try KerasUNet.model(from: KerasFile.readHDF5(path: path))
        case .zip:
            guard let data = FileManager.default.contents(atPath: path) else { throw ModelFileError(path: path, reason: "cannot read file") }
            return try KerasUNet.model(from: KerasFile.readArchive(path: path, data: data))
        case .safetensors:
            return try UNet.load(path: path)
        }
    }

    /// A Keras model file read into a ranksweep model and saved as safetensors (`import-keras`).
    @discardableResult
    public static func importKeras(path: String, to output: String) throws -> UNet {
        guard try content(of: path) != .safetensors else {
            throw ModelFileError(path: path, reason: "not a Keras model file (.keras is a ZIP archive, .h5 and .weights.h5 are HDF5)")
        }
        let (model, metadata) = try load(path: path)
        try model.save(to: output, metadata: metadata)
        return model
    }
}
