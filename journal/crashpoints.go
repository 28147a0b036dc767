package journal

// CrashMidCommit is the journal's crash point: inside a write transaction,
// after its records are written and before it commits.
const CrashMidCommit = "journal.mid-commit"

// CrashPoints lists the journal's crash points.
func CrashPoints() []string { return []string{CrashMidCommit} }
