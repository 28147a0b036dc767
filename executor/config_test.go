package executor

import (
	"errors"
	"slices"
	"strings"
	"testing"

	"github.com/cairn-run/cairn/internal/errdefs"
)

func TestCleanCgroupParent(t *testing.T) {
	for _, tc := range []struct {
		in, want string
		ok       bool
	}{
		{"", "cairn", true},
		{"cairn", "cairn", true},
		{"/cairn/", "cairn", true},
		{"a/b", "a/b", true},
		{"../escape", "", false},
		{"a/../b", "", false},
		{"a//b", "", false},
		{"/", "", false},
	} {
		got, err := cleanCgroupParent(tc.in)
		if (err == nil) != tc.ok || got != tc.want {
			t.Errorf("cleanCgroupParent(%q) = %q, %v; want %q ok=%v", tc.in, got, err, tc.want, tc.ok)
		}
		if err != nil && !errors.Is(err, errdefs.ErrInvalidArgument) {
			t.Errorf("error %v does not wrap ErrInvalidArgument", err)
		}
	}
}

func TestValidateID(t *testing.T) {
	for _, ok := range []string{"a", "web-1", "A_b.c+d", strings.Repeat("f", 64)} {
		if err := validateID(ok); err != nil {
			t.Errorf("validateID(%q) = %v", ok, err)
		}
	}
	for _, bad := range []string{"", ".", "..", "a/b", "a b", "x\x00", strings.Repeat("f", 129)} {
		if err := validateID(bad); !errors.Is(err, errdefs.ErrInvalidArgument) {
			t.Errorf("validateID(%q) = %v, want ErrInvalidArgument", bad, err)
		}
	}
}

func TestProcessEnv(t *testing.T) {
	for _, tc := range []struct {
		in, want []string
	}{
		{nil, []string{defaultPathEnv}},
		{[]string{"A=1"}, []string{"A=1", defaultPathEnv}},
		{[]string{"PATH=/x", "A=1"}, []string{"PATH=/x", "A=1"}},
	} {
		if got := processEnv(tc.in); !slices.Equal(got, tc.want) {
			t.Errorf("processEnv(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
	in := make([]string, 1, 4)
	in[0] = "A=1"
	_ = processEnv(in)
	if in[:2][1] != "" {
		t.Error("processEnv wrote into the caller's backing array")
	}
}

func TestContainerConfig(t *testing.T) {
	cfg, err := containerConfig(Spec{ID: "0123456789abcdef", Rootfs: "/rootfs", Args: []string{"sh"}}, "cairn")
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Readonlyfs {
		t.Error("rootfs is read-only; the example spec's default must be overridden")
	}
	if cfg.Hostname != "0123456789ab" {
		t.Errorf("hostname %q, want the first 12 characters of the id", cfg.Hostname)
	}
	if cfg.Cgroups.Path != "/cairn/0123456789abcdef" {
		t.Errorf("cgroup path %q", cfg.Cgroups.Path)
	}
	if cfg.OomScoreAdj == nil || *cfg.OomScoreAdj != 0 {
		t.Errorf("oom_score_adj %v, want 0 (not the shim's -999)", cfg.OomScoreAdj)
	}
	var types []string
	for _, ns := range cfg.Namespaces {
		types = append(types, string(ns.Type))
	}
	for _, want := range []string{"NEWNS", "NEWPID", "NEWUTS", "NEWIPC", "NEWNET"} {
		if !slices.Contains(types, want) {
			t.Errorf("namespace %s missing from %v", want, types)
		}
	}
	if len(cfg.Networks) != 1 || cfg.Networks[0].Type != "loopback" {
		t.Errorf("networks %+v, want loopback only", cfg.Networks)
	}
}
