package executor

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
)

// writeExitFile writes r as exit.json, atomically; the shim then makes it
// durable (syncExitFile) before telling anyone the container exited, so
// the code survives a daemon that was not listening, a shim that dies
// after it told, and a machine that crashes before the daemon's journal
// holds the exit.
func writeExitFile(dir string, r exitRecord) error {
	return writeExitRecord(dir, exitFileName, r)
}

// writeExitRecord writes r as dir/name, atomically.
func writeExitRecord(dir, name string, r exitRecord) error {
	r.Version = protocolVersion
	data, err := json.Marshal(r)
	if err != nil {
		return err
	}
	return writeFileAtomic(dir, name, data)
}

// syncExitFile makes exit.json in dir, and its name, durable.
func syncExitFile(dir string) error {
	return syncFiles(filepath.Join(dir, exitFileName), dir)
}

// syncFiles fsyncs each path (files, then the directories naming them).
func syncFiles(paths ...string) error {
	for _, path := range paths {
		f, err := os.Open(path)
		if err != nil {
			return err
		}
		err = f.Sync()
		_ = f.Close()
		if err != nil {
			return fmt.Errorf("fsync %s: %w", path, err)
		}
	}
	return nil
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
// old or the new content, never a torn file. It does not fsync (see
// syncExitFile).
func writeFileAtomic(dir, name string, data []byte) (retErr error) {
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
	if err := tmp.Close(); err != nil {
		return err
	}
	return os.Rename(tmp.Name(), filepath.Join(dir, name))
}
