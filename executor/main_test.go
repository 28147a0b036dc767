package executor

import (
	"fmt"
	"os"
	"testing"

	"github.com/cairn-run/cairn/internal/testenv"
)

// The test binary is its own shim and container init stub, exactly like the
// cairn CLI in production.
func TestMain(m *testing.M) {
	MaybeInit()
	if len(os.Args) > 1 && os.Args[1] == "shim" {
		if err := RunShim(os.Args[2:]); err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(2)
		}
		os.Exit(0)
	}
	code := testenv.Main(m)
	if leaked := leakedCgroups(); len(leaked) > 0 {
		fmt.Fprintf(os.Stderr, "FAIL: cgroups leaked by this run (now removed): %v\n", leaked)
		code = 1
	}
	os.Exit(code)
}

func fileExists(p string) bool {
	_, err := os.Stat(p)
	return err == nil
}
