package main

import "testing"

func TestRegistryHostAndAuthKey_LikeDocker(t *testing.T) {
	for ref, want := range map[string]string{
		"busybox": "docker.io", "library/busybox:1": "docker.io", "me/app": "docker.io",
		"127.0.0.1:5000/me/app:v1": "127.0.0.1:5000", "localhost/app": "localhost", "ghcr.io/o/r@sha256:00": "ghcr.io",
		"docker.io/library/busybox": "docker.io",
	} {
		if got := registryHost(ref); got != want {
			t.Errorf("registryHost(%q) = %q, want %q", ref, got, want)
		}
	}
	if authKey("docker.io") != "https://index.docker.io/v1/" || authKey("127.0.0.1:5000") != "127.0.0.1:5000" {
		t.Errorf("authKey: %q %q", authKey("docker.io"), authKey("127.0.0.1:5000"))
	}
}
