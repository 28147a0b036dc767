package daemon_test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"connectrpc.com/connect"

	cairnv1 "github.com/cairn-run/cairn/api/cairn/v1"
	"github.com/cairn-run/cairn/internal/testenv"
	"github.com/cairn-run/cairn/internal/testenv/scratch"
)

func volumeMount(src, dst string, ro bool) *cairnv1.Mount {
	return &cairnv1.Mount{Type: cairnv1.MountType_MOUNT_TYPE_VOLUME, Source: src, Destination: dst, ReadOnly: ro}
}

func bindMount(src, dst string, ro bool) *cairnv1.Mount {
	return &cairnv1.Mount{Type: cairnv1.MountType_MOUNT_TYPE_BIND, Source: src, Destination: dst, ReadOnly: ro}
}

// sh runs a busybox shell script in a new auto-removed container with mounts.
func sh(t testing.TB, e *scratch.Env, script string, mounts ...*cairnv1.Mount) (string, int32) {
	t.Helper()
	out, code, err := runOutput(t, e, &cairnv1.CreateRequest{Image: "busybox", AutoRemove: true, Command: []string{"sh", "-c", script}, Mounts: mounts})
	if err != nil {
		t.Fatalf("run %q: %v", script, err)
	}
	return out, code
}

// assertNoHostMountUnder fails if the host's mount table shows anything
// under dir: libcontainer mounts volumes and binds inside the container's
// own mount namespace only.
func assertNoHostMountUnder(t testing.TB, dir string) {
	t.Helper()
	data, err := os.ReadFile("/proc/self/mountinfo")
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(string(data), "\n") {
		if f := strings.Fields(line); len(f) > 4 && strings.HasPrefix(f[4], dir) {
			t.Errorf("host mount under %s: %s", dir, line)
		}
	}
}

func TestMounts_ANamedVolumeOutlivesItsContainersAndCannotBeRemovedWhileUsed(t *testing.T) {
	e := scratch.NewDaemon(t)
	// A volume that does not exist is made by the create, as Docker does.
	if out, code := sh(t, e, "echo hello > /data/f && cat /data/f", volumeMount("data", "/data", false)); code != 0 || out != "hello\n" {
		t.Fatalf("write: %q %d", out, code)
	}
	v, err := volumeGet(e, "data")
	if err != nil || v.Anonymous || len(v.UsedBy) != 0 {
		t.Fatalf("the volume the create made: %+v %v", v, err)
	}
	if out, code := sh(t, e, "cat /data/f", volumeMount("data", "/data", true)); code != 0 || out != "hello\n" {
		t.Fatalf("read from a new container: %q %d", out, code)
	}
	// Read-only inside.
	if out, code := sh(t, e, "echo x > /data/g", volumeMount("data", "/data", true)); code == 0 || !strings.Contains(out, "Read-only") {
		t.Fatalf("write to a read-only volume: %q %d", out, code)
	}
	// A stopped container still uses it: rm and rm -f are refused, naming it.
	res, err := e.Containers.Create(bg, connect.NewRequest(&cairnv1.CreateRequest{Image: "busybox", Command: []string{"true"}, Mounts: []*cairnv1.Mount{volumeMount("data", "/d", false)}}))
	if err != nil {
		t.Fatal(err)
	}
	user := res.Msg.Container
	if len(user.Mounts) != 1 || user.Mounts[0].Source != "data" || user.Mounts[0].Destination != "/d" {
		t.Fatalf("mounts of the create: %v", user.Mounts)
	}
	if got := get(t, e, user.Id); len(got.Mounts) != 1 || got.Mounts[0].HostPath != v.Mountpoint {
		t.Fatalf("inspect mounts: %v", got.Mounts)
	}
	for _, force := range []bool{false, true} {
		err := volumeRemove(e, "data", force)
		if codeOf(err) != connect.CodeFailedPrecondition || !strings.Contains(err.Error(), user.Id[:12]) {
			t.Fatalf("rm (force %v) of a volume in use: %v", force, err)
		}
	}
	// Data survives the daemon's restart, and rm -v of a named volume's user.
	e.Restart()
	if _, err := e.Containers.Remove(bg, connect.NewRequest(&cairnv1.RemoveRequest{Id: user.Id, RemoveVolumes: true})); err != nil {
		t.Fatal(err)
	}
	if b, err := os.ReadFile(filepath.Join(v.Mountpoint, "f")); err != nil || string(b) != "hello\n" {
		t.Fatalf("data after rm -v of a user: %q %v", b, err)
	}
	if err := volumeRemove(e, "data", false); err != nil {
		t.Fatal(err)
	}
	assertNoHostMountUnder(t, e.Config.Root)
	assertVolumesWhole(t, e)
}

