// Package layer owns Cairn's content-addressed layer store: importing an
// image from an untrusted rootfs tar, the per-container init and RW layers,
// and the overlay mount that joins them.
//
// It never decides when a container is created, started or removed — that is
// the state machine's job, recorded in the journal before any call here — and
// it never touches namespaces, cgroups or processes. Every side-effecting
// method is idempotent so that recovery can simply call it again.
//
// # Content addressing
//
// diffID = "sha256:" + hex(sha256(uncompressed layer tar stream)), the whole
// stream including the end-of-archive padding. chainID(1) = diffID(1) and
// chainID(n) = "sha256:" + hex(sha256(chainID(n-1) + " " + diffID(n))).
// Layers are keyed by chainID, so two images built from the same tar share
// one extracted directory (refcounted in the "layers" bucket).
//
// # Disk layout under the store directory
//
//	<dir>/
//	  layers/<cacheID>/       extracted image layer; cacheID is 32 random hex,
//	                          never derived from the (untrusted) content
//	  mounts/<mountID>/       one container mount; mountID is 64 hex
//	      init/               etc/hosts, etc/hostname, etc/resolv.conf,
//	                          dev/console, etc/mtab -> /proc/mounts
//	      upper/              the container's RW layer (overlay upperdir)
//	      work/               overlay workdir
//	      merged/             the container rootfs (overlay mount point);
//	                          created last, so its presence means the mount
//	                          directory is complete
//	  tmp/import-*/           imports in progress; wiped by Open
//
// layers/, mounts/ and tmp/ are 0700: extracted layers hold setuid-root
// binaries from untrusted tars, which host users must not be able to run.
//
// The overlay is lowerdir=<init>:<layers top first...>,upperdir=<upper>,
// workdir=<work>. The upper directory must not itself be on overlayfs.
//
// # Crash safety
//
// An import extracts into tmp/, syncs the filesystem once (syncfs), renames
// the directory into layers/, fsyncs layers/ and only then registers it in one
// bbolt transaction. A crash before the commit leaves either a tmp dir or an
// unreferenced layers/<cacheID>; Open deletes both. Nothing half-imported is
// ever registered.
//
// CreateMount registers the mount first (one transaction, which also checks
// that the image exists) and then builds its directories, merged/ last; calling
// it again after a crash finishes the job. Its two halves are exported so the
// driver can put the registration into the create's INTENT transaction:
// RegisterMount returns the write (a schema.Op) to commit with the record, and
// BuildMount, idempotent, makes the directories. RemoveMountDirs and
// UnregisterMount split RemoveMount the same way, the record's deletion
// joining the remove's DONE.
//
// The store has no bbolt handle of its own: it reads through Storage.View and
// writes through Storage.Commit, the journal's group commit, so its writes
// share the journal's transactions and fsyncs. RemoveMount deletes the directories
// before the record, and also deletes the directory of an unregistered mount
// id, so a crash on either side leaves something RemoveMount can finish.
//
// The bbolt layout is drawn in internal/schema; the record encodings are in
// buckets.go.
package layer
