package executor

import (
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/cairn-run/cairn/internal/crilog"
)

// The shim writes its container's log (crilog, the CRI format) and must
// never hold the container up doing it: a container that writes faster
// than the disk takes, or a disk that stalls, costs log lines, not the
// container's progress. The copiers hand each chunk of output to a logSink,
// which queues it without blocking and writes it from a goroutine of its
// own; when the queue is full the chunk is dropped and counted, and an
// entry on stderr says, where the gap is, how many bytes are missing.

// logQueueLimit bounds the output waiting to be written: a little under a
// second of a fast disk.
const logQueueLimit = 8 << 20

// Defaults of a container's log rotation when its spec sets none (the
// kubelet's).
const (
	DefaultLogMaxSize  = 10 << 20
	DefaultLogMaxFiles = 5
)

type logSink struct {
	w   *crilog.Writer // the writer goroutine's
	log *slog.Logger

	mu       sync.Mutex
	cond     *sync.Cond // signalled when the queue grows, shrinks or closes
	queue    [][]byte
	queued   int
	dropped  int64 // bytes dropped since the last note
	total    int64 // bytes dropped in all, for the shim's state answer
	enqueued uint64
	written  uint64
	closing  bool
	failing  bool // the last write failed (logged once per episode)
	done     chan struct{}
}

// newLogSink opens the log at path and starts writing it. droppedBefore
// carries the count of a shim this one took over from.
func newLogSink(path string, maxSize int64, maxFiles int, droppedBefore int64, log *slog.Logger) (*logSink, error) {
	if maxSize == 0 {
		maxSize = DefaultLogMaxSize
	}
	if maxFiles == 0 {
		maxFiles = DefaultLogMaxFiles
	}
	if maxSize < 0 {
		maxSize = 0 // never rotate
	}
	w, err := crilog.OpenWriter(path, maxSize, maxFiles)
	if err != nil {
		return nil, fmt.Errorf("open log: %w", err)
	}
	l := &logSink{w: w, log: log, total: droppedBefore, done: make(chan struct{})}
	l.cond = sync.NewCond(&l.mu)
	go l.run()
	return l, nil
}

// add queues the entries of chunk, output of stream read at t; it never
// blocks on the disk.
func (l *logSink) add(stream string, t time.Time, chunk []byte) {
	entries := crilog.AppendChunk(make([]byte, 0, len(chunk)+64), stream, t, chunk)
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.closing {
		return
	}
	if l.queued+len(entries) > logQueueLimit {
		l.dropped += int64(len(chunk))
		l.total += int64(len(chunk))
		return
	}
	l.noteDropsLocked(t)
	l.queue = append(l.queue, entries)
	l.queued += len(entries)
	l.enqueued++
	l.cond.Broadcast()
}

// noteDropsLocked queues the note of bytes dropped since the last one.
func (l *logSink) noteDropsLocked(t time.Time) {
	if l.dropped == 0 {
		return
	}
	note := crilog.AppendEntry(nil, crilog.Entry{Time: t, Stream: crilog.Stderr,
		Content: fmt.Appendf(nil, "cairn: %d bytes of output are missing here: the log could not keep up and the container was not held up", l.dropped)})
	l.dropped = 0
	l.queue = append(l.queue, note)
	l.queued += len(note)
	l.enqueued++
}

// droppedBytes is how many bytes of output this log has lost.
func (l *logSink) droppedBytes() int64 {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.total
}

func (l *logSink) run() {
	defer close(l.done)
	for {
		l.mu.Lock()
		for len(l.queue) == 0 && !l.closing {
			l.cond.Wait()
		}
		batch := l.queue
		l.queue, l.queued = nil, 0
		closing := l.closing
		l.mu.Unlock()
		for _, entries := range batch {
			err := l.w.Write(entries)
			l.mu.Lock()
			if err != nil {
				// Lost like a dropped chunk (entries are about the size
				// of the output they hold).
				l.dropped += int64(len(entries))
				l.total += int64(len(entries))
				if !l.failing {
					l.log.Error("write container log", "err", err)
				}
			}
			l.failing = err != nil
			l.written++
			l.cond.Broadcast()
			l.mu.Unlock()
		}
		if closing && len(batch) == 0 {
			return
		}
	}
}

// flush waits until everything queued before it is on its way to the disk
// (written to the file, not synced).
func (l *logSink) flush() {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.noteDropsLocked(time.Now())
	l.cond.Broadcast()
	target := l.enqueued
	for l.written < target {
		l.cond.Wait()
	}
}

// close flushes, stops the writer and closes the file.
func (l *logSink) close() {
	l.flush()
	l.mu.Lock()
	l.closing = true
	l.cond.Broadcast()
	l.mu.Unlock()
	<-l.done
	if err := l.w.Close(); err != nil {
		l.log.Error("close container log", "err", err)
	}
}
