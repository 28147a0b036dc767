//go:build crashpoints

package crashpoint

// Enabled: this binary was built with -tags crashpoints.
const Enabled = true
