package main

import (
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"google.golang.org/protobuf/types/known/timestamppb"

	cairnv1 "github.com/cairn-run/cairn/api/cairn/v1"
)

func TestTruncate_CutsRunesNotBytes(t *testing.T) {
	cases := []struct {
		in   string
		n    int
		want string
	}{
		{"echo hi", 24, "echo hi"},
		{strings.Repeat("a", 30), 24, strings.Repeat("a", 23) + "…"},
		{"echo " + strings.Repeat("é", 30), 24, "echo " + strings.Repeat("é", 18) + "…"},
		{strings.Repeat("日本語", 10), 5, "日本語日…"},
		{strings.Repeat("é", 24), 24, strings.Repeat("é", 24)},
	}
	for _, tc := range cases {
		got := truncate(tc.in, tc.n)
		if got != tc.want || !utf8.ValidString(got) {
			t.Errorf("truncate(%q, %d) = %q, want %q", tc.in, tc.n, got, tc.want)
		}
	}
}

func TestStatus_ReadsLikeDocker(t *testing.T) {
	at := func(d time.Duration) *timestamppb.Timestamp { return timestamppb.New(time.Now().Add(-d)) }
	code := int32(3)
	cases := []struct {
		c    *cairnv1.Container
		want string
	}{
		{&cairnv1.Container{State: cairnv1.ContainerState_CONTAINER_STATE_RUNNING, StartedAt: at(3*time.Second + 100*time.Millisecond)}, "Up 3 seconds"},
		{&cairnv1.Container{State: cairnv1.ContainerState_CONTAINER_STATE_PAUSED, StartedAt: at(90 * time.Second)}, "Up About a minute (Paused)"},
		{&cairnv1.Container{State: cairnv1.ContainerState_CONTAINER_STATE_STOPPED, ExitCode: &code, FinishedAt: at(3 * time.Hour)}, "Exited (3) 3 hours ago"},
		{&cairnv1.Container{State: cairnv1.ContainerState_CONTAINER_STATE_STOPPED, FinishedAt: at(0)}, "Exited (unknown) Less than a second ago"},
		{&cairnv1.Container{State: cairnv1.ContainerState_CONTAINER_STATE_CREATED}, "Created"},
	}
	for _, tc := range cases {
		if got := status(tc.c); got != tc.want {
			t.Errorf("status = %q, want %q", got, tc.want)
		}
	}
	if got := ago(nil); got != "-" {
		t.Errorf("ago(nil) = %q", got)
	}
}

func TestHumanSize_LikeDockerImageLs(t *testing.T) {
	for n, want := range map[int64]string{0: "0B", 999: "999B", 2_116_608: "2.12MB", 4 << 30: "4.29GB"} {
		if got := humanSize(n); got != want {
			t.Errorf("humanSize(%d) = %q, want %q", n, got, want)
		}
	}
}
