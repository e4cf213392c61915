import Basics
import CSupport
import Engine

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
