import Foundation

/// A YAML parser error as one line a person can act on: a tab in the indentation is called a tab
/// (YAML indents with spaces only); anything else keeps the parser's own words and position,
/// folded onto one line.
enum YAMLProblem {
    static func describe(_ error: Error, in yaml: String) -> String {
        for (i, line) in yaml.split(separator: "\n", omittingEmptySubsequences: false).enumerated() {
            let indent = line.prefix { $0 == " " || $0 == "\t" }
            if indent.contains("\t") {
                return "not valid YAML: line \(i + 1) is indented with a tab; YAML indents with spaces only"
            }
        }
        let words = String(describing: error).split(separator: "\n").map { $0.trimmingCharacters(in: .whitespaces) }
            .filter { !$0.isEmpty && !$0.allSatisfy { $0 == "^" || $0 == " " } }
        return "not valid YAML: " + words.prefix(2).joined(separator: "; ")
    }
}
