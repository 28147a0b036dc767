package statemachine_test

import (
	"errors"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/cairn-run/cairn/internal/errdefs"
	sm "github.com/cairn-run/cairn/statemachine"
)

func TestMergeConfig_LikeDocker(t *testing.T) {
	img := sm.ImageConfig{Entrypoint: []string{"/entry", "-x"}, Cmd: []string{"default", "arg"}, Env: []string{"PATH=/img", "A=1", "B=2"},
		WorkingDir: "rel/dir", User: "app", StopSignal: "usr1", ExposedPorts: []string{"90/udp", "80/tcp"}, Volumes: []string{"/v"}, Labels: map[string]string{"k": "v"}}
	none := &[]string{}
	other := &[]string{"/other"}
	for _, tt := range []struct {
		name    string
		img     sm.ImageConfig
		req     sm.CreateRequest
		command string
		env     string
		workdir string
		user    string
	}{
		{"the image's entrypoint and cmd", img, sm.CreateRequest{}, "/entry -x default arg", "PATH=/img A=1 B=2", "/rel/dir", "app"},
		{"arguments replace cmd", img, sm.CreateRequest{Command: []string{"mine"}}, "/entry -x mine", "PATH=/img A=1 B=2", "/rel/dir", "app"},
		{"--entrypoint drops the image's cmd", img, sm.CreateRequest{Entrypoint: other}, "/other", "PATH=/img A=1 B=2", "/rel/dir", "app"},
		{"--entrypoint with arguments", img, sm.CreateRequest{Entrypoint: other, Command: []string{"a"}}, "/other a", "PATH=/img A=1 B=2", "/rel/dir", "app"},
		{"--entrypoint '' runs the arguments", img, sm.CreateRequest{Entrypoint: none, Command: []string{"sh"}}, "sh", "PATH=/img A=1 B=2", "/rel/dir", "app"},
		{"-e replaces by key and appends", img, sm.CreateRequest{Env: []string{"B=override", "C=3", "A="}}, "/entry -x default arg", "PATH=/img A= B=override C=3", "/rel/dir", "app"},
		{"-w and -u override", img, sm.CreateRequest{WorkingDir: "/w", User: "0:0"}, "/entry -x default arg", "PATH=/img A=1 B=2", "/w", "0:0"},
		{"an image without config", sm.ImageConfig{}, sm.CreateRequest{Command: []string{"true"}}, "true", "", "", ""},
		{"workdir / is the default", sm.ImageConfig{WorkingDir: "/"}, sm.CreateRequest{Command: []string{"true"}}, "true", "", "", ""},
	} {
		command, env, cfg, err := sm.MergeConfig(tt.img, tt.req)
		if err != nil {
			t.Errorf("%s: %v", tt.name, err)
			continue
		}
		if got := strings.Join(command, " "); got != tt.command {
			t.Errorf("%s: command %q, want %q", tt.name, got, tt.command)
		}
		if got := strings.Join(env, " "); got != tt.env {
			t.Errorf("%s: env %q, want %q", tt.name, got, tt.env)
		}
		if cfg.WorkingDir != tt.workdir || cfg.User != tt.user {
			t.Errorf("%s: workdir %q user %q, want %q %q", tt.name, cfg.WorkingDir, cfg.User, tt.workdir, tt.user)
		}
	}
	_, _, cfg, _ := sm.MergeConfig(img, sm.CreateRequest{})
	if cfg.StopSignal != "SIGUSR1" || !slices.Equal(cfg.ExposedPorts, []string{"80/tcp", "90/udp"}) || cfg.Labels["k"] != "v" || cfg.Volumes[0] != "/v" {
		t.Errorf("recorded config %+v", cfg)
	}
	for name, tt := range map[string]struct {
		img sm.ImageConfig
		req sm.CreateRequest
	}{
		"no command at all":          {sm.ImageConfig{}, sm.CreateRequest{}},
		"an entrypoint cleared":      {img, sm.CreateRequest{Entrypoint: none}},
		"a relative -w":              {img, sm.CreateRequest{WorkingDir: "rel"}},
		"a bad stop signal":          {sm.ImageConfig{StopSignal: "SIGNOPE"}, sm.CreateRequest{Command: []string{"x"}}},
		"a user with a newline":      {img, sm.CreateRequest{User: "a\nb"}},
		"an overlong user":           {img, sm.CreateRequest{User: strings.Repeat("u", 600)}},
		"a workdir with a NUL":       {img, sm.CreateRequest{WorkingDir: "/a\x00b"}},
		"an empty first command arg": {sm.ImageConfig{}, sm.CreateRequest{Command: []string{""}}},
	} {
		if _, _, _, err := sm.MergeConfig(tt.img, tt.req); !errors.Is(err, errdefs.ErrInvalidArgument) {
			t.Errorf("%s: %v, want ErrInvalidArgument", name, err)
		}
	}
}

func TestCreate_TakesTheImagesConfigAndStopUsesItsSignal(t *testing.T) {
	h := newHarness(t)
	c, err := h.m.Create(bg, sm.CreateRequest{Image: "configured", Env: []string{"A=mine"}})
	if err != nil {
		t.Fatal(err)
	}
	if c.Image != "docker.io/library/configured:latest" || c.ImageID != fakeImages["configured"].ID {
		t.Errorf("image %q id %q", c.Image, c.ImageID)
	}
	if strings.Join(c.Command, " ") != "/entry default" || strings.Join(c.Env, " ") != "PATH=/img A=mine" {
		t.Errorf("command %q env %q", c.Command, c.Env)
	}
	if c.Config == nil || c.Config.WorkingDir != "/work" || c.Config.User != "app" || c.Config.StopSignal != "SIGUSR1" || c.Config.Labels["k"] != "v" {
		t.Fatalf("config %+v", c.Config)
	}
	if _, err := h.m.Start(bg, c.ID); err != nil {
		t.Fatal(err)
	}
	h.w.mu.Lock()
	spec := h.w.lastSpec
	h.w.mu.Unlock()
	if spec.Cwd != "/work" || spec.User != "app" {
		t.Errorf("run spec cwd %q user %q", spec.Cwd, spec.User)
	}
	// The image's VOLUME got an anonymous volume, recorded with the create
	// and handed to the runner.
	if len(c.Mounts) != 1 || len(c.Config.Volumes) != 1 || c.Mounts[0].Destination != c.Config.Volumes[0] || !c.Mounts[0].Anonymous || c.Mounts[0].Source == "" ||
		len(spec.Mounts) != 1 || spec.Mounts[0].Source != c.Mounts[0].Source {
		t.Errorf("mounts %+v, run spec's %+v", c.Mounts, spec.Mounts)
	}
	if v, ok := h.j.Volume(c.Mounts[0].Source); !ok || !v.Anonymous {
		t.Errorf("the anonymous volume %+v", v)
	}
	// The fake ignores SIGUSR1, so the stop ends with SIGKILL after its
	// grace: its first signal was the image's.
	if _, err := h.m.Stop(bg, c.ID, 10*time.Millisecond); err != nil {
		t.Fatal(err)
	}
	h.w.mu.Lock()
	signals := slices.Clone(h.w.signals)
	h.w.mu.Unlock()
	if len(signals) < 2 || signals[0] != syscall.SIGUSR1 || signals[len(signals)-1] != syscall.SIGKILL {
		t.Errorf("signals %v, want SIGUSR1 then SIGKILL", signals)
	}
	// The view survives a reopening of the journal: its config is in the
	// create's record.
	if err := h.j.Verify(); err != nil {
		t.Fatal(err)
	}
}
