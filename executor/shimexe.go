package executor

import (
	"bytes"
	"debug/elf"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strconv"

	"github.com/opencontainers/runc/libcontainer/exeseal"
)

// The executor runs every shim from one sealed memfd copy of the shim
// binary, made when the executor is created. Three things follow:
//   - libcontainer sees that /proc/self/exe is already a sealed clone and
//     skips making its own copy (or overlay) of the binary at every start,
//     which is a large share of a start's time;
//   - the shim's code lives in shmem, which is mapped in small pages, so an
//     idle shim's resident set holds only the pages it touches instead of
//     whole large page-cache folios of an 18 MB binary;
//   - a container that breaks out cannot overwrite the binary that later
//     shims run (CVE-2019-5736), and upgrading the binary on disk does not
//     change the shims of a running daemon.

// sealedShim copies bin into a sealed memfd: only the part of it that runs
// (see loadableImage), as a memfd's pages stay resident for the daemon's
// life.
func sealedShim(bin, tmpDir string) (*os.File, error) {
	src, err := os.Open(bin)
	if err != nil {
		return nil, fmt.Errorf("shim binary: %w", err)
	}
	defer src.Close()
	fi, err := src.Stat()
	if err != nil {
		return nil, fmt.Errorf("shim binary: %w", err)
	}
	image, size := io.Reader(src), fi.Size()
	if r, n, ok := loadableImage(src, fi.Size()); ok {
		image, size = r, n
	}
	exe, err := exeseal.CloneBinary(image, size, "cairn-shim", tmpDir)
	if err != nil {
		return nil, fmt.Errorf("seal shim binary %s: %w", bin, err)
	}
	return exe, nil
}

// loadableImage returns the executable bin without what only debuggers
// read: the bytes after the last segment the loaders map (the symbol table,
// DWARF and the section headers, about a third of a Go binary), with the
// ELF header's section header fields cleared to match. The kernel and the
// dynamic loader read only the program headers and the segments they name;
// the Go runtime reads nothing of its own file. ok is false when bin is not
// a 64-bit little-endian ELF file laid out so (segments first, section
// headers last); it is then sealed whole.
func loadableImage(bin io.ReaderAt, size int64) (_ io.Reader, _ int64, ok bool) {
	f, err := elf.NewFile(bin)
	if err != nil || f.Class != elf.ELFCLASS64 || f.Data != elf.ELFDATA2LSB {
		return nil, 0, false
	}
	var header [64]byte // Elf64_Ehdr
	if _, err := bin.ReadAt(header[:], 0); err != nil {
		return nil, 0, false
	}
	phoff := binary.LittleEndian.Uint64(header[0x20:])
	shoff := binary.LittleEndian.Uint64(header[0x28:])
	end := phoff + uint64(len(f.Progs))*uint64(binary.LittleEndian.Uint16(header[0x36:]))
	for _, p := range f.Progs {
		end = max(end, p.Off+p.Filesz)
	}
	if end <= uint64(len(header)) || end > shoff || end > uint64(size) {
		return nil, 0, false
	}
	binary.LittleEndian.PutUint64(header[0x28:], 0) // e_shoff
	binary.LittleEndian.PutUint16(header[0x3c:], 0) // e_shnum
	binary.LittleEndian.PutUint16(header[0x3e:], 0) // e_shstrndx: SHN_UNDEF
	rest := io.NewSectionReader(bin, int64(len(header)), int64(end)-int64(len(header)))
	return io.MultiReader(bytes.NewReader(header[:]), rest), int64(end), true
}

// errClosed is returned by a Start after Close.
var errClosed = errors.New("executor is closed")

// startShimProcess starts cmd from the sealed copy, which a child of this
// process executes through /proc/self/fd.
func (e *Executor) startShimProcess(cmd *exec.Cmd) error {
	e.exeMu.RLock()
	defer e.exeMu.RUnlock()
	if e.exeClosed {
		return errClosed
	}
	cmd.Path = "/proc/self/fd/" + strconv.Itoa(int(e.shimExe.Fd()))
	return cmd.Start()
}

// Close stops the standby shim and releases the sealed shim binary.
// Shims running containers keep running, with their own copy.
func (e *Executor) Close() error {
	e.warm.stop()
	e.stopStandby()
	e.exeMu.Lock()
	defer e.exeMu.Unlock()
	if e.exeClosed {
		return nil
	}
	e.exeClosed = true
	return e.shimExe.Close()
}
