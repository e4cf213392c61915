import Engine
import Foundation

/// One Keras layer as a file describes it, whatever the file kind.
struct KerasLayer {
    /// The layer's name (from the model config, or the HDF5 group name when there is no config).
    var name: String
    /// Keras's class name: `Conv2D`, `BatchNormalization`, `Conv2DTranspose`, `ReLU`, `Dropout`, …
    var className: String
    /// The layer's `config` object from the model config; empty when the file has none.
    var config: [String: Any] = [:]
    /// Names of the layers feeding this one, in argument order, when the config says.
    var inputs: [String] = []
    /// Weights by Keras's variable name (`kernel`, `bias`, `gamma`, `beta`, `moving_mean`, `moving_variance`).
    var weights: [String: Tensor] = [:]
}

/// The contents of a Keras model file: its layers in model order when the file has a config, and
/// where they came from. `.weights.h5` files have no config: their layers are grouped by class,
/// each class in the order Keras numbered them.
struct KerasFile {
    enum Kind: String { case keras = ".keras", legacyH5 = "legacy .h5", weightsH5 = ".weights.h5" }
    var path: String
    var kind: Kind
    var hasConfig: Bool
    var layers: [KerasLayer]
    /// `batch_shape` of the input layer, e.g. `[nil, 128, 128, 3]`, when the config gives it.
    var inputShape: [Int?]?
    var kerasVersion: String?

    /// Each class's variables, in Keras's order, as Keras 3 stores them under `vars/0..n`.
    static let variableNames: [String: [String]] = [
        "Conv2D": ["kernel", "bias"],
        "Conv2DTranspose": ["kernel", "bias"],
        "BatchNormalization": ["gamma", "beta", "moving_mean", "moving_variance"],
    ]

    // MARK: reading

    /// A `.keras` archive: `config.json` and `model.weights.h5`.
    static func readArchive(path: String, data: Data) throws -> KerasFile {
        func fail(_ reason: String) -> ModelFileError { ModelFileError(path: path, reason: reason) }
        let zip = try ZipArchive(path: path, data: data)
        guard let configData = try zip.contents(of: "config.json") else { throw fail("a ZIP archive without config.json: not a .keras model") }
        guard let weightsData = try zip.contents(of: "model.weights.h5") else { throw fail("a .keras archive without model.weights.h5") }
        guard let config = try? JSONSerialization.jsonObject(with: configData) as? [String: Any] else {
            throw fail("config.json is not a JSON object")
        }
        var version: String?
        if let meta = try zip.contents(of: "metadata.json"),
           let object = try? JSONSerialization.jsonObject(with: meta) as? [String: Any] {
            version = object["keras_version"] as? String
        }
        // libhdf5 reads files: the weights go to a private temporary file for the time of the read.
        let tmp = FileManager.default.temporaryDirectory
            .appendingPathComponent("ranksweep-keras-\(getpid())-\(UInt32.random(in: 0...UInt32.max)).weights.h5").path
        guard FileManager.default.createFile(atPath: tmp, contents: weightsData) else {
            throw fail("cannot write a temporary copy of its weights to \(tmp)")
        }
        defer { try? FileManager.default.removeItem(atPath: tmp) }
        let h5 = try HDF5File(path: tmp)
        let groups = try keras3Groups(h5, displayPath: path)
        var file = try fromConfig(config, path: path, kind: .keras)
        file.kerasVersion = version
        try attachKeras3Weights(groups, to: &file)
        return file
    }

