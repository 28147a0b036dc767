package statemachine

import (
	"errors"
	"slices"
	"strings"
	"testing"

	"github.com/cairn-run/cairn/internal/errdefs"
)

func TestVolumeRules(t *testing.T) {
	for _, tt := range []struct {
		from  State
		event Event
		to    State
		ok    bool
	}{
		{StateNone, EventVolumeCreate, StatePresent, true},
		{StatePresent, EventVolumeCreate, "", false},
		{StatePresent, EventVolumeRemove, StateRemoved, true},
		{StateNone, EventVolumeRemove, "", false},
		{StatePresent, EventStart, "", false},
	} {
		to, err := VolumeTarget(tt.from, tt.event)
		if tt.ok != (err == nil) || tt.ok && to != tt.to {
			t.Errorf("%s from %s: %s %v", tt.event, tt.from, to, err)
		}
		if !tt.ok && !errors.Is(err, errdefs.ErrFailedPrecondition) {
			t.Errorf("%s from %s: %v, want ErrFailedPrecondition", tt.event, tt.from, err)
		}
	}
}

func TestVolumeCrashPoints_FollowTheSteps(t *testing.T) {
	want := []string{
		"volume-create.after-intent", "volume-create.after-directory", "volume-create.before-done", "volume-create.after-done",
		"volume-remove.after-intent", "volume-remove.after-delete", "volume-remove.before-done", "volume-remove.after-done",
	}
	if got := VolumeCrashPoints(); !slices.Equal(got, want) {
		t.Fatalf("got %v", got)
	}
	for _, p := range VolumeCrashPoints() {
		if slices.Contains(CrashPoints(), p) || slices.Contains(ImageCrashPoints(), p) {
			t.Errorf("%s is also another kind's crash point", p)
		}
	}
}

func TestValidateVolumeName(t *testing.T) {
	for name, ok := range map[string]bool{
		"ab": true, "data": true, "my_vol.1-x": true, strings.Repeat("f", 64): true, "0a": true,
		"": false, "a": false, "-a": false, "_a": false, ".a": false, "..": false, "a/b": false, "a b": false, "é1": false,
		strings.Repeat("x", 256): false,
	} {
		err := ValidateVolumeName(name)
		if ok != (err == nil) || !ok && !errors.Is(err, errdefs.ErrInvalidArgument) {
			t.Errorf("%.40q: %v", name, err)
		}
	}
}

func TestValidateMounts(t *testing.T) {
	for _, tt := range []struct {
		name   string
		mounts []Mount
		ok     bool
	}{
		{"volume, bind, tmpfs", []Mount{{Type: MountVolume, Source: "data", Destination: "/data"}, {Type: MountBind, Source: "/etc", Destination: "/host", ReadOnly: true}, {Type: MountTmpfs, Destination: "/tmp", TmpfsSize: 1 << 20}}, true},
		{"anonymous volume", []Mount{{Type: MountVolume, Anonymous: true, Destination: "/data"}}, true},
		{"relative destination", []Mount{{Type: MountTmpfs, Destination: "tmp"}}, false},
		{"root destination", []Mount{{Type: MountTmpfs, Destination: "/"}}, false},
		{"root destination, spelt otherwise", []Mount{{Type: MountTmpfs, Destination: "/./"}}, false},
		{"twice the same destination", []Mount{{Type: MountTmpfs, Destination: "/a"}, {Type: MountTmpfs, Destination: "/a/"}}, false},
		{"relative bind source", []Mount{{Type: MountBind, Source: "etc", Destination: "/a"}}, false},
		{"volume without a name", []Mount{{Type: MountVolume, Destination: "/a"}}, false},
		{"bad volume name", []Mount{{Type: MountVolume, Source: "-x", Destination: "/a"}}, false},
		{"tmpfs with a source", []Mount{{Type: MountTmpfs, Source: "x", Destination: "/a"}}, false},
		{"negative tmpfs size", []Mount{{Type: MountTmpfs, Destination: "/a", TmpfsSize: -1}}, false},
		{"tmpfs size on a bind", []Mount{{Type: MountBind, Source: "/etc", Destination: "/a", TmpfsSize: 1}}, false},
		{"unknown type", []Mount{{Type: "nfs", Destination: "/a"}}, false},
		{"NUL", []Mount{{Type: MountTmpfs, Destination: "/a\x00"}}, false},
	} {
		err := ValidateMounts(tt.mounts)
		if tt.ok != (err == nil) || !tt.ok && !errors.Is(err, errdefs.ErrInvalidArgument) {
			t.Errorf("%s: %v", tt.name, err)
		}
	}
}
