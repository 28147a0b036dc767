package executor

import (
	"os"
	"strconv"
	"strings"
	"testing"

	"github.com/opencontainers/cgroups"
	"golang.org/x/sys/unix"
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

func TestFindCgroupMounts_FindsEveryHierarchy(t *testing.T) {
	m, err := findCgroupMounts()
	if err != nil {
		t.Fatal(err)
	}
	magic := func(dir string) int64 {
		var st unix.Statfs_t
		if err := unix.Statfs(dir, &st); err != nil {
			t.Fatalf("statfs %s: %v", dir, err)
		}
		return st.Type
	}
	for _, dir := range m.all {
		if typ := magic(dir); typ != unix.CGROUP_SUPER_MAGIC && typ != unix.CGROUP2_SUPER_MAGIC {
			t.Errorf("%s is no cgroup file system (type %#x)", dir, typ)
		}
	}
	if m.unified != "" && magic(m.unified) != unix.CGROUP2_SUPER_MAGIC {
		t.Errorf("unified %s is not cgroup2", m.unified)
	}
	if m.freezer != "" {
		if magic(m.freezer) != unix.CGROUP_SUPER_MAGIC {
			t.Errorf("freezer %s is not a v1 hierarchy", m.freezer)
		}
		// libcontainer's own lookup agrees.
		if want, err := cgroups.FindCgroupMountpoint("", "freezer"); err != nil || want != m.freezer {
			t.Errorf("freezer = %s, the cgroup library finds %s (%v)", m.freezer, want, err)
		}
	}
	if m.freezer == "" && m.unified == "" {
		t.Error("neither a v1 freezer nor a cgroup2 hierarchy found")
	}
}
