package crilog

import (
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"strconv"

	"golang.org/x/sys/unix"
)

// maxRotated bounds how many rotated files Files looks for.
const maxRotated = 1024

// rotated is the name of the n-th rotated file of the log at path (1 is the
// newest).
func rotated(path string, n int) string { return path + "." + strconv.Itoa(n) }

// Files lists the files of the log at path that exist, oldest first: the
// rotated ones from the highest number down, then path itself.
func Files(path string) []string {
	var out []string
	for n := 1; n <= maxRotated; n++ {
		if _, err := os.Lstat(rotated(path, n)); err != nil {
			break
		}
		out = append(out, rotated(path, n))
	}
	for i, j := 0, len(out)-1; i < j; i, j = i+1, j-1 {
		out[i], out[j] = out[j], out[i]
	}
	if _, err := os.Lstat(path); err == nil {
		out = append(out, path)
	}
	return out
}

// Rotate makes room for a new current file at path, keeping at most
// maxFiles files in all: path becomes path.1, path.1 path.2 and so on; the
// oldest beyond the limit are removed (so are any beyond it left by a
// larger limit). With maxFiles 1 the current file is removed.
func Rotate(path string, maxFiles int) error {
	if maxFiles < 1 {
		maxFiles = 1
	}
	var errs []error
	// path.(maxFiles-1) would become path.maxFiles: it goes, with anything
	// older.
	for n := max(maxFiles-1, 1); n <= maxRotated; n++ {
		err := os.Remove(rotated(path, n))
		if errors.Is(err, fs.ErrNotExist) {
			break
		}
		if err != nil {
			errs = append(errs, err)
		}
	}
	for n := maxFiles - 1; n >= 1; n-- {
		from := path
		if n > 1 {
			from = rotated(path, n-1)
		}
		if err := os.Rename(from, rotated(path, n)); err != nil && !errors.Is(err, fs.ErrNotExist) {
			errs = append(errs, err)
		}
	}
	if maxFiles == 1 {
		if err := os.Remove(path); err != nil && !errors.Is(err, fs.ErrNotExist) {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// Writer appends entries to a log, rotating it: no file grows past MaxSize
// bytes unless a single entry is longer, and at most MaxFiles files are
// kept. It is not safe for concurrent use.
type Writer struct {
	path     string
	maxSize  int64 // 0: never rotate
	maxFiles int
	f        *os.File
	size     int64
}

// OpenWriter opens the log at path for appending (creating it), with the
// size it already has.
func OpenWriter(path string, maxSize int64, maxFiles int) (*Writer, error) {
	w := &Writer{path: path, maxSize: maxSize, maxFiles: maxFiles}
	if err := w.open(); err != nil {
		return nil, err
	}
	return w, nil
}

func (w *Writer) open() error {
	f, err := os.OpenFile(w.path, os.O_WRONLY|os.O_CREATE|os.O_APPEND|unix.O_CLOEXEC, 0o600)
	if err != nil {
		return err
	}
	st, err := f.Stat()
	if err != nil {
		_ = f.Close()
		return err
	}
	w.f, w.size = f, st.Size()
	return nil
}

// Write appends whole entries (lines), rotating first whenever the next
// entries would take the current file past its size.
func (w *Writer) Write(entries []byte) error {
	if w.f == nil {
		if err := w.open(); err != nil {
			return err
		}
	}
	for len(entries) > 0 {
		n := len(entries)
		if w.maxSize > 0 && w.size+int64(n) > w.maxSize {
			n = fitting(entries, w.maxSize-w.size)
			if n == 0 {
				if w.size > 0 {
					if err := w.rotate(); err != nil {
						return err
					}
					continue
				}
				// One entry longer than a file: it gets a file of its own.
				n = bytes.IndexByte(entries, '\n') + 1
				if n == 0 {
					n = len(entries)
				}
			}
		}
		if _, err := w.f.Write(entries[:n]); err != nil {
			return err
		}
		w.size += int64(n)
		entries = entries[n:]
	}
	return nil
}

// fitting is the length of the longest run of whole lines at the start of
// entries that is at most room bytes.
func fitting(entries []byte, room int64) int {
	if room <= 0 {
		return 0
	}
	if int64(len(entries)) <= room {
		return len(entries)
	}
	cut := bytes.LastIndexByte(entries[:room], '\n')
	return cut + 1
}

func (w *Writer) rotate() error {
	if err := w.f.Close(); err != nil {
		return err
	}
	w.f = nil
	if err := Rotate(w.path, w.maxFiles); err != nil {
		return fmt.Errorf("rotate %s: %w", w.path, err)
	}
	return w.open()
}

// Close closes the current file.
func (w *Writer) Close() error {
	if w.f == nil {
		return nil
	}
	err := w.f.Close()
	w.f = nil
	return err
}
