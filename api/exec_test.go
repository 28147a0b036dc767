package api

import (
	"bytes"
	"errors"
	"testing"

	"github.com/cairn-run/cairn/internal/errdefs"
)

func TestParseDetachKeys(t *testing.T) {
	for in, want := range map[string][]byte{
		"":                nil,
		"ctrl-p,ctrl-q":   {0x10, 0x11},
		"a,ctrl-@,ctrl-_": {'a', 0, 0x1f},
		"ctrl-[":          {0x1b},
	} {
		got, err := parseDetachKeys(in)
		if err != nil || !bytes.Equal(got, want) {
			t.Errorf("%q: %v %v, want %v", in, got, err, want)
		}
	}
	for _, bad := range []string{"ctrl-", "ctrl-1", "ab", ",", "a,,b", "ctrl-p," + string(bytes.Repeat([]byte("a,"), 20)) + "a"} {
		if _, err := parseDetachKeys(bad); !errors.Is(err, errdefs.ErrInvalidArgument) {
			t.Errorf("%q: %v, want InvalidArgument", bad, err)
		}
	}
}

func TestDetachScanner_FindsTheKeysAcrossPiecesAndPassesTheRest(t *testing.T) {
	keys := []byte{0x10, 0x11}
	for _, tc := range []struct {
		name   string
		pieces []string
		pass   string
		detach bool
	}{
		{"plain input", []string{"ls\n", "pwd\n"}, "ls\npwd\n", false},
		{"the keys in one piece", []string{"ab\x10\x11cd"}, "ab", true},
		{"the keys split across pieces", []string{"ab\x10", "\x11cd"}, "ab", true},
		{"a first key alone passes on", []string{"a\x10", "b"}, "a\x10b", false},
		{"a first key twice", []string{"\x10\x10\x11"}, "\x10", true},
		{"held back at the end", []string{"x\x10"}, "x", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			d := &detachScanner{keys: keys}
			var pass []byte
			detach := false
			for _, p := range tc.pieces {
				out, done := d.scan([]byte(p))
				pass = append(pass, out...)
				if done {
					detach = true
					break
				}
			}
			if string(pass) != tc.pass || detach != tc.detach {
				t.Fatalf("passed %q detach %v, want %q %v", pass, detach, tc.pass, tc.detach)
			}
		})
	}
	if out, done := (&detachScanner{}).scan([]byte("\x10\x11")); done || string(out) != "\x10\x11" {
		t.Fatalf("without keys: %q %v", out, done)
	}
}
