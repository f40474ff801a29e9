// Package bundle reads and writes dashcam bundles: the one file a capture
// produces, named dashcam-<host>-<target>-<utc>-<trigger>.tar.zst.
//
// # Layout
//
// A bundle is a zstd-compressed tar that standard tools open
// (tar --zstd -xf). Its first member is manifest.json (indented JSON, see
// Manifest); the others follow sorted by name. Every member is a regular
// file, mode 0600, owned by 0:0, stamped with the capture's start time in
// whole seconds, so that equal bundles encode to equal bytes. Names are
// clean relative slash paths shaped like the machine (proc/<pid>/status,
// sys/fs/cgroup/...); directories are implied, never stored.
//
// The manifest lists every other member with its size and SHA-256. Putting
// it first lets a reader know what to expect before any data arrives: it
// refuses an unlisted member or a wrong size from the tar header alone, and
// checks each checksum as the member streams past. The checksums can come
// first because Writer spools members to a file while the capture runs,
// hashing each as it is added; Commit then knows them all before it writes
// a byte of the bundle.
//
// # Writing
//
// Create makes an unlinked spool file in the destination directory, so a
// crashed capture leaves no spool behind. Commit encodes the bundle into a
// hidden temp file .<name>.tmp-* in the same directory, fsyncs it, links
// it to its final name (never replacing an existing bundle), and fsyncs
// the directory. If Commit fails, nothing named *.tar.zst is left behind;
// if the process dies during Commit, at most a hidden .<name>.tmp-* file
// is, which no tool mistakes for a bundle.
//
// # Reading
//
// Read treats every bundle as hostile. It detects the compression by magic
// bytes (zstd, or a plain tar with "ustar" at offset 257) and refuses, each
// with an error wrapping one sentinel:
//
//   - ErrNotBundle: neither zstd nor tar, or empty input;
//   - ErrUnsafePath: absolute names, "." or ".." components, empty
//     components, backslashes, control characters, invalid UTF-8;
//   - ErrEntryType: symlinks, hard links, devices, fifos, sparse files and
//     any other non-regular entry (directory entries are checked, then
//     ignored);
//   - ErrDuplicate: a name seen twice, manifest.json seen twice, or a name
//     that is both a member and another member's directory;
//   - ErrTooLarge: a member whose header declares more than
//     Limits.MaxMemberBytes (checked before reading it), more than
//     Limits.MaxTotalBytes of decompressed stream (counted while reading,
//     so a zstd bomb stops early), more than Limits.MaxMembers members, or
//     a zstd window over 64 MiB (which bounds the decoder's memory);
//   - ErrTruncated: the tar or zstd stream ends early;
//   - ErrCorrupt: a broken tar header, zstd frame or frame checksum;
//   - ErrManifest: manifest.json missing, not first, not valid JSON, its
//     members unsorted, a member not listed in it, or listed but absent;
//   - ErrVersion: a format_version other than FormatVersion;
//   - ErrChecksum: a member whose size or SHA-256 differs from its entry.
//
// Writer refuses to grow a bundle past DefaultLimits, so every bundle
// dashcam writes can be read back with them.
package bundle
