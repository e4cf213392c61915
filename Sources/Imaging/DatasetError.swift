import Foundation

/// Everything wrong with a dataset folder that a user can fix. Each description is one line that
/// starts with the file or folder at fault, then says what is wrong and, where it helps, what was
/// expected.
public enum DatasetError: Error, CustomStringConvertible, LocalizedError, Equatable, Sendable {
    /// The dataset root itself does not exist or is not a folder.
    case rootNotFound(path: String)
    /// A required folder (`images/`, `masks/`, `train/`, `val/`...) is missing.
    case missingFolder(path: String, expected: String)
    /// A folder that should hold image files holds none.
    case emptyFolder(path: String)
    /// A file that is neither an image (PNG, JPEG, TIFF) nor a note (`.txt`, `.csv`...) sits among images or masks.
    case notAnImage(path: String)
    /// A file or folder that does not belong where it is in the recognised layout.
    case unexpectedEntry(path: String, expected: String)
    /// The folder matches none of the layouts ranksweep knows.
    case unrecognisedLayout(root: String)
    /// Parts of one dataset (train/ and val/...) are in different layouts.
    case mixedKinds(first: String, firstKind: String, second: String, secondKind: String)
    /// Two samples of one dataset would have the same name.
    case duplicateName(first: String, second: String)
    /// A dataset option (flag) cannot be used; the text names the flag.
    case invalidOptions(String)
    /// A sub-folder sits in an images/ or masks/ folder.
    case unexpectedFolder(path: String)
    /// The root mixes the flat layout (`images/`, `masks/`) with split folders (`train/`...).
    case mixedLayout(root: String)
    /// An image file could not be decoded (truncated, corrupt, not really an image...).
    case unreadable(ImageFileError)
    /// An image has no mask; `expected` describes the names that would have matched.
    case missingMask(image: String, expected: String)
    /// A mask has no image; `expected` describes the names that would have matched.
    case maskWithoutImage(mask: String, expected: String)
    /// Two masks (`X.png` and `X_mask.png`) claim the same image.
    case ambiguousMask(image: String, masks: [String])
    /// Two files in one folder share a stem (`X.png` and `X.jpg` or `X.PNG`).
    case duplicateStem(first: String, second: String)
    /// An image and its mask differ in width or height.
    case sizeMismatch(image: String, imageWidth: Int, imageHeight: Int, mask: String, maskWidth: Int, maskHeight: Int)
    /// Too few pairs to make a train/val/test split with every part non-empty.
    case tooFewPairs(root: String, count: Int, needed: Int)
    /// An output folder exists and holds files; nothing is overwritten.
    case outputNotEmpty(path: String)
    /// A file-system operation failed (listing, creating, renaming).
    case fileSystem(path: String, reason: String)

    public var description: String {
        switch self {
        case .rootNotFound(let path):
            return "\(path): dataset folder not found"
        case .missingFolder(let path, let expected):
            return "\(path): folder not found (\(expected))"
        case .emptyFolder(let path):
            return "\(path): folder holds no image files (.png, .jpg/.jpeg, .tif/.tiff)"
        case .notAnImage(let path):
            return "\(path): not an image file (images and masks are .png, .jpg/.jpeg or .tif/.tiff; hidden files and notes such as .txt are ignored)"
        case .unexpectedEntry(let path, let expected):
            return "\(path): unexpected here (\(expected))"
        case .unrecognisedLayout(let root):
            return "\(root): no known dataset layout (images/ + masks/, ISIC 2018 *_Input + *_GroundTruth, BUSI class folders, DSB2018 ID/images + ID/masks, CVC-ClinicDB Original/ + Ground Truth/, optionally under train/ val/ test/); name the folders with --images-dir and --masks-dir"
        case .mixedKinds(let first, let firstKind, let second, let secondKind):
            return "\(second): is in the \(secondKind) layout but \(first) is in the \(firstKind) layout; use one layout"
        case .duplicateName(let first, let second):
            return "\(second): has the same sample name as \(first); rename one"
        case .invalidOptions(let text):
            return text
        case .unexpectedFolder(let path):
            return "\(path): unexpected sub-folder (image and mask folders hold only image files)"
        case .mixedLayout(let root):
            return "\(root): holds both images/ or masks/ and train/, val/ or test/ folders; use one layout"
        case .unreadable(let error):
            return error.description
        case .missingMask(let image, let expected):
            return "\(image): no mask for this image (looked for \(expected)); --skip-unmatched skips unmatched files"
        case .maskWithoutImage(let mask, let expected):
            return "\(mask): mask has no image (looked for \(expected)); --skip-unmatched skips unmatched files"
        case .ambiguousMask(let image, let masks):
            return "\(image): more than one mask matches (\(masks.joined(separator: " and "))); keep one"
        case .duplicateStem(let first, let second):
            return "\(second): has the same name as \(first) apart from the extension; keep one"
        case .sizeMismatch(let image, let iw, let ih, let mask, let mw, let mh):
            return "\(mask): mask is \(mw)x\(mh) but its image \(image) is \(iw)x\(ih)"
        case .tooFewPairs(let root, let count, let needed):
            return "\(root): \(count) image/mask pair\(count == 1 ? "" : "s"); a train/val/test split needs at least \(needed)"
        case .outputNotEmpty(let path):
            return "\(path): folder exists and is not empty; choose another or remove it"
        case .fileSystem(let path, let reason):
            return "\(path): \(reason)"
        }
    }

    public var errorDescription: String? { description }
}
