package main

import (
	"testing"

	"github.com/cairn-run/cairn/internal/imageref"
)

func TestNames_SameAsTheLibrarys(t *testing.T) {
	for _, ref := range []string{
		"busybox", "busybox:1.36", "library/busybox", "user/app:v2", "docker.io/user/app",
		"127.0.0.1:5000/app:v1", "quay.io/org/app@sha256:" + "a1b2c3d4e5f6a7b8c9d0a1b2c3d4e5f6a7b8c9d0a1b2c3d4e5f6a7b8c9d0a1b2",
		"busybox:latest@sha256:" + "a1b2c3d4e5f6a7b8c9d0a1b2c3d4e5f6a7b8c9d0a1b2c3d4e5f6a7b8c9d0a1b2",
		"localhost/thing", "docker.io/library/a/b:c",
	} {
		canonical, err := imageref.Normalize(ref)
		if err != nil {
			t.Fatalf("%s: %v", ref, err)
		}
		if got, want := familiar(canonical), imageref.Familiar(canonical); got != want {
			t.Errorf("familiar(%s) = %s, the library says %s", canonical, got, want)
		}
		gotRepo, gotTag := splitName(canonical)
		wantRepo, wantTag := imageref.Split(canonical)
		if gotRepo != wantRepo || gotTag != wantTag {
			t.Errorf("splitName(%s) = %s %s, the library says %s %s", canonical, gotRepo, gotTag, wantRepo, wantTag)
		}
	}
	id := "sha256:" + "a1b2c3d4e5f6a7b8c9d0a1b2c3d4e5f6a7b8c9d0a1b2c3d4e5f6a7b8c9d0a1b2"
	if familiar(id) != id {
		t.Errorf("an id changed: %s", familiar(id))
	}
}
