package images

import (
	"errors"
	"slices"
	"testing"

	v1 "github.com/google/go-containerregistry/pkg/v1"

	"github.com/cairn-run/cairn/internal/errdefs"
)

func TestApplyChanges_LikeDockerCommit(t *testing.T) {
	base := func() v1.Config {
		return v1.Config{Cmd: []string{"sh"}, Entrypoint: []string{"/init"}, Env: []string{"PATH=/bin", "A=1"}}
	}
	for _, tt := range []struct {
		change string
		check  func(c v1.Config) bool
	}{
		{`CMD ["echo", "hi"]`, func(c v1.Config) bool { return slices.Equal(c.Cmd, []string{"echo", "hi"}) }},
		{`CMD echo hi`, func(c v1.Config) bool { return slices.Equal(c.Cmd, []string{"/bin/sh", "-c", "echo hi"}) }},
		{`ENTRYPOINT ["/bin/x"]`, func(c v1.Config) bool { return slices.Equal(c.Entrypoint, []string{"/bin/x"}) && c.Cmd == nil }},
		{`ENV A=2 B="two words"`, func(c v1.Config) bool {
			return slices.Equal(c.Env, []string{"PATH=/bin", "A=2", "B=two words"})
		}},
		{`ENV C some value`, func(c v1.Config) bool { return slices.Contains(c.Env, "C=some value") }},
		{`env lower=case`, func(c v1.Config) bool { return slices.Contains(c.Env, "lower=case") }},
		{`LABEL org.x=y`, func(c v1.Config) bool { return c.Labels["org.x"] == "y" }},
		{`WORKDIR /w`, func(c v1.Config) bool { return c.WorkingDir == "/w" }},
		{`USER 1000:1000`, func(c v1.Config) bool { return c.User == "1000:1000" }},
		{`STOPSIGNAL SIGINT`, func(c v1.Config) bool { return c.StopSignal == "SIGINT" }},
		{`EXPOSE 80 53/udp`, func(c v1.Config) bool {
			_, tcp := c.ExposedPorts["80/tcp"]
			_, udp := c.ExposedPorts["53/udp"]
			return tcp && udp
		}},
		{`VOLUME ["/data", "/logs"]`, func(c v1.Config) bool { _, d := c.Volumes["/data"]; _, l := c.Volumes["/logs"]; return d && l }},
	} {
		c := base()
		if err := ApplyChanges(&c, []string{tt.change}); err != nil || !tt.check(c) {
			t.Errorf("%s: %+v %v", tt.change, c, err)
		}
	}
	for _, bad := range []string{"RUN rm -rf /", "CMD", "ENV =x", `ENV A="unterminated`, "FROM scratch"} {
		c := base()
		if err := ApplyChanges(&c, []string{bad}); !errors.Is(err, errdefs.ErrInvalidArgument) {
			t.Errorf("%q: %v, want ErrInvalidArgument", bad, err)
		}
	}
}

func TestPlatformAndInsecureRules(t *testing.T) {
	if p, err := platformOf("linux/arm64/v8"); err != nil || p.Architecture != "arm64" || p.Variant != "v8" {
		t.Errorf("linux/arm64/v8: %+v %v", p, err)
	}
	for _, bad := range []string{"windows/amd64", "bogus", "/"} {
		if _, err := platformOf(bad); !errors.Is(err, errdefs.ErrInvalidArgument) {
			t.Errorf("%q: %v", bad, err)
		}
	}
	r := Registries{Insecure: []string{"reg.lan:5000"}}
	for _, tt := range []struct {
		host  string
		asked bool
		want  bool
	}{
		{"127.0.0.1:5000", true, true}, {"127.0.0.1:5000", false, false}, {"[::1]:5000", true, true},
		{"localhost:5000", true, true}, {"reg.lan:5000", false, true}, {"10.0.0.1:5000", true, false},
		{"registry-1.docker.io", true, false},
	} {
		if got := r.allowHTTP(tt.host, tt.asked); got != tt.want {
			t.Errorf("allowHTTP(%s, %v) = %v", tt.host, tt.asked, got)
		}
	}
}
