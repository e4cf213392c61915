import Foundation

/// What /proc/cpuinfo says about the first processor: its model name, printed with every figure,
/// and its feature flags (which instruction sets the engine and OpenBLAS may use).
public enum CPUInfo {
    /// "AMD EPYC", "Intel(R) Xeon(R) …"; "unknown" when /proc/cpuinfo is unreadable.
    public static var modelName: String { field("model name") ?? "unknown" }

    /// The feature flags ("avx2", "avx512f", …); empty when /proc/cpuinfo is unreadable.
    public static var flags: Set<String> {
        Set((field("flags") ?? "").split(separator: " ").map(String.init))
    }

    /// The value of the first line `name : value`.
    private static func field(_ name: String) -> String? {
        guard let text = try? String(contentsOfFile: "/proc/cpuinfo", encoding: .utf8),
              let line = text.split(separator: "\n").first(where: { $0.hasPrefix(name) }),
              let colon = line.firstIndex(of: ":") else { return nil }
        return line[line.index(after: colon)...].trimmingCharacters(in: .whitespaces)
    }
}
