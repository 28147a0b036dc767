package crilog

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestAppendChunk_SplitsLinesAndKeepsTheBytes(t *testing.T) {
	at := time.Date(2026, 12, 1, 10, 0, 0, 123456789, time.UTC)
	long := strings.Repeat("x", MaxLine+10)
	for _, tc := range []struct {
		name, in string
		want     []string // tag and content of each entry
	}{
		{"lines", "a\nbb\n", []string{"F a", "F bb"}},
		{"partial end", "a\nb", []string{"F a", "P b"}},
		{"only partial", "abc", []string{"P abc"}},
		{"empty line", "\n", []string{"F "}},
		{"long line", long + "\n", []string{"P " + long[:MaxLine], "F " + long[MaxLine:]}},
		{"exactly max", long[:MaxLine] + "\n", []string{"F " + long[:MaxLine]}},
		{"binary", "\x00\r\xff\n", []string{"F \x00\r\xff"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			out := AppendChunk(nil, Stderr, at, []byte(tc.in))
			lines := strings.Split(strings.TrimSuffix(string(out), "\n"), "\n")
			if len(lines) != len(tc.want) {
				t.Fatalf("%d entries %q, want %d", len(lines), lines, len(tc.want))
			}
			var back bytes.Buffer
			for i, line := range lines {
				e, err := ParseLine([]byte(line))
				if err != nil {
					t.Fatal(err)
				}
				tag := "F"
				if e.Partial {
					tag = "P"
				}
				if got := tag + " " + string(e.Content); got != tc.want[i] || e.Stream != Stderr || !e.Time.Equal(at) {
					t.Errorf("entry %d = %q %s %v, want %q", i, got, e.Stream, e.Time, tc.want[i])
				}
				back.Write(e.Bytes())
			}
			if back.String() != tc.in {
				t.Errorf("joined back %q, want %q", back.String(), tc.in)
			}
		})
	}
	if got := string(AppendEntry(nil, Entry{Time: at, Stream: Stdout, Content: []byte("hi")})); got != "2026-12-01T10:00:00.123456789Z stdout F hi\n" {
		t.Errorf("format: %q", got)
	}
}

func TestParseLine_RefusesWhatIsNotAnEntry(t *testing.T) {
	for _, line := range []string{"", "hello world", "2026-12-01T10:00:00Z stdin F x", "2026-12-01T10:00:00Z stdout X x", "2026-12-01T10:00:00Z stdout F", "yesterday stdout F x"} {
		if _, err := ParseLine([]byte(line)); !errors.Is(err, ErrBadLine) {
			t.Errorf("%q: %v, want ErrBadLine", line, err)
		}
	}
	e, err := ParseLine([]byte("2026-12-01T10:00:00+01:00 stdout F "))
	if err != nil || len(e.Content) != 0 || e.Time.UTC().Hour() != 9 {
		t.Errorf("an empty line with an offset: %+v %v", e, err)
	}
}

func write(t *testing.T, path, data string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(data), 0o600); err != nil {
		t.Fatal(err)
	}
}

func TestRotate_KeepsAtMostMaxFiles(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "c.log")
	for i := range 6 {
		write(t, path, fmt.Sprint(i))
		if err := Rotate(path, 3); err != nil {
			t.Fatal(err)
		}
	}
	write(t, path, "6")
	files := Files(path)
	var got []string
	for _, f := range files {
		data, _ := os.ReadFile(f)
		got = append(got, filepath.Base(f)+"="+string(data))
	}
	if want := "c.log.2=4 c.log.1=5 c.log=6"; strings.Join(got, " ") != want {
		t.Fatalf("files %v, want %s", got, want)
	}
	// A smaller limit later removes the excess.
	write(t, path+".7", "stale")
	if err := Rotate(path, 1); err != nil {
		t.Fatal(err)
	}
	if files := Files(path); len(files) != 0 {
		t.Fatalf("with one file kept, rotation left %v", files)
	}
}

