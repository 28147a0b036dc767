package executor

import (
	"strconv"
	"strings"
	"testing"
)

func TestParseMapsHeader(t *testing.T) {
	for _, tc := range []struct {
		line             string
		isHeader, wantOK bool
		want             [2]uintptr
	}{
		{"00400000-00402000 r--p 00000000 fe:00 123 /usr/bin/cairn", true, true, [2]uintptr{0x400000, 0x402000}},
		{"00402000-00706000 r-xp 00002000 fe:00 123 /usr/bin/cairn", true, true, [2]uintptr{0x402000, 0x706000}},
		{"7f00-8f00 r-xp 00000000 fe:00 9 /usr/lib/x86_64-linux-gnu/libc.so.6", true, true, [2]uintptr{0x7f00, 0x8f00}},
		{"00a67000-00a68000 rw-p 00667000 fe:00 123 /usr/bin/cairn", true, false, [2]uintptr{0xa67000, 0xa68000}},
		{"7f00-8f00 r--s 00000000 00:01 5 /memfd:x (deleted)", true, false, [2]uintptr{0x7f00, 0x8f00}},
		{"7f00-8f00 r--p 00000000 00:00 0 ", true, false, [2]uintptr{0x7f00, 0x8f00}},
		{"7ffd-7ffe r-xp 00000000 00:00 0 [vdso]", true, false, [2]uintptr{0x7ffd, 0x7ffe}},
		{"7f00-8f00 ---p 00000000 fe:00 9 /usr/lib/x86_64-linux-gnu/libc.so.6", true, false, [2]uintptr{0x7f00, 0x8f00}},
		{"Rss:                 100 kB", false, false, [2]uintptr{}},
		{"Anonymous:             0 kB", false, false, [2]uintptr{}},
		{"VmFlags: rd ex mr mw me", false, false, [2]uintptr{}},
	} {
		r, isHeader, ok := parseMapsHeader(tc.line)
		if isHeader != tc.isHeader || ok != tc.wantOK || (isHeader && r != tc.want) {
			t.Errorf("parseMapsHeader(%q) = %x, %v, %v; want %x, %v, %v", tc.line, r, isHeader, ok, tc.want, tc.isHeader, tc.wantOK)
		}
	}
}

// dropReadOnlyFilePages must never hurt the process: after it runs, code,
// read-only data and relocated (RELRO) data all still work.
func TestDropReadOnlyFilePages_ProcessKeepsWorking(t *testing.T) {
	before := fmtSprint(42)
	dropReadOnlyFilePages()
	if after := fmtSprint(42); after != before {
		t.Fatalf("formatting changed: %q -> %q", before, after)
	}
}

func fmtSprint(n int) string {
	return strconv.Itoa(n) + strings.Repeat("!", n%3)
}
