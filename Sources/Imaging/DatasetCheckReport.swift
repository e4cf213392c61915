import Foundation

extension DatasetLoader.Description {
    /// The lines describing a scanned dataset: layout, pairs and split, image sizes and kinds,
    /// mask kinds, how masks were matched, what was ignored or skipped.
    public func reportLines(_ index: DatasetIndex) -> [String] {
        func list(_ items: [(String, Int)], limit: Int = 3) -> String {
            let shown = items.prefix(limit).map { "\($0.0) (\($0.1))" }.joined(separator: ", ")
            return items.count > limit ? shown + ", and \(items.count - limit) more" : shown
        }
        let pairs = index.pairs
        let split = index.layout == .presplit ? "train/val/test folders as given" : "split by seed"
        var lines = ["layout: \(index.kind.rawValue) (\(split))",
                     "pairs: \(pairs.count); \(index.summary)",
                     "images: \(pairs.count), sizes \(list(imageSizes)); \(list(imageKinds))"]
        let maskFiles = pairs.reduce(0) { $0 + $1.masks.count }
        let perImage = masksPerImage.lowerBound == masksPerImage.upperBound
            ? "\(masksPerImage.lowerBound) per image" : "\(masksPerImage.lowerBound)-\(masksPerImage.upperBound) per image, united"
        lines.append("masks: \(maskFiles) (\(perImage)); \(list(maskKinds)); foreground above \(index.options.maskThreshold) of 255")
        let rules = index.matching.sorted { $0.value != $1.value ? $0.value > $1.value : $0.key < $1.key }.map { ($0.key, $0.value) }
        lines.append("matched: \(list(rules, limit: 6))")
        if !index.ignored.isEmpty {
            lines.append("ignored: \(index.ignored.count) note file\(index.ignored.count == 1 ? "" : "s") (\(index.ignored.prefix(3).joined(separator: ", "))\(index.ignored.count > 3 ? ", ..." : ""))")
        }
        lines.append("skipped: \(index.skipped.count)\(index.skipped.isEmpty ? "" : " (--skip-unmatched)")")
        for file in index.skipped.prefix(DatasetLoader.maxNamedWarnings) { lines.append("  \(file.path): \(file.reason)") }
        if index.skipped.count > DatasetLoader.maxNamedWarnings {
            lines.append("  ... and \(index.skipped.count - DatasetLoader.maxNamedWarnings) more")
        }
        return lines
    }
}