func TestMounts_BindAndTmpfs(t *testing.T) {
	e := scratch.NewDaemon(t)
	host := t.TempDir()
	if err := os.WriteFile(filepath.Join(host, "in"), []byte("from host"), 0o644); err != nil {
		t.Fatal(err)
	}
	out, code := sh(t, e, "cat /host/in && echo from container > /host/out", bindMount(host, "/host", false))
	if code != 0 || out != "from host" {
		t.Fatalf("bind: %q %d", out, code)
	}
	if b, err := os.ReadFile(filepath.Join(host, "out")); err != nil || string(b) != "from container\n" {
		t.Fatalf("written through the bind: %q %v", b, err)
	}
	if _, code := sh(t, e, "touch /host/x", bindMount(host, "/host", true)); code == 0 {
		t.Fatal("wrote to a read-only bind")
	}
	tmpfs := &cairnv1.Mount{Type: cairnv1.MountType_MOUNT_TYPE_TMPFS, Destination: "/scratch", TmpfsSize: 8 << 20}
	out, code = sh(t, e, "grep ' /scratch ' /proc/mounts && echo x > /scratch/f && cat /scratch/f", tmpfs)
	if code != 0 || !strings.Contains(out, "tmpfs /scratch tmpfs") || !strings.Contains(out, "size=8192k") || !strings.HasSuffix(out, "x\n") {
		t.Fatalf("tmpfs: %q %d", out, code)
	}
	assertNoHostMountUnder(t, host)
}

func TestMounts_BadMountsAreRefusedBeforeAnythingChanges(t *testing.T) {
	e := scratch.NewDaemon(t)
	before := historySeqs(t, e)
	for name, mounts := range map[string][]*cairnv1.Mount{
		"a bind source that does not exist": {volumeMount("fresh", "/fresh", false), bindMount("/nonexistent/cairn", "/x", false)},
		"a relative bind source":            {bindMount("relative/path", "/x", false)},
		"a relative destination":            {volumeMount("fresh", "data", false)},
		"the root as destination":           {volumeMount("fresh", "/", false)},
		"a bad volume name":                 {volumeMount("-bad", "/x", false)},
		"no type":                           {{Source: "fresh", Destination: "/x"}},
		"twice the same destination":        {volumeMount("fresh", "/x", false), volumeMount("other", "/x", false)},
	} {
		_, err := e.Containers.Create(bg, connect.NewRequest(&cairnv1.CreateRequest{Image: "busybox", Command: []string{"true"}, Mounts: mounts}))
		if codeOf(err) != connect.CodeInvalidArgument {
			t.Errorf("%s: %v, want InvalidArgument", name, err)
		}
	}
	if after := historySeqs(t, e); len(after) != len(before) {
		t.Fatalf("refused creates wrote %d records", len(after)-len(before))
	}
	if names := volumeNames(t, e); len(names) != 0 || len(list(t, e)) != 0 {
		t.Fatalf("refused creates left volumes %v or containers", names)
	}
}

