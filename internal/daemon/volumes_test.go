package daemon_test

import (
	"context"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"connectrpc.com/connect"

	cairnv1 "github.com/cairn-run/cairn/api/cairn/v1"
	"github.com/cairn-run/cairn/internal/daemon"
	"github.com/cairn-run/cairn/internal/testenv/scratch"
	sm "github.com/cairn-run/cairn/statemachine"
)

func volumeCreate(t testing.TB, e *scratch.Env, name string, labels map[string]string) *cairnv1.Volume {
	t.Helper()
	res, err := e.Volumes.Create(bg, connect.NewRequest(&cairnv1.VolumeServiceCreateRequest{Name: name, Labels: labels}))
	if err != nil {
		t.Fatalf("volume create %q: %v", name, err)
	}
	return res.Msg.Volume
}

func volumeGet(e *scratch.Env, name string) (*cairnv1.Volume, error) {
	res, err := e.Volumes.Get(bg, connect.NewRequest(&cairnv1.VolumeServiceGetRequest{Name: name}))
	if err != nil {
		return nil, err
	}
	return res.Msg.Volume, nil
}

func volumeRemove(e *scratch.Env, name string, force bool) error {
	_, err := e.Volumes.Remove(bg, connect.NewRequest(&cairnv1.VolumeServiceRemoveRequest{Name: name, Force: force}))
	return err
}

func volumeNames(t testing.TB, e *scratch.Env) []string {
	t.Helper()
	res, err := e.Volumes.List(bg, connect.NewRequest(&cairnv1.VolumeServiceListRequest{}))
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, v := range res.Msg.Volumes {
		names = append(names, v.Name)
	}
	return names
}

// assertVolumesWhole checks that the directories under <root>/volumes are
// exactly the listed volumes, each with its _data, and nothing is pending.
func assertVolumesWhole(t testing.TB, e *scratch.Env) {
	t.Helper()
	listed := volumeNames(t, e)
	entries, err := os.ReadDir(filepath.Join(e.Config.Root, "volumes"))
	if err != nil && !os.IsNotExist(err) {
		t.Fatal(err)
	}
	var onDisk []string
	for _, ent := range entries {
		onDisk = append(onDisk, ent.Name())
		if _, err := os.Stat(filepath.Join(e.Config.Root, "volumes", ent.Name(), "_data")); err != nil {
			t.Errorf("volume directory %s has no _data: %v", ent.Name(), err)
		}
	}
	if !slices.Equal(listed, onDisk) {
		t.Errorf("volumes listed %v, directories %v", listed, onDisk)
	}
	for _, name := range listed {
		if v, err := volumeGet(e, name); err != nil || v.PendingEvent != "" {
			t.Errorf("volume %s: %v, pending %q", name, err, v.GetPendingEvent())
		}
	}
}

