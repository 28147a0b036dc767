package layer

import (
	"errors"
	"path/filepath"
	"strings"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/cairn-run/cairn/internal/schema"
)

// goodStore is two images sharing a two-layer chain and a mount on one.
func goodStore(tx *bolt.Tx) error {
	if err := schema.Create(tx); err != nil {
		return err
	}
	put := func(b *bolt.Bucket, k string, v any) error { return putJSON(b, k, v) }
	for _, step := range []error{
		put(layersBucket(tx), "sha256:a", layerRecord{DiffID: "sha256:a", CacheID: "ca", Refcount: 1}),
		put(layersBucket(tx), "sha256:b", layerRecord{DiffID: "sha256:b", Parent: "sha256:a", CacheID: "cb", Refcount: 2}),
		put(imagesBucket(tx), "one", imageRecord{ChainID: "sha256:b"}),
		put(imagesBucket(tx), "two", imageRecord{ChainID: "sha256:b"}),
		put(mountsBucket(tx), "m1", mountRecord{Image: "one", ChainID: "sha256:b"}),
	} {
		if step != nil {
			return step
		}
	}
	return nil
}

func TestCheckTx_FindsEveryBrokenInvariant(t *testing.T) {
	cases := []struct {
		name    string
		breakIt func(tx *bolt.Tx) error
		want    string
	}{
		{"consistent", func(*bolt.Tx) error { return nil }, ""},
		{"image on an unregistered layer", func(tx *bolt.Tx) error {
			return putJSON(imagesBucket(tx), "three", imageRecord{ChainID: "sha256:zzz"})
		}, `image "three": layer sha256:zzz is not registered`},
		{"layer with an unregistered parent", func(tx *bolt.Tx) error {
			return putJSON(layersBucket(tx), "sha256:a", layerRecord{Parent: "sha256:gone", CacheID: "ca", Refcount: 1})
		}, "layer sha256:a: parent sha256:gone is not registered"},
		{"refcount too high", func(tx *bolt.Tx) error {
			return putJSON(layersBucket(tx), "sha256:b", layerRecord{Parent: "sha256:a", CacheID: "cb", Refcount: 3})
		}, "layer sha256:b: refcount 3, but 2 images and layers use it"},
		{"refcount too low", func(tx *bolt.Tx) error {
			return putJSON(layersBucket(tx), "sha256:a", layerRecord{CacheID: "ca", Refcount: 0})
		}, "layer sha256:a: refcount 0, but 1 images and layers use it"},
		{"mount on an unregistered layer", func(tx *bolt.Tx) error {
			return putJSON(mountsBucket(tx), "m2", mountRecord{Image: "one", ChainID: "sha256:c"})
		}, "mount m2: layer sha256:c is not registered"},
		{"undecodable record", func(tx *bolt.Tx) error {
			return mountsBucket(tx).Put([]byte("m3"), []byte("{"))
		}, `mounts "m3"`},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			db, err := bolt.Open(filepath.Join(t.TempDir(), "cairn.db"), 0o600, &bolt.Options{Timeout: time.Second})
			if err != nil {
				t.Fatal(err)
			}
			defer db.Close()
			if err := db.Update(func(tx *bolt.Tx) error {
				if err := goodStore(tx); err != nil {
					return err
				}
				return tc.breakIt(tx)
			}); err != nil {
				t.Fatal(err)
			}
			err = db.View(CheckTx)
			if tc.want == "" {
				if err != nil {
					t.Fatal(err)
				}
				return
			}
			if !errors.Is(err, ErrStoreInconsistent) || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("got %v, want ErrStoreInconsistent with %q", err, tc.want)
			}
			var repairs []string
			if err := db.Update(func(tx *bolt.Tx) error {
				var err error
				repairs, err = RepairTx(tx)
				return err
			}); err != nil {
				t.Fatalf("repair: %v (%v)", err, repairs)
			}
			if len(repairs) == 0 {
				t.Fatal("repair reported nothing")
			}
			if err := db.View(CheckTx); err != nil {
				t.Fatalf("after repair %v: %v", repairs, err)
			}
		})
	}
}

func TestCheckTx_HoldsAfterRealImportsAndMounts(t *testing.T) {
	s := newStoreWithImage(t)
	mustImport(t, s, "two", busyboxTar(t))
	if _, err := s.CreateMount(t.Context(), mountID(1), "bb", InitConfig{Hostname: "h"}); err != nil {
		t.Fatal(err)
	}
	if err := s.db.View(CheckTx); err != nil {
		t.Fatal(err)
	}
	if err := s.RemoveImage("two"); err != nil {
		t.Fatal(err)
	}
	if err := s.db.View(CheckTx); err != nil {
		t.Fatal(err)
	}
}
