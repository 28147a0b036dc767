// Package crilog is the container log format Cairn's shims write and its
// daemon reads: the CRI (kubelet) log format, one entry per line,
//
//	2006-01-02T15:04:05.999999999Z07:00 stdout F text
//
// a timestamp (RFC 3339 with nanoseconds), the stream (stdout or stderr), a
// tag (F: the entry ends a line, P: the line goes on in the next entry of the
// stream) and the content without its newline. A line longer than MaxLine,
// or output that does not end with a newline when it is read, becomes
// partial entries ended by a full one, so no reader ever waits for a
// newline that may never come, and a reader that joins the partial entries
// of a stream gets back exactly the bytes that were written.
//
// A log is a current file (its path) and up to MaxFiles-1 rotated ones,
// path.1 (the newest) to path.N (the oldest). Rotation renames, so a reader
// holding the current file keeps reading it to its end and then moves on to
// its successor (see Follower). It imports nothing of Cairn: the shim writes
// with it and the API reads with it.
package crilog

import (
	"bytes"
	"errors"
	"fmt"
	"time"
)

// Streams.
const (
	Stdout = "stdout"
	Stderr = "stderr"
)

// Tags.
const (
	tagFull    = 'F'
	tagPartial = 'P'
)

// MaxLine is the longest content of one entry: a longer line is split into
// partial entries (the kubelet's default, 16 KiB).
const MaxLine = 16 << 10

// TimeFormat is the layout of an entry's timestamp.
const TimeFormat = time.RFC3339Nano

// Entry is one line of a log.
type Entry struct {
	Time   time.Time
	Stream string
	// Partial: the output line goes on in the stream's next entry.
	Partial bool
	// Content is what was written, without the newline that ends a full
	// entry.
	Content []byte
}

// Bytes returns what the container wrote for e: its content, and the
// newline a full entry stands for.
func (e Entry) Bytes() []byte {
	if e.Partial {
		return e.Content
	}
	return append(e.Content[:len(e.Content):len(e.Content)], '\n')
}

// AppendEntry appends the line of e, newline included, to dst.
func AppendEntry(dst []byte, e Entry) []byte {
	dst = e.Time.UTC().AppendFormat(dst, TimeFormat)
	dst = append(dst, ' ')
	dst = append(dst, e.Stream...)
	dst = append(dst, ' ')
	if e.Partial {
		dst = append(dst, tagPartial)
	} else {
		dst = append(dst, tagFull)
	}
	dst = append(dst, ' ')
	dst = append(dst, e.Content...)
	return append(dst, '\n')
}

// AppendChunk appends to dst the entries of chunk, output of stream read at
// t: a full entry for every line it ends, partial ones for lines longer
// than MaxLine and for what follows the chunk's last newline.
func AppendChunk(dst []byte, stream string, t time.Time, chunk []byte) []byte {
	for len(chunk) > 0 {
		i := bytes.IndexByte(chunk, '\n')
		switch {
		case i >= 0 && i <= MaxLine:
			dst = AppendEntry(dst, Entry{Time: t, Stream: stream, Content: chunk[:i]})
			chunk = chunk[i+1:]
		case len(chunk) > MaxLine:
			dst = AppendEntry(dst, Entry{Time: t, Stream: stream, Partial: true, Content: chunk[:MaxLine]})
			chunk = chunk[MaxLine:]
		default:
			dst = AppendEntry(dst, Entry{Time: t, Stream: stream, Partial: true, Content: chunk})
			chunk = nil
		}
	}
	return dst
}

// ErrBadLine marks a line that is not an entry of this format.
var ErrBadLine = errors.New("not a CRI log line")

// ParseLine parses one line, without its newline. The content aliases line.
func ParseLine(line []byte) (Entry, error) {
	ts, rest, ok := bytes.Cut(line, []byte{' '})
	if !ok {
		return Entry{}, fmt.Errorf("%w: no timestamp", ErrBadLine)
	}
	t, err := time.Parse(TimeFormat, string(ts))
	if err != nil {
		return Entry{}, fmt.Errorf("%w: timestamp: %w", ErrBadLine, err)
	}
	stream, rest, ok := bytes.Cut(rest, []byte{' '})
	if !ok || (string(stream) != Stdout && string(stream) != Stderr) {
		return Entry{}, fmt.Errorf("%w: no stream", ErrBadLine)
	}
	if len(rest) < 2 || (rest[0] != tagFull && rest[0] != tagPartial) || rest[1] != ' ' {
		return Entry{}, fmt.Errorf("%w: no tag", ErrBadLine)
	}
	return Entry{Time: t, Stream: string(stream), Partial: rest[0] == tagPartial, Content: rest[2:]}, nil
}
