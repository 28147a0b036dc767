package executor

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
)

// After the answer line of an attach or exec request, a shim connection
// carries frames both ways (see shimproto.go): a type byte, a 4-byte
// big-endian length and that many bytes of payload.
const (
	frameStdin      byte = 0 // client -> shim: input
	frameStdout     byte = 1 // shim -> client: output
	frameStderr     byte = 2
	frameCloseStdin byte = 3 // client -> shim: no more input (EOF)
	frameResize     byte = 4 // client -> shim: rows, cols (2 x uint16 BE)
	frameEnd        byte = 5 // shim -> client: the output is over
)

// maxFramePayload bounds a frame a reader accepts: writers send at most one
// read buffer (32 KiB) or one API message of input (4 MiB).
const maxFramePayload = 4<<20 + 64

const frameHeaderSize = 5

// errFrameTooLarge marks a frame longer than maxFramePayload.
var errFrameTooLarge = errors.New("frame too large")

// appendFrame appends a frame of typ with payload to dst.
func appendFrame(dst []byte, typ byte, payload []byte) []byte {
	dst = append(dst, typ)
	dst = binary.BigEndian.AppendUint32(dst, uint32(len(payload)))
	return append(dst, payload...)
}

// writeFrame writes one frame in a single write, so that frames written by
// goroutines holding the same lock never interleave.
func writeFrame(w io.Writer, typ byte, payload []byte) error {
	buf := make([]byte, 0, frameHeaderSize+len(payload))
	_, err := w.Write(appendFrame(buf, typ, payload))
	return err
}

// readFrame reads one frame; buf is reused for the payload when large
// enough.
func readFrame(r io.Reader, buf []byte) (typ byte, payload []byte, err error) {
	var h [frameHeaderSize]byte
	if _, err := io.ReadFull(r, h[:]); err != nil {
		return 0, nil, err
	}
	n := binary.BigEndian.Uint32(h[1:])
	if n > maxFramePayload {
		return 0, nil, fmt.Errorf("%w: %d bytes", errFrameTooLarge, n)
	}
	if int(n) > cap(buf) {
		buf = make([]byte, n)
	}
	payload = buf[:n]
	if _, err := io.ReadFull(r, payload); err != nil {
		if errors.Is(err, io.EOF) {
			err = io.ErrUnexpectedEOF
		}
		return 0, nil, err
	}
	return h[0], payload, nil
}

// resizePayload and parseResize encode a terminal size.
func resizePayload(rows, cols uint16) []byte {
	return binary.BigEndian.AppendUint16(binary.BigEndian.AppendUint16(nil, rows), cols)
}

func parseResize(p []byte) (rows, cols uint16, ok bool) {
	if len(p) != 4 {
		return 0, 0, false
	}
	return binary.BigEndian.Uint16(p), binary.BigEndian.Uint16(p[2:]), true
}