func TestWriter_FilesStayUnderMaxSize(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "c.log")
	w, err := OpenWriter(path, 200, 4)
	if err != nil {
		t.Fatal(err)
	}
	at := time.Unix(0, 0)
	var all bytes.Buffer
	for i := range 50 {
		chunk := fmt.Sprintf("line %d\nmore %d\n", i, i)
		all.WriteString(chunk)
		if err := w.Write(AppendChunk(nil, Stdout, at, []byte(chunk))); err != nil {
			t.Fatal(err)
		}
	}
	// An entry longer than a file gets a file of its own.
	big := strings.Repeat("y", 300)
	if err := w.Write(AppendChunk(nil, Stdout, at, []byte(big+"\n"))); err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	files := Files(path)
	if len(files) != 4 {
		t.Fatalf("%d files, want 4", len(files))
	}
	for i, f := range files {
		data, _ := os.ReadFile(f)
		if len(data) > 200 && !(i == len(files)-1 && strings.Contains(string(data), big)) {
			t.Errorf("%s is %d bytes, limit 200", f, len(data))
		}
		if len(data) > 0 && data[len(data)-1] != '\n' {
			t.Errorf("%s ends in the middle of an entry", f)
		}
	}
	var got bytes.Buffer
	fl := NewFollower(path)
	defer fl.Close()
	if err := fl.Read(func(e Entry) error { got.Write(e.Bytes()); return nil }); err != nil {
		t.Fatal(err)
	}
	if !strings.HasSuffix(all.String()+big+"\n", got.String()) || !strings.HasSuffix(got.String(), big+"\n") {
		t.Fatalf("the kept files do not hold the end of the output: %q", got.String())
	}
}

// The follower reads on across rotations, including one that happens
// while it is at the end of the current file, and two in a row.
func TestFollower_FollowsRotations(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "c.log")
	w, err := OpenWriter(path, 0, 5)
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	fl := NewFollower(path)
	defer fl.Close()
	var got []string
	read := func() {
		t.Helper()
		if err := fl.Read(func(e Entry) error { got = append(got, string(e.Content)); return nil }); err != nil {
			t.Fatal(err)
		}
	}
	put := func(s string) {
		t.Helper()
		if err := w.Write(AppendChunk(nil, Stdout, time.Now(), []byte(s+"\n"))); err != nil {
			t.Fatal(err)
		}
	}
	read() // no file yet
	put("a")
	read()
	put("b")
	if err := w.rotate(); err != nil {
		t.Fatal(err)
	}
	put("c")
	read()
	put("d")
	if err := w.rotate(); err != nil {
		t.Fatal(err)
	}
	put("e")
	if err := w.rotate(); err != nil {
		t.Fatal(err)
	}
	put("f")
	read()
	if strings.Join(got, "") != "abcdef" {
		t.Fatalf("followed %q, want abcdef", got)
	}
	// A torn line at the end waits for its newline.
	f, _ := os.OpenFile(path, os.O_WRONLY|os.O_APPEND, 0)
	_, _ = f.WriteString("2026-12-01T10:00:00Z stdout F g")
	read()
	_, _ = f.WriteString("h\n")
	f.Close()
	read()
	if got[len(got)-1] != "gh" || len(got) != 7 {
		t.Fatalf("torn line: %q", got)
	}
}

func TestFollower_ReadsALegacyLogAsStdout(t *testing.T) {
	path := filepath.Join(t.TempDir(), "c.log")
	write(t, path, "plain old output\n")
	var got []Entry
	fl := NewFollower(path)
	defer fl.Close()
	_ = fl.Read(func(e Entry) error {
		e.Content = bytes.Clone(e.Content)
		got = append(got, e)
		return nil
	})
	if len(got) != 1 || got[0].Stream != Stdout || string(got[0].Content) != "plain old output" || got[0].Partial {
		t.Fatalf("legacy line read as %+v", got)
	}
}

func TestTail_CountsJoinedLinesPerStream(t *testing.T) {
	at := time.Unix(100, 0)
	entries := []Entry{
		{Stream: Stdout, Content: []byte("one")},
		{Stream: Stdout, Partial: true, Content: []byte("tw")},
		{Stream: Stderr, Content: []byte("err")},
		{Stream: Stdout, Content: []byte("o")},
		{Stream: Stdout, Content: []byte("three")},
		{Stream: Stderr, Partial: true, Content: []byte("unfinished")},
	}
	for _, tc := range []struct {
		n    int
		want string
	}{
		{1, "stderr unfinished..."},
		{2, "stdout three|stderr unfinished..."},
		{4, "stderr err|stdout two|stdout three|stderr unfinished..."},
		{10, "stdout one|stderr err|stdout two|stdout three|stderr unfinished..."},
		{0, ""},
	} {
		tl := NewTail(tc.n)
		for _, e := range entries {
			e.Time = at
			tl.Add(e)
		}
		var got []string
		for _, l := range tl.Lines() {
			s := l.Stream + " " + string(l.Content)
			if !l.Complete {
				s += "..."
			}
			got = append(got, s)
		}
		if strings.Join(got, "|") != tc.want {
			t.Errorf("tail %d = %q, want %q", tc.n, strings.Join(got, "|"), tc.want)
		}
	}
}
