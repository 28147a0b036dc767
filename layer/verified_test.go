package layer

import (
	"bytes"
	"os"
	"path/filepath"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/cairn-run/cairn/internal/schema"
)

// TestVerifiedLayers_SurviveAStartAndAreAdoptedOnce: a kept layer is
// listed nowhere, survives a reopen (what a crash leaves), is taken by the
// first pull that wants its diffID and blob and by no second one, and
// becomes a registered layer only through an install and a registration.
func TestVerifiedLayers_SurviveAStartAndAreAdoptedOnce(t *testing.T) {
	dir := t.TempDir()
	db, err := bolt.Open(filepath.Join(dir, "cairn.db"), 0o600, &bolt.Options{Timeout: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	if err := db.Update(schema.Create); err != nil {
		t.Fatal(err)
	}
	s, err := Open(filepath.Join(dir, "layer"), boltStorage{db})
	if err != nil {
		t.Fatal(err)
	}
	img := newTestImage(t, "true", tarOf(t, file("a", "one")), tarOf(t, file("b", "two")))
	chain := ChainIDs(img.diffIDs)
	st, err := s.NewStaging(ImportOptions{ReserveBytes: -1})
	if err != nil {
		t.Fatal(err)
	}
	var kept []string
	for i, blob := range img.blobs {
		l, err := st.Layer(t.Context(), bytes.NewReader(blob), LayerSource{ChainID: chain[i], Digest: sha256Of(blob), Size: int64(len(blob)), DiffID: img.diffIDs[i]})
		if err != nil {
			t.Fatal(err)
		}
		if i == 1 {
			break // the second layer was still downloading at the crash
		}
		if _, err := s.KeepVerified(l); err != nil {
			t.Fatal(err)
		}
		kept = append(kept, l.CacheID)
	}
	// A layer directory whose marker never landed.
	half := filepath.Join(s.verifiedRoot, "0123456789abcdef0123456789abcdef")
	if err := os.MkdirAll(filepath.Join(half, "layer"), 0o700); err != nil {
		t.Fatal(err)
	}
	// The crash: nothing is closed; the next start opens the store again.
	s, err = Open(filepath.Join(dir, "layer"), boltStorage{db})
	if err != nil {
		t.Fatal(err)
	}
	if ids, _ := s.VerifiedLayers(); len(ids) != 1 || ids[0] != kept[0] {
		t.Fatalf("verified layers after a start: %v, want %v (the incomplete one swept)", ids, kept)
	}
	if ok, err := s.VerifiedLayerKept(kept[0]); !ok || err != nil {
		t.Fatalf("kept layer not complete: %v %v", ok, err)
	}
	if have, _ := s.RegisteredLayers(chain); have[chain[0]] {
		t.Fatal("a kept layer is registered")
	}
	if _, ok, _ := s.TakeVerified(img.diffIDs[0], "sha256:"+string(bytes.Repeat([]byte("0"), 64))); ok {
		t.Fatal("a kept layer was taken for another blob")
	}
	l, ok, err := s.TakeVerified(img.diffIDs[0], sha256Of(img.blobs[0]))
	if err != nil || !ok || l.CacheID != kept[0] {
		t.Fatalf("take: %+v %v %v", l, ok, err)
	}
	if _, again, _ := s.TakeVerified(img.diffIDs[0], sha256Of(img.blobs[0])); again {
		t.Fatal("a kept layer was taken twice")
	}
	l.ChainID = chain[0]
	// The start wiped the old staging directory; the next pull has its own.
	st, err = s.NewStaging(ImportOptions{ReserveBytes: -1})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	l2, err := st.Layer(t.Context(), bytes.NewReader(img.blobs[1]), LayerSource{ChainID: chain[1], Digest: sha256Of(img.blobs[1]), Size: int64(len(img.blobs[1])), DiffID: img.diffIDs[1]})
	if err != nil {
		t.Fatal(err)
	}
	staged := []StagedLayer{l, l2}
	if err := s.InstallLayers(staged); err != nil {
		t.Fatal(err)
	}
	var reg Registration
	if err := s.update(s.RegisterImage(NewImage{ID: img.id, Config: img.config, DiffIDs: img.diffIDs, Names: []string{"docker.io/library/resumed:latest"}, Staged: staged}, &reg)); err != nil {
		t.Fatal(err)
	}
	if ids, _ := s.VerifiedLayers(); len(ids) != 0 {
		t.Fatalf("verified layers after the install: %v", ids)
	}
	got, err := s.Image("resumed")
	if err != nil || got.ID != img.id {
		t.Fatalf("image: %+v %v", got, err)
	}
	if b, err := os.ReadFile(filepath.Join(s.layerDir(kept[0]), "a")); err != nil || string(b) != "one" {
		t.Fatalf("adopted layer content: %q %v", b, err)
	}
	if b, err := os.ReadFile(s.blobPath(kept[0])); err != nil || !bytes.Equal(b, img.blobs[0]) {
		t.Fatalf("adopted layer blob: %v", err)
	}
}

// TestVerifiedLayers_AKeptLayerNobodyAdoptsIsSweptAfterItsTTL: the first
// start after VerifiedLayerTTL removes it.
func TestVerifiedLayers_AKeptLayerNobodyAdoptsIsSweptAfterItsTTL(t *testing.T) {
	s := newTestStore(t)
	st, err := s.NewStaging(ImportOptions{ReserveBytes: -1})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	blob := tarOf(t, file("a", "one"))
	l, err := st.Layer(t.Context(), bytes.NewReader(blob), LayerSource{ChainID: sha256Of(blob), Digest: sha256Of(blob), Size: int64(len(blob)), DiffID: sha256Of(blob)})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.KeepVerified(l); err != nil {
		t.Fatal(err)
	}
	if err := s.sweepVerified(time.Now().Add(VerifiedLayerTTL - time.Minute)); err != nil {
		t.Fatal(err)
	}
	if ids, _ := s.VerifiedLayers(); len(ids) != 1 {
		t.Fatalf("swept before its TTL: %v", ids)
	}
	if err := s.sweepVerified(time.Now().Add(VerifiedLayerTTL + time.Minute)); err != nil {
		t.Fatal(err)
	}
	if ids, _ := s.VerifiedLayers(); len(ids) != 0 {
		t.Fatalf("not swept after its TTL: %v", ids)
	}
}
