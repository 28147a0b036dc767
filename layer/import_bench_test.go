package layer

import (
	"bytes"
	"strconv"
	"strings"
	"testing"
)

// BenchmarkImport imports a 64 MiB tar of 16 files: the hashing, the
// end-of-archive trail, the free-space checks and the extraction.
func BenchmarkImport(b *testing.B) {
	var entries []entry
	for i := range 16 {
		entries = append(entries, file("f"+strconv.Itoa(i), strings.Repeat(string(rune('a'+i)), 4<<20)))
	}
	tarball := tarOf(b, entries...)
	s := newTestStore(b)
	b.SetBytes(int64(len(tarball)))
	b.ResetTimer()
	for i := 0; b.Loop(); i++ {
		name := "img" + strconv.Itoa(i)
		if _, err := s.Import(b.Context(), name, bytes.NewReader(tarball), ImportOptions{}); err != nil {
			b.Fatal(err)
		}
		b.StopTimer()
		if err := s.RemoveImage(name); err != nil {
			b.Fatal(err)
		}
		b.StartTimer()
	}
}
