package schema

import (
	"encoding/binary"
	"errors"
	"fmt"
	"hash/fnv"
	"io"
	"os"
)

// bbolt's on-disk meta page, read here before bbolt maps the file: a page
// that bbolt believes exists past the end of the file would be a SIGBUS on
// first touch, which no recover() catches. Layout (little endian on the
// machines cairnd runs on; bbolt writes native order):
//
//	page header  id u64 | flags u16 | count u16 | overflow u32      (16 bytes)
//	meta         magic u32 | version u32 | pageSize u32 | flags u32 |
//	             root bucket {root pgid u64, sequence u64} |
//	             freelist pgid u64 | pgid (high water mark) u64 | txid u64 |
//	             checksum u64 = FNV-1a 64 of the 56 bytes before it
const (
	pageHeaderSize = 16
	metaSize       = 64
	boltMagic      = 0xED0CDAED
	boltVersion    = 2
	noFreelist     = ^uint64(0)
)

// ErrTruncated means the file is shorter than its meta page says.
var ErrTruncated = errors.New("file is truncated")

// ErrBadMeta means neither of bbolt's two meta pages is valid.
var ErrBadMeta = errors.New("no valid bbolt meta page")

// FileMeta is the meta page bbolt would use: the valid one of the two with
// the higher transaction id.
type FileMeta struct {
	Page     int // 0 or 1
	PageSize int
	Pgid     uint64 // high water mark: pages [0, Pgid) exist
	Txid     uint64
	Freelist uint64
	Size     int64 // the file's size
}

type rawMeta struct {
	magic, version, pageSize   uint32
	root, freelist, pgid, txid uint64
	valid                      bool
}

func parseMeta(page []byte) rawMeta {
	if len(page) < pageHeaderSize+metaSize {
		return rawMeta{}
	}
	m := page[pageHeaderSize : pageHeaderSize+metaSize]
	le := binary.LittleEndian
	r := rawMeta{
		magic: le.Uint32(m[0:]), version: le.Uint32(m[4:]), pageSize: le.Uint32(m[8:]),
		root: le.Uint64(m[16:]), freelist: le.Uint64(m[32:]), pgid: le.Uint64(m[40:]), txid: le.Uint64(m[48:]),
	}
	h := fnv.New64a()
	_, _ = h.Write(m[:56])
	r.valid = r.magic == boltMagic && r.version == boltVersion && h.Sum64() == le.Uint64(m[56:]) &&
		r.pageSize >= 512 && r.pageSize&(r.pageSize-1) == 0
	return r
}

// ReadFileMeta reads both meta pages of the bbolt file at path, picks the
// one bbolt would use (valid by magic, version and checksum; the higher txid
// first), and checks that the file holds every page up to its high water
// mark. It reads the file with plain reads and never maps or writes it.
func ReadFileMeta(path string) (FileMeta, error) {
	f, err := os.Open(path)
	if err != nil {
		return FileMeta{}, err
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return FileMeta{}, err
	}
	read := func(off int64, n int) []byte {
		buf := make([]byte, n)
		got, _ := f.ReadAt(buf, off)
		return buf[:got]
	}
	m0 := parseMeta(read(0, pageHeaderSize+metaSize))
	// Meta page 1 sits one page in; the page size comes from a valid meta 0,
	// or else is one of the sizes bbolt may have used.
	sizes := []int{os.Getpagesize(), 4096, 8192, 16384, 32768, 65536, 1024, 2048}
	if m0.valid {
		sizes = []int{int(m0.pageSize)}
	}
	var m1 rawMeta
	for _, ps := range sizes {
		if c := parseMeta(read(int64(ps), pageHeaderSize+metaSize)); c.valid && int(c.pageSize) == ps {
			m1 = c
			break
		}
	}
	// As bbolt does: the higher txid if it is valid, else the other one.
	pick, page, other, otherPage := m0, 0, m1, 1
	if m1.txid > m0.txid {
		pick, page, other, otherPage = m1, 1, m0, 0
	}
	if !pick.valid {
		pick, page = other, otherPage
	}
	if !pick.valid {
		return FileMeta{}, fmt.Errorf("%w (file of %d bytes)", ErrBadMeta, st.Size())
	}
	fm := FileMeta{Page: page, PageSize: int(pick.pageSize), Pgid: pick.pgid, Txid: pick.txid, Freelist: pick.freelist, Size: st.Size()}
	if pick.root < 2 || pick.root >= pick.pgid || (pick.freelist != noFreelist && (pick.freelist < 2 || pick.freelist >= pick.pgid)) {
		return fm, fmt.Errorf("%w: meta page %d (txid %d): root page %d or freelist page %d outside pages 2..%d",
			ErrBadPage, page, pick.txid, pick.root, pick.freelist, pick.pgid-1)
	}
	need := int64(pick.pgid) * int64(pick.pageSize)
	if pick.pgid > 1<<40 || need > st.Size() {
		return fm, fmt.Errorf("%w: %d bytes, but meta page %d (txid %d) counts %d pages of %d bytes (%d bytes)",
			ErrTruncated, st.Size(), page, pick.txid, pick.pgid, pick.pageSize, need)
	}
	return fm, nil
}