    /// An HDF5 file: a legacy full model (`model_config` attribute, `model_weights/`), a Keras 3
    /// `.weights.h5` (`layers/<auto name>/vars/i`), or Keras 2 weights (one group per layer).
    static func readHDF5(path: String) throws -> KerasFile {
        func fail(_ reason: String) -> ModelFileError { ModelFileError(path: path, reason: reason) }
        let h5 = try HDF5File(path: path)
        if let json = try h5.stringAttribute("model_config") {
            guard let config = try? JSONSerialization.jsonObject(with: Data(json.utf8)) as? [String: Any] else {
                throw fail("its model_config attribute is not JSON")
            }
            var file = try fromConfig(config, path: path, kind: .legacyH5)
            file.kerasVersion = try h5.stringAttribute("keras_version")
            let root = h5.kind("/model_weights") == .group ? "/model_weights" : "/"
            for i in file.layers.indices where variableNames[file.layers[i].className] != nil {
                let group = root + (root == "/" ? "" : "/") + file.layers[i].name
                guard h5.kind(group) == .group else { throw fail("no weights for layer '\(file.layers[i].name)' (no group \(group))") }
                file.layers[i].weights = try leafDatasets(h5, under: group)
            }
            return file
        }
        if h5.kind("/layers") == .group {
            let groups = try keras3Groups(h5, displayPath: path)
            var layers: [KerasLayer] = []
            for (name, tensors) in groups.sorted(by: { autoNameOrder($0.key, $1.key) }) where !tensors.isEmpty {
                let className = classForAutoName(name)
                var layer = KerasLayer(name: name, className: className)
                layer.weights = try named(tensors, className: className, layer: name, path: path)
                layers.append(layer)
            }
            return KerasFile(path: path, kind: .weightsH5, hasConfig: false, layers: layers)
        }
        // Keras 2 `save_weights`: one group per layer at the root, weights named as the variables.
        var layers: [KerasLayer] = []
        for name in try h5.children(of: "/").sorted(by: autoNameOrder) where h5.kind("/" + name) == .group {
            let weights = try leafDatasets(h5, under: "/" + name)
            if weights.isEmpty { continue }
            layers.append(KerasLayer(name: name, className: classForAutoName(name, weights: weights), weights: weights))
        }
        guard !layers.isEmpty else { throw fail("an HDF5 file with no Keras layers in it (no model_config, layers/ or layer groups)") }
        return KerasFile(path: path, kind: .weightsH5, hasConfig: false, layers: layers)
    }

    // MARK: pieces

    /// `layers/<name>/vars/<i>` of a Keras 3 weights file: each group's variables in index order.
    private static func keras3Groups(_ h5: HDF5File, displayPath: String) throws -> [String: [Tensor]] {
        guard h5.kind("/layers") == .group else {
            throw ModelFileError(path: displayPath, reason: "its weights have no layers/ group: not a Keras 3 weights file")
        }
        var groups: [String: [Tensor]] = [:]
        for name in try h5.children(of: "/layers") {
            let vars = "/layers/\(name)/vars"
            guard h5.kind(vars) == .group else { groups[name] = []; continue }
            let indices = try h5.children(of: vars).compactMap(Int.init).sorted()
            groups[name] = try indices.map { try h5.readTensor("\(vars)/\($0)") }
        }
        return groups
    }

    /// Gives each config layer with weights its variables: Keras 3 names the groups after the
    /// class (`conv2d`, `conv2d_1`, …) in the model's layer order, whatever the layers' own names.
    private static func attachKeras3Weights(_ groups: [String: [Tensor]], to file: inout KerasFile) throws {
        var seen: [String: Int] = [:]
        for i in file.layers.indices {
            let base = snakeCase(file.layers[i].className)
            let n = seen[base, default: 0]
            seen[base] = n + 1
            guard variableNames[file.layers[i].className] != nil else { continue }
            let key = n == 0 ? base : "\(base)_\(n)"
            guard let tensors = groups[key] else {
                throw ModelFileError(path: file.path, reason: "no weights for layer '\(file.layers[i].name)' (no group layers/\(key) in model.weights.h5)")
            }
            file.layers[i].weights = try named(tensors, className: file.layers[i].className, layer: file.layers[i].name, path: file.path)
        }
    }

    /// Variables listed by index, named by their class's variable order.
    private static func named(_ tensors: [Tensor], className: String, layer: String, path: String) throws -> [String: Tensor] {
        guard let names = variableNames[className] else {
            // A class ranksweep's U-Net does not have: kept under index names so the mapping can say so.
            return Dictionary(uniqueKeysWithValues: tensors.enumerated().map { ("var\($0.offset)", $0.element) })
        }
        guard tensors.count == names.count else {
            throw ModelFileError(path: path, reason: "layer '\(layer)' (\(className)) has \(tensors.count) variables, expected \(names.count) (\(names.joined(separator: ", ")))")
        }
        return Dictionary(uniqueKeysWithValues: zip(names, tensors).map { ($0, $1) })
    }

    /// Every dataset below `group`, by its last path component without a `:0` suffix (`kernel:0` in Keras 2).
    private static func leafDatasets(_ h5: HDF5File, under group: String) throws -> [String: Tensor] {
        var result: [String: Tensor] = [:]
        for child in try h5.children(of: group) {
            let path = group + "/" + child
            switch h5.kind(path) {
            case .group?: result.merge(try leafDatasets(h5, under: path)) { a, _ in a }
            case .dataset?:
                let name = child.hasSuffix(":0") ? String(child.dropLast(2)) : child
                result[name] = try h5.readTensor(path)
            case nil: break
            }
        }
        return result
    }