func TestVolumes_CreateListInspectRemovePruneAreJournaled(t *testing.T) {
	e := scratch.NewBinaryDaemon(t)
	v := volumeCreate(t, e, "data", map[string]string{"team": "a"})
	if v.Name != "data" || v.Driver != "local" || v.Labels["team"] != "a" || v.Anonymous || v.CreatedAt == nil ||
		v.Mountpoint != filepath.Join(e.Config.Root, "volumes", "data", "_data") {
		t.Fatalf("created %+v", v)
	}
	if fi, err := os.Stat(v.Mountpoint); err != nil || !fi.IsDir() {
		t.Fatalf("mountpoint: %v", err)
	}
	// Creating it again returns it unchanged and writes nothing.
	before := len(historySeqs(t, e))
	if again := volumeCreate(t, e, "data", nil); again.Labels["team"] != "a" || !again.CreatedAt.AsTime().Equal(v.CreatedAt.AsTime()) {
		t.Fatalf("second create %+v", again)
	}
	if after := len(historySeqs(t, e)); after != before {
		t.Fatalf("a second create wrote %d records", after-before)
	}
	anon := volumeCreate(t, e, "", nil)
	if len(anon.Name) != 64 || !anon.Anonymous {
		t.Fatalf("anonymous volume %+v", anon)
	}
	if got := volumeNames(t, e); !slices.Equal(got, slices.Sorted(slices.Values([]string{"data", anon.Name}))) {
		t.Fatalf("list %v", got)
	}
	// Bad names, unknown volumes.
	for _, bad := range []string{"-x", "a", "a/b", "..", strings.Repeat("x", 300), "a b"} {
		if _, err := e.Volumes.Create(bg, connect.NewRequest(&cairnv1.VolumeServiceCreateRequest{Name: bad})); codeOf(err) != connect.CodeInvalidArgument {
			t.Errorf("create %q: %v, want InvalidArgument", bad, err)
		}
	}
	if _, err := volumeGet(e, "nope"); codeOf(err) != connect.CodeNotFound {
		t.Errorf("get of no volume: %v", err)
	}
	if err := volumeRemove(e, "nope", false); codeOf(err) != connect.CodeNotFound {
		t.Errorf("rm of no volume: %v", err)
	}
	if err := volumeRemove(e, "nope", true); err != nil {
		t.Errorf("rm -f of no volume: %v", err)
	}
	// Prune takes the anonymous one and leaves the named one; with all, both.
	res, err := e.Volumes.Prune(bg, connect.NewRequest(&cairnv1.VolumeServicePruneRequest{}))
	if err != nil || !slices.Equal(res.Msg.Removed, []string{anon.Name}) {
		t.Fatalf("prune: %v %v", res, err)
	}
	if err := os.WriteFile(filepath.Join(v.Mountpoint, "f"), []byte("x"), 0o644); err != nil {
		t.Fatal(err)
	}
	// The data survives a daemon kill.
	e.Kill()
	e.Start()
	if b, err := os.ReadFile(filepath.Join(v.Mountpoint, "f")); err != nil || string(b) != "x" {
		t.Fatalf("data after a kill: %q %v", b, err)
	}
	if err := volumeRemove(e, "data", false); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(e.Config.Root, "volumes", "data")); !os.IsNotExist(err) {
		t.Fatalf("removed volume's directory: %v", err)
	}
	assertVolumesWhole(t, e)
	// Every create and remove is in the journal as a volume's record.
	stream, err := e.Journal.History(bg, connect.NewRequest(&cairnv1.HistoryRequest{Object: "volume"}))
	if err != nil {
		t.Fatal(err)
	}
	var events []string
	for stream.Receive() {
		for _, r := range stream.Msg().Records {
			if r.Kind == cairnv1.RecordKind_RECORD_KIND_DONE && r.ObjectId == "data" {
				events = append(events, r.Event)
			}
		}
	}
	if !slices.Equal(events, []string{"volume-create", "volume-remove"}) {
		t.Fatalf("DONE records of data: %v (%v)", events, stream.Err())
	}
	checkJournalOffline(t, e)
}

// volumeCrashOutcome says, for each crash point of a volume operation,
// whether the volume exists once the daemon crashed there and recovered: a
// create whose directory is made rolls forward, a remove always finishes.
var volumeCrashOutcome = map[string]bool{
	"volume-create.after-intent": false, "volume-create.after-directory": true, "volume-create.before-done": true, "volume-create.after-done": true,
	"volume-remove.after-intent": false, "volume-remove.after-delete": false, "volume-remove.before-done": false, "volume-remove.after-done": false,
}

func TestCrashPoints_VolumeOperationsLeaveNothingHalfMade(t *testing.T) {
	for _, point := range sm.VolumeCrashPoints() {
		if _, ok := volumeCrashOutcome[point]; !ok {
			t.Errorf("volume crash point %s has no expected outcome in this test", point)
		}
		if !slices.Contains(daemon.CrashPoints(), point) {
			t.Errorf("volume crash point %s is not in daemon.CrashPoints", point)
		}
	}
	for _, point := range sm.VolumeCrashPoints() {
		t.Run(point, func(t *testing.T) {
			t.Parallel()
			e := scratch.NewBinaryDaemon(t)
			if event(point) == "volume-remove" {
				v := volumeCreate(t, e, "crash", nil)
				if err := os.WriteFile(filepath.Join(v.Mountpoint, "data"), []byte(point), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			e.Stop()
			e.StartWith("CAIRN_CRASH_AT=" + point)
			e.WaitServing()
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			var err error
			if event(point) == "volume-create" {
				_, err = e.Volumes.Create(ctx, connect.NewRequest(&cairnv1.VolumeServiceCreateRequest{Name: "crash"}))
			} else {
				_, err = e.Volumes.Remove(ctx, connect.NewRequest(&cairnv1.VolumeServiceRemoveRequest{Name: "crash"}))
			}
			e.WaitCrash(30 * time.Second)
			if err == nil {
				t.Logf("the operation completed before the crash (%s fires after the reply)", point)
			}
			e.Start()
			_, err = volumeGet(e, "crash")
			if present := err == nil; present != volumeCrashOutcome[point] {
				t.Errorf("after a crash at %s the volume exists: %v (%v), want %v", point, present, err, volumeCrashOutcome[point])
			} else if err != nil && codeOf(err) != connect.CodeNotFound {
				t.Errorf("get: %v", err)
			}
			assertVolumesWhole(t, e)
			// What recovery settled can be acted on again.
			if volumeCrashOutcome[point] {
				if err := volumeRemove(e, "crash", false); err != nil {
					t.Errorf("rm after recovery: %v", err)
				}
			} else {
				volumeCreate(t, e, "crash", nil)
			}
			checkJournalOffline(t, e)
		})
	}
}
