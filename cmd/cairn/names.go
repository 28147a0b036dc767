package main

import "strings"

// The daemon hands out canonical image names (docker.io/library/busybox:latest);
// the CLI shows them as Docker does (busybox:latest). The daemon has already
// parsed and normalised them with distribution/reference, so showing one is
// only taking the default registry and namespace off. This is done by hand
// rather than with that library because the cairn binary is also every
// container's shim, and the library's package initialisation (its grammar
// compiled into regexps, some 400 KB) would be paid by every shim process;
// names_test.go holds the two to the same answers.

const (
	defaultDomain    = "docker.io/"
	officialRepoPath = "library/"
)

// familiar is the short form of a canonical image name; ids and anything
// else are returned as they are.
func familiar(canonical string) string {
	rest, ok := strings.CutPrefix(canonical, defaultDomain)
	if !ok {
		return canonical
	}
	if short, ok := strings.CutPrefix(rest, officialRepoPath); ok && !strings.Contains(short, "/") {
		return short
	}
	return rest
}

// splitName gives the familiar repository and the tag (or digest) of a
// canonical name, as the REPOSITORY and TAG columns show them; "<none>"
// for what is missing.
func splitName(canonical string) (repository, tag string) {
	name := familiar(canonical)
	if at := strings.LastIndexByte(name, '@'); at >= 0 {
		repository, tag = name[:at], name[at+1:]
		if colon := strings.LastIndexByte(repository, ':'); colon > strings.LastIndexByte(repository, '/') {
			repository = repository[:colon] // a tag beside a digest: the digest wins
		}
		return repository, tag
	}
	if colon := strings.LastIndexByte(name, ':'); colon > strings.LastIndexByte(name, '/') {
		return name[:colon], name[colon+1:]
	}
	return name, "<none>"
}
