import Basics
import CSupport
import Foundation

/// Process entry: pick OpenBLAS's fast kernels (by re-exec, since the library reads its environment
/// when it loads), make logs line-buffered, accept the seed pipeline's flag spelling, then hand
/// over to the command parser.
@main
enum Entry {
    static func main() {
        BLASEnvironment.reexecIfUseful()
        csupport_line_buffer_stdio()
        RankSweep.main(SeedSpelling.kebabCased(Array(CommandLine.arguments.dropFirst())))
    }
}

/// The seed pipeline spells flags in snake_case (`--data_root`, `--out_dir`); ranksweep's flags are
/// kebab-case. Every flag of every command takes both: a long flag's name (before any `=`) has its
/// underscores turned into dashes, here, once, before parsing. Values are left alone, and so is
/// everything after a lone `--`.
enum SeedSpelling {
    static func kebabCased(_ arguments: [String]) -> [String] {
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
