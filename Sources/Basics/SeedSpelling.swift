import Foundation

/// The seed pipeline spells flags in snake_case (`--data_root`, `--out_dir`); ranksweep's flags are
/// kebab-case. Every flag of every command takes both: a long flag's name (before any `=`) has its
/// underscores turned into dashes, here, once, before parsing. Values are left alone, and so is
/// everything after a lone `--`.
public enum SeedSpelling {
    public static func kebabCased(_ arguments: [String]) -> [String] {
        var out: [String] = []
        var literal = false
        for a in arguments {
            if literal || a == "--" || !a.hasPrefix("--") {
                if a == "--" { literal = true }
                out.append(a)
                continue
            }
            if let eq = a.firstIndex(of: "=") {
                out.append(a[..<eq].replacingOccurrences(of: "_", with: "-") + a[eq...])
            } else {
                out.append(a.replacingOccurrences(of: "_", with: "-"))
            }
        }
        return out
    }
}
