package statemachine_test

import (
	"errors"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	bolt "go.etcd.io/bbolt"

	"github.com/cairn-run/cairn/internal/errdefs"
	"github.com/cairn-run/cairn/internal/schema"
	"github.com/cairn-run/cairn/journal"
	sm "github.com/cairn-run/cairn/statemachine"
)

var imageID = "sha256:" + strings.Repeat("d", 64)

func newImages(t *testing.T) (*sm.Images, *journal.Journal, *[]string) {
	t.Helper()
	j, err := journal.Open(filepath.Join(t.TempDir(), "cairn.db"), journal.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := j.Verify(); err != nil {
			t.Errorf("journal does not fold to its view: %v", err)
		}
		_ = j.Close()
	})
	var crashes []string
	im := sm.NewImages(sm.ImageDeps{Journal: j, CrashPoint: func(name string) { crashes = append(crashes, name) }})
	return im, j, &crashes
}

// loadOp is a load whose steps and outcome record what they did in log.
func loadOp(log *[]string, failStep, failWrite error) sm.ImageOp {
	return sm.ImageOp{
		Event: sm.EventLoad, ID: imageID, Refs: []string{"docker.io/library/x:latest"},
		Layers: []sm.LayerClaim{{ChainID: "sha256:c", CacheID: strings.Repeat("1", 32)}},
		Do:     map[string]func() error{"layers": func() error { *log = append(*log, "install"); return failStep }},
		Undo:   map[string]func() error{"layers": func() error { *log = append(*log, "discard"); return nil }},
		Outcome: func() (sm.Write, error) {
			return schema.Op(func(*bolt.Tx) error {
				if failWrite != nil {
					return failWrite
				}
				*log = append(*log, "register")
				return nil
			}), nil
		},
		After: func() { *log = append(*log, "after") },
	}
}

func records(t *testing.T, j *journal.Journal) []string {
	t.Helper()
	var out []string
	_ = j.RecordsOf(0, journal.RecordFilter{Object: sm.ObjectImage}, func(r sm.Record) error {
		out = append(out, string(r.Kind)+" "+string(r.Event))
		return nil
	})
	return out
}

func TestImages_ALoadIsIntentStepsAndDoneWithItsRegistration(t *testing.T) {
	im, j, crashes := newImages(t)
	var log []string
	v, err := im.Run(bg, loadOp(&log, nil, nil))
	if err != nil {
		t.Fatal(err)
	}
	if v.State != sm.StatePresent || v.ID != imageID {
		t.Fatalf("view %+v", v)
	}
	if strings.Join(log, ",") != "install,register,after" {
		t.Fatalf("side effects %v", log)
	}
	if got := records(t, j); strings.Join(got, ",") != "INTENT load,DONE load" {
		t.Fatalf("records %v", got)
	}
	var intent sm.Record
	_ = j.RecordsOf(0, journal.RecordFilter{Object: sm.ObjectImage}, func(r sm.Record) error {
		if r.Kind == sm.KindIntent {
			intent = r
		}
		return nil
	})
	if intent.Args == nil || intent.Args.Layers[0].CacheID != strings.Repeat("1", 32) || intent.Args.Refs[0] != "docker.io/library/x:latest" {
		t.Fatalf("the intent does not say what lands: %+v", intent.Args)
	}
	if want := []string{"load.after-intent", "load.after-layers", "load.before-done", "load.after-done"}; !slices.Equal(*crashes, want) {
		t.Fatalf("crash points hit %v, want %v", *crashes, want)
	}
	for _, p := range *crashes {
		if !slices.Contains(sm.ImageCrashPoints(), p) {
			t.Errorf("crash point %s is not listed", p)
		}
	}
	// Loading it again is legal: a present image may get more names.
	if _, err := im.Run(bg, loadOp(&log, nil, nil)); err != nil {
		t.Fatal(err)
	}
}

