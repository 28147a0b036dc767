package sysinfo

import (
	"os"
	"path/filepath"
	"reflect"
	"testing"
)

func TestTally_CountsEachLayerOnceAndReclaimsWhatNoActiveImageUses(t *testing.T) {
	layers := []Layer{{"base", 100}, {"app", 10}, {"other", 7}, {"orphan", 3}}
	images := []Image{
		{ID: "img-app", Names: []string{"app:1"}, ChainIDs: []string{"base", "app"}},
		{ID: "img-other", Names: []string{"other:1"}, ChainIDs: []string{"base", "other"}},
	}
	containers := []Container{
		{ID: "c2", ImageID: "img-app", Active: false, SizeBytes: 40},
		{ID: "c1", ImageID: "img-app", Active: true, SizeBytes: 5},
	}
	du := Tally(images, layers, containers)
	if want := (Summary{Total: 2, Active: 1, SizeBytes: 120, ReclaimableBytes: 10}); du.Images != want {
		t.Errorf("images = %+v, want %+v (other's own layer and the orphan are reclaimable, base is not)", du.Images, want)
	}
	if want := (Summary{Total: 2, Active: 1, SizeBytes: 45, ReclaimableBytes: 40}); du.Containers != want {
		t.Errorf("containers = %+v, want %+v", du.Containers, want)
	}
	wantImages := []ImageUsage{
		{ID: "img-app", Names: []string{"app:1"}, SizeBytes: 110, UniqueBytes: 10, Containers: 2},
		{ID: "img-other", Names: []string{"other:1"}, SizeBytes: 107, UniqueBytes: 7},
	}
	if !reflect.DeepEqual(du.ImageDetails, wantImages) {
		t.Errorf("image details = %+v, want %+v", du.ImageDetails, wantImages)
	}
	if du.ContainerDetails[0].ID != "c1" {
		t.Errorf("container details not sorted by id: %+v", du.ContainerDetails)
	}
}

func TestTally_Empty(t *testing.T) {
	if du := Tally(nil, nil, nil); du.Images != (Summary{}) || du.Containers != (Summary{}) {
		t.Errorf("empty tally = %+v", du)
	}
}

func TestDirBytes_CountsBlocksAndHardLinksOnce(t *testing.T) {
	dir := t.TempDir()
	data := make([]byte, 64<<10)
	for i := range data {
		data[i] = byte(i)
	}
	if err := os.WriteFile(filepath.Join(dir, "a"), data, 0o644); err != nil {
		t.Fatal(err)
	}
	one, err := DirBytes(dir)
	if err != nil || one < 64<<10 {
		t.Fatalf("DirBytes = %d, %v; want at least 64 KiB", one, err)
	}
	if err := os.Link(filepath.Join(dir, "a"), filepath.Join(dir, "b")); err != nil {
		t.Fatal(err)
	}
	if two, _ := DirBytes(dir); two != one {
		t.Errorf("a hard link changed the total: %d -> %d", one, two)
	}
	if n, err := DirBytes(filepath.Join(dir, "missing")); n != 0 || err != nil {
		t.Errorf("missing dir = %d, %v; want 0, nil", n, err)
	}
}

func TestPrettyName(t *testing.T) {
	if got := prettyName("NAME=x\nPRETTY_NAME=\"Debian GNU/Linux 12 (bookworm)\"\n"); got != "Debian GNU/Linux 12 (bookworm)" {
		t.Errorf("prettyName = %q", got)
	}
	if got := prettyName("NAME=x\n"); got != "" {
		t.Errorf("prettyName without PRETTY_NAME = %q", got)
	}
}

func TestReadHost_ThisMachine(t *testing.T) {
	h := ReadHost()
	if h.Kernel == "" || h.CPUs < 1 || h.MemoryBytes <= 0 || (h.CgroupVersion != "v1" && h.CgroupVersion != "v2") {
		t.Errorf("ReadHost = %+v", h)
	}
}

func TestTallyVolumes_UnusedAreReclaimable(t *testing.T) {
	var du DiskUsage
	TallyVolumes(&du, []Volume{{Name: "b", SizeBytes: 10}, {Name: "a", Containers: 2, SizeBytes: 5}})
	if want := (Summary{Total: 2, Active: 1, SizeBytes: 15, ReclaimableBytes: 10}); du.Volumes != want {
		t.Errorf("volumes = %+v, want %+v", du.Volumes, want)
	}
	if du.VolumeDetails[0].Name != "a" {
		t.Errorf("details not sorted: %+v", du.VolumeDetails)
	}
}
