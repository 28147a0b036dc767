// Package imagearchive reads image archives a client hands to `cairn image
// load`, none of which it trusts: `docker save` archives (the old format,
// manifest.json with <id>/layer.tar, and Docker 25's OCI-in-docker, which
// also carries an OCI layout), and OCI image layouts as a tar (skopeo's
// oci-archive, a tar of a layout directory, umoci's layouts). The archive,
// plain or gzip- or zstd-compressed as a whole, is spooled to a file once
// (Spool) while its entries are indexed, and read from there by offset; it
// is never unpacked onto the disk.
//
// The types are go-containerregistry's (v1.IndexManifest, v1.Manifest,
// v1.ConfigFile, tarball.Manifest, types.MediaType); the reading is done
// here because go-containerregistry's tarball and layout readers neither
// bound what they read, nor check a blob against its digest, nor read an OCI
// layout from a tar, and the layout reader follows symlinks on the disk.
//
// What is refused, each with ErrInvalidArgument and a message naming the
// entry or blob (ErrResourceExhausted for a limit):
//   - an archive entry whose path escapes (absolute, "..") or that is a
//     device, a duplicate, or a symlink or hardlink whose target escapes;
//     a symlink on the way to a file (a symlinked blobs/ directory); in an
//     OCI layout, any symlink at all;
//   - a manifest, index, config or manifest.json over MaxMetadataBytes, a
//     manifest with more than MaxLayers layers, more than MaxImages images,
//     indexes nested deeper than maxIndexDepth;
//   - a blob an index or manifest names that the archive lacks, one whose
//     size or digest does not match its descriptor, a digest that is not
//     sha256, a config whose diffIDs do not match the manifest's layers;
//   - unknown media types, non-distributable (foreign) layers, schema 1
//     manifests, images without layers.
//
// Layer blobs are checked where they are read, by the layer store as it
// extracts them (layer.Staging.Layer): their digest and size against the
// manifest, and the digest of the uncompressed tar against the config's
// diffID.
package imagearchive
