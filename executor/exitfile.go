package executor

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
)

// writeExitFile writes r as exit.json, durably: the shim writes it before
// telling anyone the container exited, so the code survives a daemon that
// was not listening and a machine that crashed right after.
func writeExitFile(dir string, r exitRecord) error {
	r.Version = protocolVersion
	data, err := json.Marshal(r)
	if err != nil {
		return err
	}
	return writeFileAtomic(dir, exitFileName, data, true)
}

// readExitFile returns the init's exit record in dir written for process p;
// ok is false when there is none (or only one of another run). A record of a
// newer protocol version is an error.
func readExitFile(dir string, p Process) (rec exitRecord, ok bool, err error) {
	data, err := os.ReadFile(filepath.Join(dir, exitFileName))
	if errors.Is(err, os.ErrNotExist) {
		return exitRecord{}, false, nil
	}
	if err != nil {
		return exitRecord{}, false, err
	}
	if err := decodeMessage(exitFileName, data, &rec); err != nil {
		return exitRecord{}, false, err
	}
	if !rec.of(p) {
		return exitRecord{}, false, nil
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