    /// Layers, input shape and wiring from a Keras model config (`{"class_name": "Functional", "config": {"layers": [...]}}`).
    private static func fromConfig(_ root: [String: Any], path: String, kind: Kind) throws -> KerasFile {
        guard let config = root["config"] as? [String: Any], let list = config["layers"] as? [[String: Any]] else {
            throw ModelFileError(path: path, reason: "its model config has no layer list (class \(root["class_name"] ?? "?"))")
        }
        var layers: [KerasLayer] = []
        var inputShape: [Int?]?
        for entry in list {
            let className = entry["class_name"] as? String ?? "?"
            let layerConfig = entry["config"] as? [String: Any] ?? [:]
            let name = layerConfig["name"] as? String ?? entry["name"] as? String ?? "?"
            var layer = KerasLayer(name: name, className: className, config: layerConfig)
            layer.inputs = historyNames(entry["inbound_nodes"] as Any)
            if className == "InputLayer", let shape = (layerConfig["batch_shape"] ?? layerConfig["batch_input_shape"]) as? [Any] {
                inputShape = shape.map { ($0 as? NSNumber)?.intValue }
            }
            layers.append(layer)
        }
        return KerasFile(path: path, kind: kind, hasConfig: true, layers: layers, inputShape: inputShape)
    }

    /// The names of the layers an `inbound_nodes` entry refers to, in order: Keras 3 writes
    /// `{"keras_history": [name, node, tensor]}`, Keras 2 `[[name, node, tensor, kwargs], …]`.
    static func historyNames(_ value: Any) -> [String] {
        if let object = value as? [String: Any] {
            if let history = object["keras_history"] as? [Any], let name = history.first as? String { return [name] }
            return object.keys.sorted().flatMap { historyNames(object[$0]!) }
        }
        if let array = value as? [Any] {
            if array.count >= 3, let name = array[0] as? String, array[1] is NSNumber, array[2] is NSNumber { return [name] }
            return array.flatMap(historyNames)
        }
        return []
    }

    /// Keras's `to_snake_case` of a class name: `Conv2DTranspose` -> `conv2d_transpose`,
    /// `BatchNormalization` -> `batch_normalization`, `ReLU` -> `re_lu`.
    static func snakeCase(_ name: String) -> String {
        // Python: re.sub("(.)([A-Z][a-z]+)", r"\1_\2", name), then re.sub("([a-z])([A-Z])", r"\1_\2", ...).lower()
        let chars = Array(name)
        var first: [Character] = []
        for (i, c) in chars.enumerated() {
            if i > 0, c.isUppercase, i + 1 < chars.count, chars[i + 1].isLowercase { first.append("_") }
            first.append(c)
        }
        var second: [Character] = []
        for (i, c) in first.enumerated() {
            if i > 0, c.isUppercase, first[i - 1].isLowercase { second.append("_") }
            second.append(c)
        }
        return String(second).lowercased()
    }

    /// `conv2d_2` before `conv2d_10`: by base name, then by numeric suffix (none = 0).
    static func autoNameOrder(_ a: String, _ b: String) -> Bool {
        let (baseA, nA) = splitSuffix(a), (baseB, nB) = splitSuffix(b)
        return baseA != baseB ? baseA < baseB : nA < nB
    }

    static func splitSuffix(_ name: String) -> (base: String, number: Int) {
        if let underscore = name.lastIndex(of: "_"), let n = Int(name[name.index(after: underscore)...]) {
            return (String(name[..<underscore]), n)
        }
        return (name, 0)
    }

    /// The class of a layer known only by its group name and weights.
    static func classForAutoName(_ name: String, weights: [String: Tensor] = [:]) -> String {
        let base = splitSuffix(name).base
        switch base {
        case "conv2d": return "Conv2D"
        case "conv2d_transpose": return "Conv2DTranspose"
        case "batch_normalization": return "BatchNormalization"
        default: break
        }
        // Reference names (Keras 2 weight files keep the layers' own names).
        if name.range(of: #"^up\d+$"#, options: .regularExpression) != nil { return "Conv2DTranspose" }
        if weights["gamma"] != nil || weights["moving_mean"] != nil { return "BatchNormalization" }
        if name.range(of: #"_conv\d+$|^head$"#, options: .regularExpression) != nil { return "Conv2D" }
        return base
    }
}
