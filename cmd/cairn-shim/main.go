// Command cairn-shim is the per-container shim that cairnd starts
// (`cairn-shim shim ...`) and the container init stub that libcontainer
// re-executes (`cairn-shim init`). It is the cairn CLI without the CLI: it
// links only the executor, so it is a third of the size, starts faster and
// holds less memory, and every container start and every idle container pays
// for the shim binary (cairnd keeps a sealed copy of it in memory, the init
// stub runs it, one shim per container runs it). cairnd uses it when it is
// installed next to cairnd or on PATH, else `cairn shim`, which does the
// same.
package main

import (
	"fmt"
	"os"

	"github.com/cairn-run/cairn/executor"
)

func main() {
	executor.MaybeInit() // `cairn-shim init` inside a new container; never returns there
	if len(os.Args) > 1 && os.Args[1] == "shim" {
		if err := executor.RunShim(os.Args[2:]); err != nil {
			fmt.Fprintln(os.Stderr, "cairn-shim:", err)
			os.Exit(1)
		}
		os.Exit(0)
	}
	fmt.Fprintln(os.Stderr, "cairn-shim is started by cairnd, as `cairn-shim shim --exec-dir DIR`; it has no commands of its own")
	os.Exit(2)
}
