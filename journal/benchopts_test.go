package journal

import "github.com/cairn-run/cairn/internal/storecheck"

func benchOpenOptions() Options { return Options{Checks: storecheck.All()} }
