// Command mkbusybox writes the busybox rootfs tar that the demo and the
// tests use as their image (see internal/busybox).
//
//	go run ./scripts/mkbusybox OUT.tar
package main

import (
	"fmt"
	"os"

	"github.com/cairn-run/cairn/internal/busybox"
)

func main() {
	if len(os.Args) != 2 {
		fmt.Fprintln(os.Stderr, "usage: mkbusybox OUT.tar")
		os.Exit(2)
	}
	if err := busybox.WriteFile(os.Args[1], busybox.DefaultPath); err != nil {
		fmt.Fprintln(os.Stderr, "mkbusybox:", err)
		os.Exit(1)
	}
}
