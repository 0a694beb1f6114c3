extension String {
    /// The string without leading and trailing characters from `set`
    /// (Foundation's trimmingCharacters, for the few characters the tools
    /// strip from /proc and /run files).
    public func trimmingCharacters(in set: String) -> String {
        let characters = Set(set)
        guard let first = firstIndex(where: { !characters.contains($0) }),
              let last = lastIndex(where: { !characters.contains($0) }) else { return "" }
        return String(self[first...last])
    }
}
