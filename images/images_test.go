package images

import (
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"

	"github.com/cairn-run/cairn/internal/errdefs"
)

func rootfsWith(t *testing.T, files map[string]string) string {
	t.Helper()
	root := t.TempDir()
	for name, body := range files {
		p := filepath.Join(root, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if strings.HasPrefix(body, "->") {
			if err := os.Symlink(strings.TrimPrefix(body, "->"), p); err != nil {
				t.Fatal(err)
			}
			continue
		}
		if err := os.WriteFile(p, []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return root
}

const (
	passwd = "root:x:0:0:root:/root:/bin/sh\napp:x:1000:1000:app:/home/app:/bin/sh\n"
	group  = "root:x:0:\napp:x:1000:\nextra:x:2000:app\nwheel:x:10:root,app\n"
)

func TestResolveUser_ThroughTheImagesFiles(t *testing.T) {
	root := rootfsWith(t, map[string]string{"etc/passwd": passwd, "etc/group": group})
	for spec, want := range map[string]User{
		"app":        {UID: 1000, GID: 1000, AdditionalGIDs: []int{2000, 10}, Home: "/home/app"},
		"1000":       {UID: 1000, GID: 1000, AdditionalGIDs: []int{2000, 10}, Home: "/home/app"},
		"app:extra":  {UID: 1000, GID: 2000, AdditionalGIDs: []int{}, Home: "/home/app"},
		"1000:2000":  {UID: 1000, GID: 2000, AdditionalGIDs: []int{}, Home: "/home/app"},
		"4242":       {UID: 4242, GID: 0, AdditionalGIDs: []int{}, Home: "/"}, // numeric: no entry needed
		"4242:4343":  {UID: 4242, GID: 4343, AdditionalGIDs: []int{}, Home: "/"},
		"root:wheel": {UID: 0, GID: 10, AdditionalGIDs: []int{}, Home: "/root"},
	} {
		got, err := ResolveUser(root, spec)
		if err != nil || got.UID != want.UID || got.GID != want.GID || !slices.Equal(got.AdditionalGIDs, want.AdditionalGIDs) || got.Home != want.Home {
			t.Errorf("%s: %+v %v, want %+v", spec, got, err, want)
		}
	}
	for _, spec := range []string{"nobody-here", "app:nogroup", "-1", "99999999999"} {
		if _, err := ResolveUser(root, spec); !errors.Is(err, errdefs.ErrInvalidArgument) {
			t.Errorf("%s: %v, want InvalidArgument", spec, err)
		}
	}
}

func TestResolveUser_NeverLeavesTheRootfs(t *testing.T) {
	// An image whose /etc/passwd is an absolute symlink to the host's
	// shadow file: resolved inside the rootfs, where it is missing.
	root := rootfsWith(t, map[string]string{"etc/passwd": "->/etc/shadow", "etc/group": "->../../../../etc/group"})
	if _, err := ResolveUser(root, "root"); !errors.Is(err, errdefs.ErrInvalidArgument) {
		t.Fatalf("a name with the passwd link pointing out of the image: %v", err)
	}
	// The link resolves inside the image: its own file is read.
	root = rootfsWith(t, map[string]string{"etc/passwd": "->/usr/lib/passwd", "usr/lib/passwd": passwd})
	if u, err := ResolveUser(root, "app"); err != nil || u.UID != 1000 {
		t.Fatalf("a link inside the image: %+v %v", u, err)
	}
	// A directory or an oversized file is refused.
	root = rootfsWith(t, map[string]string{"etc/passwd/x": "x"})
	if _, err := ResolveUser(root, "app"); !errors.Is(err, errdefs.ErrInvalidArgument) {
		t.Fatalf("a directory as passwd: %v", err)
	}
	root = rootfsWith(t, map[string]string{"etc/passwd": strings.Repeat("x", maxUserFileBytes+1)})
	if _, err := ResolveUser(root, "app"); !errors.Is(err, errdefs.ErrInvalidArgument) {
		t.Fatalf("an oversized passwd: %v", err)
	}
	// No passwd at all: numeric ids still work.
	if u, err := ResolveUser(t.TempDir(), "7:8"); err != nil || u.UID != 7 || u.GID != 8 {
		t.Fatalf("numeric ids without passwd: %+v %v", u, err)
	}
}

func TestHistory_MatchesLayersToTheirSteps(t *testing.T) {
	h := func(s string) v1.Hash { x, _ := v1.NewHash("sha256:" + strings.Repeat(s, 64)); return x }
	created := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	cfg := &v1.ConfigFile{
		RootFS: v1.RootFS{Type: "layers", DiffIDs: []v1.Hash{h("a"), h("b")}},
		History: []v1.History{
			{CreatedBy: "ADD rootfs", Created: v1.Time{Time: created}},
			{CreatedBy: "ENV X=1", EmptyLayer: true},
			{CreatedBy: "RUN make"},
		},
	}
	got := History(cfg, map[string]int64{h("a").String(): 10, h("b").String(): 20})
	if len(got) != 3 || got[0].CreatedBy != "RUN make" || got[0].DiffID != h("b").String() || got[0].Size != 20 ||
		!got[1].EmptyLayer || got[1].DiffID != "" || got[2].DiffID != h("a").String() || !got[2].Created.Equal(created) {
		t.Fatalf("history %+v", got)
	}
	// No history (a flat import): a line per layer.
	cfg.History = nil
	if got := History(cfg, nil); len(got) != 2 || got[0].DiffID != h("b").String() {
		t.Fatalf("history without history %+v", got)
	}
}

func TestRunConfig_SortsSetsAndCopies(t *testing.T) {
	cfg, err := ParseConfig([]byte(`{"config":{"Entrypoint":["a"],"Cmd":["b"],"ExposedPorts":{"90/udp":{},"80/tcp":{}},"Volumes":{"/v":{}},"StopSignal":"SIGINT","User":"u","WorkingDir":"/w","Labels":{"k":"v"}}}`))
	if err != nil {
		t.Fatal(err)
	}
	rc := RunConfig(cfg)
	if !slices.Equal(rc.ExposedPorts, []string{"80/tcp", "90/udp"}) || rc.User != "u" || rc.StopSignal != "SIGINT" || rc.Labels["k"] != "v" || rc.Entrypoint[0] != "a" {
		t.Fatalf("%+v", rc)
	}
	if _, err := ParseConfig([]byte("{")); !errors.Is(err, errdefs.ErrInvalidArgument) {
		t.Fatalf("a broken config: %v", err)
	}
}
