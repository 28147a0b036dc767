package executor

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"time"
)

// exitRecord is the content of exit.json. The shim writes it durably before
// telling anyone the container exited, so the code survives a daemon that was
// not listening and a machine that crashed right after. It names the shim
// that wrote it: the record stays until a later run's shim replaces it, and
// must not be taken for the exit of another run.
type exitRecord struct {
	ExitCode      int       `json:"exit_code"`
	Signal        string    `json:"signal,omitempty"`
	FinishedAt    time.Time `json:"finished_at"`
	ShimPID       int       `json:"shim_pid"`
	ShimStartTime uint64    `json:"shim_start_time"`
}

// of reports whether the record was written by the shim of process p.
func (r exitRecord) of(p Process) bool {
	return r.ShimPID == p.ShimPID && r.ShimStartTime == p.ShimStartTime
}

func (r exitRecord) exit() Exit {
	code := r.ExitCode
	return Exit{Code: &code, Signal: r.Signal, FinishedAt: r.FinishedAt}
}

func writeExitFile(dir string, r exitRecord) error {
	data, err := json.Marshal(r)
	if err != nil {
		return err
	}
	return writeFileAtomic(dir, exitFileName, data, true)
}

// readExitFile returns the exit record in dir written for process p; ok is
// false when there is none (or only one of another run).
func readExitFile(dir string, p Process) (rec exitRecord, ok bool, err error) {
	rec, ok, err = readAnyExitFile(dir)
	if err != nil || !ok || !rec.of(p) {
		return exitRecord{}, false, err
	}
	return rec, true, nil
}

// readAnyExitFile returns the exit record in dir, whoever wrote it.
func readAnyExitFile(dir string) (rec exitRecord, ok bool, err error) {
	data, err := os.ReadFile(filepath.Join(dir, exitFileName))
	if errors.Is(err, os.ErrNotExist) {
		return exitRecord{}, false, nil
	}
	if err != nil {
		return exitRecord{}, false, err
	}
	if err := json.Unmarshal(data, &rec); err != nil {
		return exitRecord{}, false, fmt.Errorf("%s: %w", exitFileName, err)
	}
	return rec, true, nil
}

// writeFileAtomic replaces dir/name with data so that readers see either the
// old or the new content, never a torn file. With durable, the data and the
// rename are fsynced, so the file survives a crash once this returns.
func writeFileAtomic(dir, name string, data []byte, durable bool) (retErr error) {
	tmp, err := os.CreateTemp(dir, "."+name+".tmp-")
	if err != nil {
		return err
	}
	defer func() {
		if retErr != nil {
			tmp.Close()
			os.Remove(tmp.Name())
		}
	}()
	if _, err := tmp.Write(data); err != nil {
		return err
	}
	if durable {
		if err := tmp.Sync(); err != nil {
			return err
		}
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	if err := os.Rename(tmp.Name(), filepath.Join(dir, name)); err != nil {
		return err
	}
	if !durable {
		return nil
	}
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	if err := d.Sync(); err != nil {
		return fmt.Errorf("fsync %s: %w", dir, err)
	}
	return nil
}
