package executor

import (
	"errors"
	"fmt"
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

// sealedShim copies bin into a sealed memfd.
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
	exe, err := exeseal.CloneBinary(src, fi.Size(), "cairn-shim", tmpDir)
	if err != nil {
		return nil, fmt.Errorf("seal shim binary %s: %w", bin, err)
	}
	return exe, nil
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
