package statemachine

import (
	"errors"
	"strings"
	"testing"

	"github.com/cairn-run/cairn/internal/errdefs"
)

func TestValidateCreate_RefusesWhatCouldNeverRun(t *testing.T) {
	ok := CreateRequest{Image: "busybox", Command: []string{"true"}}
	with := func(f func(*CreateRequest)) CreateRequest {
		r := ok
		r.Command = append([]string(nil), ok.Command...)
		f(&r)
		return r
	}
	huge := strings.Repeat("x", 1<<20)
	cases := []struct {
		what string
		req  CreateRequest
		bad  bool
	}{
		{"plain", ok, false},
		{"name", with(func(r *CreateRequest) { r.Name = "web-1" }), false},
		{"name of 3 hex digits", with(func(r *CreateRequest) { r.Name = "abc" }), false},
		{"name of 65 hex digits", with(func(r *CreateRequest) { r.Name = strings.Repeat("a", 65) }), false},
		{"upper-case hex name", with(func(r *CreateRequest) { r.Name = "CAFE" }), false},
		{"name of 4 hex digits", with(func(r *CreateRequest) { r.Name = "cafe" }), true},
		{"name of 64 hex digits", with(func(r *CreateRequest) { r.Name = strings.Repeat("0", 64) }), true},
		{"name with a slash", with(func(r *CreateRequest) { r.Name = "a/b" }), true},
		{"huge name", with(func(r *CreateRequest) { r.Name = huge }), true},
		{"no image", with(func(r *CreateRequest) { r.Image = "" }), true},
		{"no command", with(func(r *CreateRequest) { r.Command = nil }), true},
		{"NUL in argument", with(func(r *CreateRequest) { r.Command = append(r.Command, "a\x00b") }), true},
		{"env without =", with(func(r *CreateRequest) { r.Env = []string{"KEY"} }), true},
		{"argument at MAX_ARG_STRLEN", with(func(r *CreateRequest) { r.Command = append(r.Command, strings.Repeat("a", MaxArgBytes)) }), false},
		{"argument over MAX_ARG_STRLEN", with(func(r *CreateRequest) { r.Command = append(r.Command, strings.Repeat("a", MaxArgBytes+1)) }), true},
		{"env entry over MAX_ARG_STRLEN", with(func(r *CreateRequest) { r.Env = []string{"K=" + strings.Repeat("a", MaxArgBytes)} }), true},
		{"too many arguments", with(func(r *CreateRequest) { r.Command = append(r.Command, make([]string, MaxArgs)...) }), true},
		{"too many env entries", with(func(r *CreateRequest) { r.Env = make([]string, MaxEnv+1) }), true},
		{"total over the limit", with(func(r *CreateRequest) {
			for range MaxArgsAndEnv/MaxArgBytes + 1 {
				r.Command = append(r.Command, strings.Repeat("a", MaxArgBytes-1))
			}
		}), true},
		{"total at the limit", with(func(r *CreateRequest) {
			r.Command = []string{strings.Repeat("a", MaxArgBytes-1)}
			for range MaxArgsAndEnv/MaxArgBytes - 1 {
				r.Env = append(r.Env, "K="+strings.Repeat("a", MaxArgBytes-3))
			}
		}), false},
	}
	for _, tc := range cases {
		err := ValidateCreate(tc.req)
		switch {
		case tc.bad && !errors.Is(err, errdefs.ErrInvalidArgument):
			t.Errorf("%s: got %v, want ErrInvalidArgument", tc.what, err)
		case !tc.bad && err != nil:
			t.Errorf("%s: refused: %v", tc.what, err)
		case err != nil && len(err.Error()) > errdefs.MaxQuoted+200:
			t.Errorf("%s: error echoes %d bytes: %.300s...", tc.what, len(err.Error()), err)
		}
	}
}

func TestParseSignal_NamesNumbersAndRefusals(t *testing.T) {
	for in, want := range map[string]int{"": 9, "TERM": 15, "sigterm": 15, "SIGKILL": 9, "2": 2} {
		if got, err := ParseSignal(in); err != nil || int(got) != want {
			t.Errorf("%q: got %v %v, want %d", in, got, err, want)
		}
	}
	for _, in := range []string{"0", "65", "NOPE", strings.Repeat("X", 1<<20)} {
		_, err := ParseSignal(in)
		if !errors.Is(err, errdefs.ErrInvalidArgument) || len(err.Error()) > errdefs.MaxQuoted+100 {
			t.Errorf("%.20q: got %.300v", in, err)
		}
	}
}
