package executor

import (
	"context"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestSocketIn_DirLongerThanSunPath(t *testing.T) {
	dir := filepath.Join(t.TempDir(), strings.Repeat("x", 60), strings.Repeat("y", 64))
	if err := os.MkdirAll(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	if n := len(filepath.Join(dir, socketName)); n <= 108 {
		t.Fatalf("path only %d bytes; test needs > 108", n)
	}
	// A stale socket file from a crashed predecessor must not block listening.
	if err := os.WriteFile(filepath.Join(dir, socketName), nil, 0o600); err != nil {
		t.Fatal(err)
	}
	ln, err := listenUnixIn(dir, socketName)
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() {
		c, err := ln.AcceptUnix()
		if err != nil {
			return
		}
		defer c.Close()
		if !peerAllowed(c) {
			return
		}
		_, _ = c.Write([]byte("hi"))
	}()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	c, err := dialUnixIn(ctx, dir, socketName)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	got, _ := io.ReadAll(c)
	if string(got) != "hi" {
		t.Fatalf("got %q; peer credentials of our own uid must be accepted", got)
	}
	ln.Close()
	if !fileExists(filepath.Join(dir, socketName)) {
		t.Error("Close unlinked the socket through a stale /proc/self/fd path")
	}
}

func TestDialUnixIn_NoSocket(t *testing.T) {
	if _, err := dialUnixIn(context.Background(), t.TempDir(), socketName); err == nil {
		t.Fatal("dial succeeded without a listener")
	}
}
