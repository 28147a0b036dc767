package executor

import (
	"bytes"
	"debug/elf"
	"io"
	"os"
	"testing"
)

func TestLoadableImage_KeepsEverySegmentAndDropsTheRest(t *testing.T) {
	bin, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	whole, err := os.ReadFile(bin)
	if err != nil {
		t.Fatal(err)
	}
	r, size, ok := loadableImage(bytes.NewReader(whole), int64(len(whole)))
	if !ok {
		t.Fatal("the test binary (a Go ELF executable) was not recognised")
	}
	image, err := io.ReadAll(r)
	if err != nil {
		t.Fatal(err)
	}
	if int64(len(image)) != size || size >= int64(len(whole)) {
		t.Fatalf("image of %d bytes (said %d) from a %d-byte binary", len(image), size, len(whole))
	}
	t.Logf("sealed %d of %d bytes", size, len(whole))
	orig, err := elf.NewFile(bytes.NewReader(whole))
	if err != nil {
		t.Fatal(err)
	}
	got, err := elf.NewFile(bytes.NewReader(image))
	if err != nil {
		t.Fatalf("the image is no ELF file: %v", err)
	}
	if len(got.Sections) != 0 {
		t.Errorf("the image names %d sections, want none", len(got.Sections))
	}
	if len(got.Progs) != len(orig.Progs) {
		t.Fatalf("%d program headers, want %d", len(got.Progs), len(orig.Progs))
	}
	// The binary's bytes, with the section header fields of the ELF header
	// (e_shoff, e_shnum, e_shstrndx) cleared as the image has them.
	want := bytes.Clone(whole[:size])
	clear(want[0x28:0x30])
	clear(want[0x3c:0x40])
	for i, p := range orig.Progs {
		if got.Progs[i].ProgHeader != p.ProgHeader {
			t.Errorf("program header %d = %+v, want %+v", i, got.Progs[i].ProgHeader, p.ProgHeader)
		}
		end := p.Off + p.Filesz
		if !bytes.Equal(image[p.Off:end], want[p.Off:end]) {
			t.Errorf("segment %d (%v at %#x) differs from the binary's", i, p.Type, p.Off)
		}
	}
}

func TestLoadableImage_RefusesWhatIsNotAnELFExecutable(t *testing.T) {
	for name, data := range map[string][]byte{
		"empty":  nil,
		"script": []byte("#!/bin/sh\necho hi\n"),
	} {
		if _, _, ok := loadableImage(bytes.NewReader(data), int64(len(data))); ok {
			t.Errorf("%s: accepted", name)
		}
	}
}
