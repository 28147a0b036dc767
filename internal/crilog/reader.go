package crilog

import (
	"bytes"
	"errors"
	"io"
	"os"
	"syscall"
)

// Follower reads a log's entries in order, from the oldest file on, and
// follows it across rotations: at the end of a file that is no longer the
// current one it reads what was appended before the rename, then moves on
// to its successor. A file that was rotated away before the follower got to
// it is skipped (its entries are lost to this reader). It is not safe for
// concurrent use.
type Follower struct {
	path    string
	f       *os.File
	ino     uint64
	pending []byte // bytes read past the last newline
	buf     []byte
}

// NewFollower follows the log at path; nothing is opened until Read.
func NewFollower(path string) *Follower {
	return &Follower{path: path, buf: make([]byte, 64<<10)}
}

// Close closes the file being read.
func (fl *Follower) Close() error {
	if fl.f == nil {
		return nil
	}
	err := fl.f.Close()
	fl.f = nil
	return err
}

// Read calls fn with every whole entry available now, in order, and returns
// at the end of the current file (nil), or with fn's error. An entry's
// content is valid only during the call. A line that is not of this format
// (a log written before it was) is passed as a full stdout entry with a
// zero time.
func (fl *Follower) Read(fn func(Entry) error) error {
	if fl.f == nil {
		files := Files(fl.path)
		if len(files) == 0 {
			return nil
		}
		if err := fl.open(files[0]); err != nil {
			return nil // rotated away in between: try again next time
		}
	}
	drained := false
	for {
		n, err := fl.f.Read(fl.buf)
		if n > 0 {
			if err := fl.emit(fl.buf[:n], fn); err != nil {
				return err
			}
			continue
		}
		if err != nil && !errors.Is(err, io.EOF) {
			return err
		}
		next, ok := fl.successor()
		if !ok {
			return nil // the current file: wait for more
		}
		if !drained {
			// Whatever was written before the rotation is there now.
			drained = true
			continue
		}
		fl.pending = fl.pending[:0] // a rotated file ends with a newline
		_ = fl.f.Close()
		fl.f = nil
		if err := fl.open(next); err != nil {
			return nil
		}
		drained = false
	}
}

func (fl *Follower) open(path string) error {
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	ino, err := inode(f)
	if err != nil {
		_ = f.Close()
		return err
	}
	fl.f, fl.ino = f, ino
	fl.pending = fl.pending[:0]
	return nil
}

func (fl *Follower) emit(data []byte, fn func(Entry) error) error {
	if len(fl.pending) > 0 {
		i := bytes.IndexByte(data, '\n')
		if i < 0 {
			fl.pending = append(fl.pending, data...)
			return nil
		}
		fl.pending = append(fl.pending, data[:i]...)
		if err := fn(parseOrLegacy(fl.pending)); err != nil {
			return err
		}
		fl.pending = fl.pending[:0]
		data = data[i+1:]
	}
	for {
		i := bytes.IndexByte(data, '\n')
		if i < 0 {
			fl.pending = append(fl.pending, data...)
			return nil
		}
		if err := fn(parseOrLegacy(data[:i])); err != nil {
			return err
		}
		data = data[i+1:]
	}
}

func parseOrLegacy(line []byte) Entry {
	e, err := ParseLine(line)
	if err != nil {
		return Entry{Stream: Stdout, Content: line}
	}
	return e
}

// successor is the file that comes after the one being read; ok is false
// while that one is the current file (or nothing newer can be found yet).
func (fl *Follower) successor() (string, bool) {
	if st, err := os.Stat(fl.path); err != nil || statIno(st) == fl.ino {
		return "", false
	}
	files := Files(fl.path)
	for i, name := range files {
		st, err := os.Stat(name)
		if err != nil || statIno(st) != fl.ino {
			continue
		}
		if i+1 < len(files) {
			return files[i+1], true
		}
		return "", false
	}
	// Ours was rotated out of the set: everything left is newer.
	if len(files) == 0 {
		return "", false
	}
	return files[0], true
}

func inode(f *os.File) (uint64, error) {
	st, err := f.Stat()
	if err != nil {
		return 0, err
	}
	return statIno(st), nil
}

func statIno(fi os.FileInfo) uint64 {
	if st, ok := fi.Sys().(*syscall.Stat_t); ok {
		return st.Ino
	}
	return 0
}

// Line is one output line of a stream: its entries joined.
type Line struct {
	Entry
	// Complete: the line ended (with a newline); else it is the partial
	// end of a stream.
	Complete bool
}

// Tail keeps the last n lines of the entries it is given (n < 0: no
// limit is not supported; use Read directly). Partial entries are joined
// into the lines they belong to, each stream on its own, and lines come
// out in the order they were completed.
type Tail struct {
	n     int
	lines []Line
	open  map[string]*Line // partial lines per stream
}

// NewTail keeps the last n lines.
func NewTail(n int) *Tail { return &Tail{n: n, open: map[string]*Line{}} }

// Add takes one entry (its content is copied).
func (t *Tail) Add(e Entry) {
	l := t.open[e.Stream]
	if l == nil {
		l = &Line{Entry: Entry{Time: e.Time, Stream: e.Stream}}
	}
	l.Content = append(l.Content, e.Content...)
	if e.Partial {
		t.open[e.Stream] = l
		return
	}
	delete(t.open, e.Stream)
	l.Complete = true
	t.push(*l)
}

func (t *Tail) push(l Line) {
	if t.n <= 0 {
		return
	}
	if len(t.lines) == t.n {
		copy(t.lines, t.lines[1:])
		t.lines = t.lines[:t.n-1]
	}
	t.lines = append(t.lines, l)
}

// Lines returns the kept lines, the unfinished ones last (each counts as a
// line).
func (t *Tail) Lines() []Line {
	for _, s := range []string{Stdout, Stderr} {
		if l := t.open[s]; l != nil {
			t.push(*l)
			delete(t.open, s)
		}
	}
	return t.lines
}

// Open opens the oldest file of the log now, if the follower has none open
// yet, and says whether it has one: a reader that opens early keeps the
// file even if the log is removed before it reads.
func (fl *Follower) Open() bool {
	if fl.f != nil {
		return true
	}
	files := Files(fl.path)
	return len(files) > 0 && fl.open(files[0]) == nil
}
