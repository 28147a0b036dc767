package schema

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"
)

func openTemp(t *testing.T) (*bolt.DB, string) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "cairn.db")
	db, err := bolt.Open(path, 0o600, &bolt.Options{Timeout: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = db.Close() })
	return db, path
}

// schemaOne lays out a file as schema 1 left it when only the journal had
// opened it: journal buckets only, pending/ keyed by the bare id.
func schemaOne(tx *bolt.Tx) error {
	for _, name := range bucketsOf(1) {
		if _, err := tx.CreateBucket(name); err != nil {
			return err
		}
	}
	if err := Pending(tx).Put([]byte("abc"), []byte(`{"seq":7}`)); err != nil {
		return err
	}
	return Meta(tx).Put(MetaSchema, []byte("1"))
}

func TestMigrate_OneToTwoRekeysPendingAndAddsStoreBuckets(t *testing.T) {
	db, _ := openTemp(t)
	if err := db.Update(schemaOne); err != nil {
		t.Fatal(err)
	}
	err := db.Update(func(tx *bolt.Tx) error {
		ran, err := Migrate(tx)
		if err != nil {
			return err
		}
		if len(ran) != 5 || ran[0].From != 1 || ran[0].To != 2 || ran[0].Name == "" || ran[1].To != 3 || ran[2].To != 4 || ran[3].To != 5 || ran[4].To != 6 {
			t.Errorf("ran %+v", ran)
		}
		if v, _ := StoredVersion(tx); v != Version {
			t.Errorf("version after migration %d", v)
		}
		if err := CheckBuckets(tx, Version); err != nil {
			t.Error(err)
		}
		if Pending(tx).Get([]byte("abc")) != nil || string(Pending(tx).Get([]byte("container/abc"))) != `{"seq":7}` {
			t.Error("pending entry not rekeyed")
		}
		again, err := Migrate(tx)
		if err != nil || len(again) != 0 {
			t.Errorf("second Migrate: %v %v", again, err)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

func TestMigrate_TwoToThreeAddsImageViewsAndKeepsEverything(t *testing.T) {
	db, _ := openTemp(t)
	err := db.Update(func(tx *bolt.Tx) error {
		for _, name := range bucketsOf(2) {
			if _, err := tx.CreateBucket(name); err != nil {
				return err
			}
		}
		if err := Images(tx).Put([]byte("busybox"), []byte(`{"diffIDs":["sha256:x"]}`)); err != nil {
			return err
		}
		if err := Pending(tx).Put([]byte("container/abc"), []byte(`{"seq":7}`)); err != nil {
			return err
		}
		return Meta(tx).Put(MetaSchema, []byte("2"))
	})
	if err != nil {
		t.Fatal(err)
	}
	err = db.Update(func(tx *bolt.Tx) error {
		if tx.Bucket(BucketImageViews) != nil {
			t.Fatal("a schema 2 file has imageviews/")
		}
		ran, err := Migrate(tx)
		if err != nil {
			return err
		}
		if len(ran) != 4 || ran[0].From != 2 || ran[0].To != 3 || ran[1].To != 4 || ran[2].To != 5 || ran[3].To != 6 {
			t.Errorf("ran %+v", ran)
		}
		if err := CheckBuckets(tx, Version); err != nil {
			t.Error(err)
		}
		if ImageViews(tx).Stats().KeyN != 0 || string(Images(tx).Get([]byte("busybox"))) != `{"diffIDs":["sha256:x"]}` ||
			string(Pending(tx).Get([]byte("container/abc"))) != `{"seq":7}` {
			t.Error("the migration changed data")
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

func TestMigrate_FiveToSixAddsVolumesAndKeepsEverything(t *testing.T) {
	db, _ := openTemp(t)
	err := db.Update(func(tx *bolt.Tx) error {
		for _, name := range bucketsOf(5) {
			if _, err := tx.CreateBucket(name); err != nil {
				return err
			}
		}
		if err := ImageViews(tx).Put([]byte("sha256:x"), []byte(`{"state":"present"}`)); err != nil {
			return err
		}
		if err := Pending(tx).Put([]byte("image/sha256:x"), []byte(`{"seq":7}`)); err != nil {
			return err
		}
		return Meta(tx).Put(MetaSchema, []byte("5"))
	})
	if err != nil {
		t.Fatal(err)
	}
	err = db.Update(func(tx *bolt.Tx) error {
		if tx.Bucket(BucketVolumes) != nil {
			t.Fatal("a schema 5 file has volumes/")
		}
		if err := CheckBuckets(tx, 6); err == nil {
			t.Error("a schema 5 file passes the bucket check of schema 6")
		}
		ran, err := Migrate(tx)
		if err != nil {
			return err
		}
		if len(ran) != 1 || ran[0].From != 5 || ran[0].To != 6 || ran[0].Name == "" {
			t.Errorf("ran %+v", ran)
		}
		if err := CheckBuckets(tx, 6); err != nil {
			t.Error(err)
		}
		if v, _ := StoredVersion(tx); v != 6 {
			t.Errorf("version after migration %d", v)
		}
		if Volumes(tx).Stats().KeyN != 0 || string(ImageViews(tx).Get([]byte("sha256:x"))) != `{"state":"present"}` ||
			string(Pending(tx).Get([]byte("image/sha256:x"))) != `{"seq":7}` {
			t.Error("the migration changed data")
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

func TestMigrate_RefusesNewerAndUnknownVersions(t *testing.T) {
	db, _ := openTemp(t)
	if err := db.Update(Create); err != nil {
		t.Fatal(err)
	}
	for v, want := range map[string]error{strconv.Itoa(Version + 1): ErrNewerSchema, "0": ErrBadSchema, "x": ErrBadSchema} {
		err := db.Update(func(tx *bolt.Tx) error {
			if err := Meta(tx).Put(MetaSchema, []byte(v)); err != nil {
				return err
			}
			_, err := Migrate(tx)
			return err
		})
		if !errors.Is(err, want) {
			t.Errorf("version %q: got %v, want %v", v, err, want)
		}
	}
}

func TestMigrate_FourToFiveAddsExecsAndKeepsEverything(t *testing.T) {
	db, _ := openTemp(t)
	err := db.Update(func(tx *bolt.Tx) error {
		for _, name := range bucketsOf(4) {
			if _, err := tx.CreateBucket(name); err != nil {
				return err
			}
		}
		if err := ImageViews(tx).Put([]byte("sha256:x"), []byte(`{"state":"present"}`)); err != nil {
			return err
		}
		if err := Meta(tx).Put(MetaSchema, []byte("4")); err != nil {
			return err
		}
		if Execs(tx) != nil {
			t.Fatal("a schema 4 file has execs/")
		}
		if err := CheckBuckets(tx, 5); err == nil {
			t.Error("a schema 4 file passed the schema 5 bucket check")
		}
		ran, err := Migrate(tx)
		if err != nil {
			return err
		}
		if len(ran) != 2 || ran[0].From != 4 || ran[0].To != 5 || ran[1].To != 6 || Execs(tx) == nil || Execs(tx).Stats().KeyN != 0 {
			t.Errorf("ran %+v, execs/ %v", ran, Execs(tx) != nil)
		}
		if string(ImageViews(tx).Get([]byte("sha256:x"))) != `{"state":"present"}` {
			t.Error("the migration changed data")
		}
		return CheckBuckets(tx, Version)
	})
	if err != nil {
		t.Fatal(err)
	}
}

func TestMigrations_AreAnOrderedChainEndingAtVersion(t *testing.T) {
	v := firstVersion
	for _, m := range Migrations {
		if m.From != v || m.To != v+1 || m.Name == "" || m.Run == nil {
			t.Fatalf("migration %+v does not follow version %d", m, v)
		}
		v = m.To
	}
	if v != Version {
		t.Fatalf("migrations end at %d, Version is %d", v, Version)
	}
}

func TestCreate_RefusesAFileThatHasBuckets(t *testing.T) {
	db, _ := openTemp(t)
	if err := db.Update(Create); err != nil {
		t.Fatal(err)
	}
	if err := db.Update(Create); err == nil {
		t.Fatal("Create ran twice")
	}
}

func TestReadFileMeta_TruncatedFileIsRefused(t *testing.T) {
	db, path := openTemp(t)
	err := db.Update(func(tx *bolt.Tx) error {
		if err := Create(tx); err != nil {
			return err
		}
		big := make([]byte, 3000)
		for i := range 200 {
			if err := Journal(tx).Put([]byte{byte(i >> 8), byte(i)}, big); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	_ = db.Close()
	fm, err := ReadFileMeta(path)
	if err != nil {
		t.Fatal(err)
	}
	if fm.PageSize != os.Getpagesize() || fm.Pgid < 100 {
		t.Fatalf("meta %+v", fm)
	}
	if err := os.Truncate(path, int64(fm.Pgid-1)*int64(fm.PageSize)); err != nil {
		t.Fatal(err)
	}
	if _, err := ReadFileMeta(path); !errors.Is(err, ErrTruncated) {
		t.Fatalf("got %v, want ErrTruncated", err)
	}
	// Both meta pages unreadable.
	data, _ := os.ReadFile(path)
	data[16] ^= 0xff
	data[fm.PageSize+16] ^= 0xff
	_ = os.WriteFile(path, data, 0o600)
	if _, err := ReadFileMeta(path); !errors.Is(err, ErrBadMeta) {
		t.Fatalf("got %v, want ErrBadMeta", err)
	}
}

// leafWith returns the position of the first leaf page of the file whose
// elements hold value.
func leafWith(t *testing.T, data []byte, ps int, value []byte) int {
	t.Helper()
	at := bytes.Index(data, value)
	if at < 0 {
		t.Fatal("value not in file")
	}
	return at / ps * ps
}

func TestCheckPages_DamagedHeadersAreRefusedBeforeBboltSeesThem(t *testing.T) {
	db, path := openTemp(t)
	value := bytes.Repeat([]byte("v"), 100)
	err := db.Update(func(tx *bolt.Tx) error {
		if err := Create(tx); err != nil {
			return err
		}
		for i := range 50 {
			if err := Journal(tx).Put([]byte{0, byte(i)}, append([]byte{byte(i)}, value...)); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	_ = db.Close()
	fm, err := ReadFileMeta(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := CheckPages(path, fm); err != nil {
		t.Fatalf("a sound file: %v", err)
	}
	good, _ := os.ReadFile(path)
	leaf := leafWith(t, good, fm.PageSize, append([]byte{7}, value...))
	for name, damage := range map[string]func(p []byte){
		"overflow past the end": func(p []byte) { p[15] = 0x7f },
		"too many elements":     func(p []byte) { p[11] = 0xff },
		"key runs off the page": func(p []byte) { p[16+4*16+4+2] = 0xff }, // element 4's pos, third byte
	} {
		data := bytes.Clone(good)
		damage(data[leaf : leaf+fm.PageSize])
		if err := os.WriteFile(path, data, 0o600); err != nil {
			t.Fatal(err)
		}
		if err := CheckPages(path, fm); !errors.Is(err, ErrBadPage) {
			t.Errorf("%s: got %v, want ErrBadPage", name, err)
		}
	}
}

func TestMigrate_ThreeToFourAddsNetworkBucketsAndKeepsEverything(t *testing.T) {
	db, _ := openTemp(t)
	err := db.Update(func(tx *bolt.Tx) error {
		for _, name := range bucketsOf(3) {
			if _, err := tx.CreateBucket(name); err != nil {
				return err
			}
		}
		if err := Pending(tx).Put([]byte("container/abc"), []byte(`{"seq":7}`)); err != nil {
			return err
		}
		return Meta(tx).Put(MetaSchema, []byte("3"))
	})
	if err != nil {
		t.Fatal(err)
	}
	err = db.Update(func(tx *bolt.Tx) error {
		if tx.Bucket(BucketNetAttach) != nil || tx.Bucket(BucketNetworks) != nil {
			t.Fatal("a schema 3 file has network buckets")
		}
		ran, err := Migrate(tx)
		if err != nil {
			return err
		}
		if len(ran) != 3 || ran[0].From != 3 || ran[0].To != 4 || ran[1].To != 5 || ran[2].To != 6 {
			t.Errorf("ran %+v", ran)
		}
		if err := CheckBuckets(tx, Version); err != nil {
			t.Error(err)
		}
		if NetAttach(tx).Stats().KeyN != 0 || Networks(tx).Stats().KeyN != 0 || string(Pending(tx).Get([]byte("container/abc"))) != `{"seq":7}` {
			t.Error("the migration changed data")
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}
