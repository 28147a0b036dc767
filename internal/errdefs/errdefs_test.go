package errdefs

import (
	"errors"
	"strings"
	"testing"
)

func TestQuote_ShortInputIsQuotedWhole(t *testing.T) {
	if got := Quote("a\"b"); got != `"a\"b"` {
		t.Fatalf("got %s", got)
	}
}

func TestQuote_LongInputIsCut(t *testing.T) {
	long := strings.Repeat("é", 1000) // 2 bytes each
	got := Quote(long)
	if len(got) > MaxQuoted+40 {
		t.Fatalf("quoted %d bytes of a %d-byte input: %s", len(got), len(long), got)
	}
	if !strings.HasSuffix(got, "... (2000 bytes)") {
		t.Fatalf("got %s, want the full length noted", got)
	}
	if strings.Contains(got, `\x`) {
		t.Fatalf("cut inside a rune: %s", got)
	}
}

func TestCommandSentinelsClassify(t *testing.T) {
	if !errors.Is(ErrCommandNotFound, ErrInvalidArgument) {
		t.Error("ErrCommandNotFound is not an ErrInvalidArgument")
	}
	if !errors.Is(ErrCommandNotExecutable, ErrFailedPrecondition) {
		t.Error("ErrCommandNotExecutable is not an ErrFailedPrecondition")
	}
}
