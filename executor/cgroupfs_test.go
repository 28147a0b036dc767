package executor

import (
	"os"
	"strconv"
	"strings"
	"testing"
)

func TestSelfFreezerProcs_NamesTheCgroupWeAreIn(t *testing.T) {
	m, err := findCgroupMounts()
	if err != nil || m.freezer == "" {
		t.Skipf("no v1 freezer hierarchy here (%v)", err)
	}
	path := m.selfFreezerProcs()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("selfFreezerProcs = %q: %v", path, err)
	}
	if !strings.Contains("\n"+string(data), "\n"+strconv.Itoa(os.Getpid())+"\n") {
		t.Fatalf("%s does not list our pid %d", path, os.Getpid())
	}
}

func TestHasController(t *testing.T) {
	cases := map[string]bool{"freezer": true, "cpu,cpuacct": false, "name=systemd": false, "blkio,freezer": true, "": false}
	for list, want := range cases {
		if got := hasController(list, "freezer"); got != want {
			t.Errorf("hasController(%q) = %v", list, got)
		}
	}
}
