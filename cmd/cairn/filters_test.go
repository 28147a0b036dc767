package main

import (
	"errors"
	"testing"

	cairnv1 "github.com/cairn-run/cairn/api/cairn/v1"
)

func TestFilters_Containers(t *testing.T) {
	code0, code3 := int32(0), int32(3)
	web := &cairnv1.Container{Id: "aaaa1111", Name: "web-1", State: cairnv1.ContainerState_CONTAINER_STATE_RUNNING,
		Image: "docker.io/library/busybox:latest", ImageId: "sha256:beef0000", Config: &cairnv1.ContainerConfig{Labels: map[string]string{"tier": "front", "x": ""}}}
	job := &cairnv1.Container{Id: "bbbb2222", Name: "job", State: cairnv1.ContainerState_CONTAINER_STATE_STOPPED, ExitCode: &code3,
		Image: "quay.io/org/app:v2", ImageId: "sha256:cafe0000"}
	ok := &cairnv1.Container{Id: "cccc3333", Name: "ok", State: cairnv1.ContainerState_CONTAINER_STATE_STOPPED, ExitCode: &code0, Image: "docker.io/user/tool:1"}
	all := []*cairnv1.Container{web, job, ok}
	cases := []struct {
		args []string
		want []string
	}{
		{nil, []string{"web-1", "job", "ok"}},
		{[]string{"status=running"}, []string{"web-1"}},
		{[]string{"status=exited"}, []string{"job", "ok"}},
		{[]string{"status=running", "status=stopped"}, []string{"web-1", "job", "ok"}},
		{[]string{"status=stopped", "exited=3"}, []string{"job"}},
		{[]string{"name=web"}, []string{"web-1"}},
		{[]string{"id=bbbb"}, []string{"job"}},
		{[]string{"label=tier"}, []string{"web-1"}},
		{[]string{"label=tier=front"}, []string{"web-1"}},
		{[]string{"label=tier=back"}, nil},
		{[]string{"label=x="}, []string{"web-1"}}, // x is set, to ""
		{[]string{"ancestor=busybox"}, []string{"web-1"}},
		{[]string{"ancestor=busybox:latest"}, []string{"web-1"}},
		{[]string{"ancestor=docker.io/library/busybox"}, []string{"web-1"}},
		{[]string{"ancestor=busybox:1.36"}, nil},
		{[]string{"ancestor=quay.io/org/app:v2"}, []string{"job"}},
		{[]string{"ancestor=user/tool:1"}, []string{"ok"}},
		{[]string{"ancestor=cafe"}, []string{"job"}},
		{[]string{"ancestor=sha256:beef"}, []string{"web-1"}},
		{[]string{"ancestor=caf"}, nil}, // an id prefix needs 4 digits
	}
	for _, tc := range cases {
		f, err := parseFilters(tc.args, containerFilterKeys)
		if err != nil {
			t.Fatalf("%v: %v", tc.args, err)
		}
		var got []string
		for _, c := range all {
			if f.matchContainer(c) {
				got = append(got, c.Name)
			}
		}
		if len(got) != len(tc.want) {
			t.Errorf("%v matched %v, want %v", tc.args, got, tc.want)
			continue
		}
		for i := range got {
			if got[i] != tc.want[i] {
				t.Errorf("%v matched %v, want %v", tc.args, got, tc.want)
				break
			}
		}
	}
}

func TestFilters_RefusesWhatItCannotRead(t *testing.T) {
	for _, args := range [][]string{{"colour=red"}, {"status"}, {"status="}, {"status=sleeping"}, {"exited=x"}} {
		_, err := parseFilters(args, containerFilterKeys)
		var u usageError
		if !errors.As(err, &u) {
			t.Errorf("%v: %v, want a usage error", args, err)
		}
	}
	if _, err := parseFilters([]string{"dangling=maybe"}, imageFilterKeys); err == nil {
		t.Errorf("dangling=maybe accepted")
	}
}

func TestFilters_Images(t *testing.T) {
	busybox := &cairnv1.Image{Id: "sha256:1111aaaa", Names: []string{"docker.io/library/busybox:latest", "docker.io/library/busybox:1.36"}}
	dangling := &cairnv1.Image{Id: "sha256:2222bbbb"}
	app := &cairnv1.Image{Id: "sha256:3333cccc", Names: []string{"localhost:5000/app:v1"}, Config: &cairnv1.ImageConfig{Labels: map[string]string{"team": "x"}}}
	all := []*cairnv1.Image{busybox, dangling, app}
	cases := map[string][]string{
		"dangling=true":                {"sha256:2222bbbb"},
		"dangling=false":               {"sha256:1111aaaa", "sha256:3333cccc"},
		"reference=busybox":            {"sha256:1111aaaa"},
		"reference=busybox:1.36":       {"sha256:1111aaaa"},
		"reference=busy*":              {"sha256:1111aaaa"},
		"reference=*/app:v1":           {"sha256:3333cccc"},
		"reference=localhost:5000/app": {"sha256:3333cccc"},
		"label=team":                   {"sha256:3333cccc"},
		"id=2222":                      {"sha256:2222bbbb"},
	}
	for arg, want := range cases {
		f, err := parseFilters([]string{arg}, imageFilterKeys)
		if err != nil {
			t.Fatal(err)
		}
		var got []string
		for _, img := range all {
			if f.matchImage(img) {
				got = append(got, img.Id)
			}
		}
		if len(got) != len(want) || (len(got) > 0 && got[0] != want[0]) || (len(got) > 1 && got[1] != want[1]) {
			t.Errorf("%s matched %v, want %v", arg, got, want)
		}
	}
}