func TestImages_AFailedStepOrARefusedRegistrationIsUndoneAndFailed(t *testing.T) {
	for name, fails := range map[string][2]error{
		"step":         {errors.New("disk on fire"), nil},
		"registration": {nil, errdefs.ErrAlreadyExists},
	} {
		t.Run(name, func(t *testing.T) {
			im, j, _ := newImages(t)
			var log []string
			_, err := im.Run(bg, loadOp(&log, fails[0], fails[1]))
			if err == nil {
				t.Fatal("no error")
			}
			if fails[1] != nil && !errors.Is(err, fails[1]) {
				t.Errorf("error %v does not wrap the store's", err)
			}
			if strings.Contains(strings.Join(log, ","), "register") || strings.Contains(strings.Join(log, ","), "after") || !slices.Contains(log, "discard") {
				t.Fatalf("side effects %v", log)
			}
			if got := records(t, j); strings.Join(got, ",") != "INTENT load,FAILED load" {
				t.Fatalf("records %v", got)
			}
			if _, ok := j.Image(imageID); ok {
				t.Fatal("a failed first load left a view")
			}
		})
	}
}

func TestImages_RulesAndPendingIntentsRefuseBeforeAnythingIsWritten(t *testing.T) {
	im, j, _ := newImages(t)
	var log []string
	if _, err := j.Append(sm.Record{Kind: sm.KindIntent, Object: sm.ObjectImage, ObjectID: imageID, Event: sm.EventLoad, From: sm.StateNone, To: sm.StatePresent}); err != nil {
		t.Fatal(err)
	}
	before := j.LastSeq()
	if _, err := im.Run(bg, loadOp(&log, nil, nil)); !errors.Is(err, errdefs.ErrFailedPrecondition) || !strings.Contains(err.Error(), "recovery") {
		t.Fatalf("an op over a pending intent: %v", err)
	}
	if _, err := im.Run(bg, sm.ImageOp{Event: sm.EventStart, ID: imageID, Outcome: func() (sm.Write, error) { return nil, nil }}); !errors.Is(err, errdefs.ErrInvalidArgument) {
		t.Fatalf("a container event: %v", err)
	}
	if j.LastSeq() != before || len(log) != 0 {
		t.Fatal("a refused op wrote or did something")
	}
	for _, tt := range []struct {
		from  sm.State
		event sm.Event
		to    sm.State
	}{
		{sm.StateNone, sm.EventLoad, sm.StatePresent}, {sm.StatePresent, sm.EventImport, sm.StatePresent},
		{sm.StatePresent, sm.EventTag, sm.StatePresent}, {sm.StateNone, sm.EventUntag, sm.StatePresent},
		{sm.StatePresent, sm.EventDelete, sm.StateRemoved},
	} {
		if to, err := sm.ImageTarget(tt.from, tt.event); err != nil || to != tt.to {
			t.Errorf("%s from %q: %q %v", tt.event, tt.from, to, err)
		}
	}
	if _, err := sm.ImageTarget(sm.StateRemoved, sm.EventTag); !errors.Is(err, errdefs.ErrFailedPrecondition) {
		t.Errorf("tag of a removed image: %v", err)
	}
	if _, err := sm.ImageTarget(sm.StatePresent, sm.EventStart); !errors.Is(err, errdefs.ErrFailedPrecondition) {
		t.Errorf("start of an image: %v", err)
	}
}

func TestImageCrashPoints_FollowTheSteps(t *testing.T) {
	want := []string{
		"load.after-intent", "load.after-layers", "load.before-done", "load.after-done",
		"import.after-intent", "import.after-layers", "import.before-done", "import.after-done",
		"tag.after-intent", "tag.before-done", "tag.after-done",
		"untag.after-intent", "untag.before-done", "untag.after-done",
		"delete.after-intent", "delete.before-done", "delete.after-done",
		"pull.after-intent", "pull.after-kept-layer", "pull.after-fetch", "pull.after-layers", "pull.before-done", "pull.after-done",
		"commit.after-intent", "commit.after-layers", "commit.before-done", "commit.after-done",
	}
	if got := sm.ImageCrashPoints(); !slices.Equal(got, want) {
		t.Fatalf("image crash points %v", got)
	}
	for _, p := range want {
		if slices.Contains(sm.CrashPoints(), p) {
			t.Errorf("%s is also a container crash point", p)
		}
	}
}