// FileIsEmpty reports whether path is missing or has no bytes: a file bbolt
// will initialise, for which Create runs.
func FileIsEmpty(path string) (bool, error) {
	st, err := os.Stat(path)
	if errors.Is(err, os.ErrNotExist) {
		return true, nil
	}
	if err != nil {
		return false, err
	}
	return st.Size() == 0, nil
}

// ErrBadPage means a page header promises more than its pages hold.
var ErrBadPage = errors.New("damaged page")

// Page header flags, as bbolt writes them.
const (
	branchPage   = 0x01
	leafPage     = 0x02
	freelistPage = 0x10
	elementSize  = 16 // a branch or a leaf element header
)

// CheckPages reads every page of the file up to the high water mark of fm
// and checks what bbolt would trust before its own check could look: each
// page that identifies itself at its position as a branch, leaf or freelist
// page lies below the high water mark with its overflow, its element count
// fits in it, and every key and value of its elements lies inside it. A
// single damaged byte there would otherwise have bbolt's check insert
// billions of page ids in a map (an overflow of 2^31), or read a key past
// the end of the file (a fault no recover() catches in bbolt's checking
// goroutine). Pages whose header names another position are data inside a
// larger page or garbage in a free page, which bbolt never interprets
// (it asserts a page's id before reading it).
func CheckPages(path string, fm FileMeta) error {
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	ps := int64(fm.PageSize)
	const chunkPages = 256
	buf := make([]byte, chunkPages*ps)
	le := binary.LittleEndian
	hwm := fm.Pgid
	var problems []error
	for first := uint64(0); first < hwm; first += chunkPages {
		n, err := f.ReadAt(buf, int64(first)*ps)
		if err != nil && !errors.Is(err, io.EOF) {
			return err
		}
		for i := int64(0); (i+1)*ps <= int64(n) && first+uint64(i) < hwm; i++ {
			id := first + uint64(i)
			page := buf[i*ps : (i+1)*ps]
			if le.Uint64(page) != id {
				continue
			}
			flags, count, overflow := le.Uint16(page[8:]), uint64(le.Uint16(page[10:])), uint64(le.Uint32(page[12:]))
			if flags != branchPage && flags != leafPage && flags != freelistPage {
				continue
			}
			if id+overflow >= hwm {
				problems = append(problems, fmt.Errorf("page %d: overflow %d runs past the high water mark %d", id, overflow, hwm))
				continue
			}
			size := (overflow + 1) * uint64(ps)
			if flags == freelistPage {
				idx := uint64(0)
				if count == 0xFFFF {
					idx, count = 1, le.Uint64(page[pageHeaderSize:])
				}
				if count > size/8 || pageHeaderSize+(idx+count)*8 > size {
					problems = append(problems, fmt.Errorf("freelist page %d: %d ids do not fit in %d bytes", id, count, size))
				}
				continue
			}
			if pageHeaderSize+count*elementSize > size {
				problems = append(problems, fmt.Errorf("page %d: %d elements do not fit in %d bytes", id, count, size))
				continue
			}
			// Element headers may sit past the first page of the run.
			elems := page
			if need := pageHeaderSize + count*elementSize; need > uint64(len(page)) {
				elems = make([]byte, need)
				if _, err := f.ReadAt(elems, int64(id)*ps); err != nil {
					return err
				}
			}
			for e := uint64(0); e < count; e++ {
				off := pageHeaderSize + e*elementSize
				el := elems[off : off+elementSize]
				var end uint64
				if flags == leafPage {
					end = off + uint64(le.Uint32(el[4:])) + uint64(le.Uint32(el[8:])) + uint64(le.Uint32(el[12:]))
				} else {
					end = off + uint64(le.Uint32(el[0:])) + uint64(le.Uint32(el[4:]))
				}
				if end > size {
					problems = append(problems, fmt.Errorf("page %d: element %d ends at byte %d of a %d-byte page", id, e, end, size))
					break
				}
			}
		}
		if len(problems) > 8 {
			break
		}
	}
	if len(problems) > 0 {
		return fmt.Errorf("%w: %w", ErrBadPage, errors.Join(problems...))
	}
	return nil
}
