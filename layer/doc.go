// Package layer owns Cairn's content-addressed layer store: images (their
// names, ids and configs), their layers, each extracted once from an
// untrusted tar, the per-container init and RW layers, and the overlay
// mount that joins them.
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
// Layers are keyed by chainID, so two images whose chains start alike share
// the directories of that common part (refcounted in the "layers" bucket:
// each images/ key holds one reference on its top layer, each layer one on
// its parent).
//
// An image's id is the sha256 of its config (kept byte for byte); an image
// made from one rootfs tar gets FlatConfig, so the same tar always has the
// same id. Its names are images/ keys, canonical references
// (internal/imageref); a name given to another image moves, and an image
// left without a name stays under its id (dangling) until it is deleted.
//
// Image layers are extracted with OCI whiteouts made overlay whiteouts:
// ".wh.<name>" becomes a character device 0/0 at <name> and ".wh..wh..opq"
// the xattr trusted.overlay.opaque=y on its directory; every other refusal
// of the flat import (devices, escaping names and links, ...) holds for them
// too. A flat import keeps ".wh." names as the files they are.
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
//	  blobs/<cacheID>         the layer's blob as it came (gzip, zstd or plain),
//	                          the bytes save and push send; named like its
//	                          layer and deleted with it
//	  tmp/stage-*/            loads, imports, pulls and commits in progress:
//	                          the spooled archive, layers extracted and verified
//	                          (<cacheID>/, <cacheID>.blob); wiped by Open
//	  tmp/export-*/           an export's read-only overlay mount point
//	  verified/<cacheID>/     a pull's layer fetched whole and verified, kept
//	                          for a pull that resumes after a crash: layer/,
//	                          blob, verified.json (one rename puts them); never
//	                          registered; Open removes it when incomplete or
//	                          older than VerifiedLayerTTL (verified.go)
//
// layers/, mounts/, tmp/ and verified/ are 0700: extracted layers hold setuid-root
// binaries from untrusted tars, which host users must not be able to run.
//
// The overlay is lowerdir=<init>:<layers top first...>,upperdir=<upper>,
// workdir=<work>. The upper directory must not itself be on overlayfs. When
// that option string would not fit mount(2)'s one page (a chain of a
// hundred layers), the layers go one by one through the new mount API
// (fsopen, fsconfig "lowerdir+", fsmount, move_mount): up to overlayfs's own
// limit of 500 lower directories (MaxImageLayers).
//
// # Crash safety
//
// A load or import has three phases, each its own method, so that the
// journaled image driver can put its intent between the first and the
// second: Staging extracts each layer the store lacks into tmp/, checking it
// against its digests, and syncs the filesystem once (syncfs);
// InstallLayers renames the directories into layers/ and fsyncs layers/;
// RegisterImage is the write (a schema.Op) that registers layers and names,
// committed with the DONE. A crash before that commit leaves a tmp dir or
// unreferenced layers/<cacheID>; Open deletes both. Nothing half-loaded is
// ever registered. A removal (UntagOp, DeleteOp) commits first and deletes
// the directories it freed after; a crash in between leaves orphans, which
// Open deletes.
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
// # Blobs, diffs and exports
//
// Every staged layer keeps its raw bytes (Staging tees them into a file
// while it extracts and checks them; the writes count against the
// free-space reserve), and the layer record says the blob's digest, size
// and media type: ImageLayers hands them to save and push, which must send
// the bytes the image's manifest and diffIDs promise (docs/architecture.md
// says why this and not tar-split). DiffTar writes a container's RW layer
// as an image layer tar (overlay whiteouts back to OCI ones) for a commit,
// and Staging.Diff stages it; ExportTar writes the flattened rootfs from a
// read-only overlay of the container's directories mounted under tmp/.
//
// The bbolt layout is drawn in internal/schema; the record encodings are in
// buckets.go.
package layer