func TestMounts_AnImagesVolumeGetsAnAnonymousVolumeFilledFromTheImageThatRmVRemoves(t *testing.T) {
	ti := testenv.Images(t)
	e := scratch.NewDaemon(t)
	loadFile(t, e, ti.LayoutTar)
	res, err := e.Containers.Create(bg, connect.NewRequest(&cairnv1.CreateRequest{Image: testenv.MultiImage, OverrideEntrypoint: true, User: "root",
		Command: []string{"sh", "-c", "cat " + testenv.MultiVolumeFile + "; stat -c %u /data/sub; echo mine > /data/new"}}))
	if err != nil {
		t.Fatal(err)
	}
	c := res.Msg.Container
	if len(c.Mounts) != 1 || c.Mounts[0].Destination != testenv.MultiVolume || !c.Mounts[0].Anonymous || len(c.Mounts[0].Source) != 64 {
		t.Fatalf("mounts of a create of an image with a VOLUME: %v", c.Mounts)
	}
	name := c.Mounts[0].Source
	if v, err := volumeGet(e, name); err != nil || !v.Anonymous || len(v.UsedBy) != 1 {
		t.Fatalf("the anonymous volume: %+v %v", v, err)
	}
	start(t, e, c.Id)
	if _, err := e.Containers.Wait(bg, connect.NewRequest(&cairnv1.WaitRequest{Id: c.Id})); err != nil {
		t.Fatal(err)
	}
	if out := logOf(t, e, c.Id); out != testenv.MultiVolumeBody+"1000\n" {
		t.Fatalf("inside: %q", out)
	}
	// A second start finds the volume as the first left it: filled once.
	start(t, e, c.Id)
	if _, err := e.Containers.Wait(bg, connect.NewRequest(&cairnv1.WaitRequest{Id: c.Id})); err != nil {
		t.Fatal(err)
	}
	v, _ := volumeGet(e, name)
	if b, err := os.ReadFile(filepath.Join(v.Mountpoint, "new")); err != nil || string(b) != "mine\n" {
		t.Fatalf("written into the volume: %q %v", b, err)
	}
	// A -v over the image's VOLUME replaces the anonymous one.
	named, err := e.Containers.Create(bg, connect.NewRequest(&cairnv1.CreateRequest{Image: testenv.MultiImage, Command: []string{"true"},
		Mounts: []*cairnv1.Mount{volumeMount("mine", testenv.MultiVolume, false)}}))
	if err != nil || len(named.Msg.Container.Mounts) != 1 || named.Msg.Container.Mounts[0].Source != "mine" {
		t.Fatalf("create with -v over the image's volume: %v %v", named, err)
	}
	// rm keeps the anonymous volume; rm -v of the other removes nothing named.
	if _, err := e.Containers.Remove(bg, connect.NewRequest(&cairnv1.RemoveRequest{Id: named.Msg.Container.Id, RemoveVolumes: true})); err != nil {
		t.Fatal(err)
	}
	if _, err := volumeGet(e, "mine"); err != nil {
		t.Fatalf("rm -v removed a named volume: %v", err)
	}
	if _, err := e.Containers.Remove(bg, connect.NewRequest(&cairnv1.RemoveRequest{Id: c.Id, RemoveVolumes: true})); err != nil {
		t.Fatal(err)
	}
	if _, err := volumeGet(e, name); codeOf(err) != connect.CodeNotFound {
		t.Fatalf("rm -v left the anonymous volume: %v", err)
	}
	if _, err := os.Stat(filepath.Join(e.Config.Root, "volumes", name)); !os.IsNotExist(err) {
		t.Fatalf("its directory: %v", err)
	}
	// run --rm removes its anonymous volume too, as Docker's does.
	if _, code, err := runOutput(t, e, &cairnv1.CreateRequest{Image: testenv.MultiImage, AutoRemove: true, OverrideEntrypoint: true, Command: []string{"true"}}); err != nil || code != 0 {
		t.Fatalf("run --rm: %d %v", code, err)
	}
	if names := volumeNames(t, e); len(names) != 1 || names[0] != "mine" {
		t.Fatalf("volumes left: %v", names)
	}
	assertNoHostMountUnder(t, e.Config.Root)
	assertVolumesWhole(t, e)
}

// logOf is a container's whole log.
func logOf(t testing.TB, e *scratch.Env, id string) string {
	t.Helper()
	stream, err := e.Containers.Logs(bg, connect.NewRequest(&cairnv1.LogsRequest{Id: id}))
	if err != nil {
		t.Fatal(err)
	}
	var out strings.Builder
	for stream.Receive() {
		for _, entry := range stream.Msg().Entries {
			out.Write(entry.Data)
		}
	}
	if err := stream.Err(); err != nil {
		t.Fatal(err)
	}
	return out.String()
}
