package buildinfo

import (
	"runtime/debug"
	"strings"
	"testing"
)

func TestFromBuildInfo(t *testing.T) {
	cases := []struct {
		bi   debug.BuildInfo
		want string
	}{
		{debug.BuildInfo{GoVersion: "go1.26.8", Main: debug.Module{Version: "(devel)"}, Settings: []debug.BuildSetting{
			{Key: "vcs.revision", Value: "0123456789abcdef0123"}, {Key: "vcs.time", Value: "2026-12-01T10:00:00Z"}, {Key: "vcs.modified", Value: "true"},
		}}, "(devel) (0123456789ab, 2026-12-01T10:00:00Z, modified) go1.26.8"},
		{debug.BuildInfo{GoVersion: "go1.26.8", Main: debug.Module{Version: "v1.2.3"}, Settings: []debug.BuildSetting{{Key: "vcs.modified", Value: "false"}}}, "v1.2.3 go1.26.8"},
		{debug.BuildInfo{}, "unknown"},
	}
	for _, tc := range cases {
		if got := FromBuildInfo(&tc.bi).String(); got != tc.want {
			t.Errorf("got %q, want %q", got, tc.want)
		}
	}
	lines := FromBuildInfo(&cases[0].bi).Lines("  ")
	for _, want := range []string{"  Revision:   0123456789abcdef0123\n", "  Modified:   yes\n", "  Go version: go1.26.8\n"} {
		if !strings.Contains(lines, want) {
			t.Errorf("Lines lacks %q:\n%s", want, lines)
		}
	}
	if got := Read(); got.GoVersion == "" {
		t.Errorf("Read() = %+v, want the test binary's Go version", got)
	}
}
