/// Commands the tool prints for the user to run (hints), spelled so that they work when pasted.
public enum Shell {
    /// `path` as one shell word: unchanged when it holds only safe characters, else in single quotes.
    public static func quote(_ word: String) -> String {
        let safe = word.allSatisfy { $0.isASCII && ($0.isLetter || $0.isNumber || "/._-+=:,@%".contains($0)) }
        if safe && !word.isEmpty { return word }
        return "'" + word.replacingOccurrences(of: "'", with: "'\\''") + "'"
    }
}
