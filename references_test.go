package permiso_test

import (
	"bytes"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// outsideReference matches a citation of a document that is not in this
// repository: the product brief (or a numbered section of it), the
// original service's API notes, a numbered issue or review finding, or a
// path into the shared folder next to the checkout. Comments, tests and
// documents cite this repository's docs/ or an RFC instead. Each word is
// written with a character class so that this file does not match itself.
var outsideReference = regexp.MustCompile(strings.Join([]string{
	`\bS[P]EC\b`,
	`ORIGINAL[-]API`,
	`\b[Ii]ssu[e] #?\d`,
	`\bFindin[g] \d`,
	`\.\./share[d]`,
	`\bthe original'[s] [A-Z]\d`,
}, "|"))

// referenceSkips are the paths not (yet) checked, each with its reason.
// Keep it short: an entry is a debt, not an exception.
var referenceSkips = map[string]string{}

// TestNoReferencesOutsideRepository reads every tracked text file of the
// repository (every file below it when git cannot list them, as in a
// source archive) and fails on a citation of a document outside it, so
// that a reader of the code, the README, docs/ or the served API document
// can follow every reference.
func TestNoReferencesOutsideRepository(t *testing.T) {
	checked := 0
	for _, path := range repositoryFiles(t) {
		if skipped(path) {
			continue
		}
		data, err := os.ReadFile(filepath.FromSlash(path))
		if err != nil {
			t.Fatal(err)
		}
		if bytes.IndexByte(data, 0) >= 0 {
			continue // binary
		}
		checked++
		for i, line := range strings.Split(string(data), "\n") {
			if m := outsideReference.FindString(line); m != "" {
				t.Errorf("%s:%d cites %q, a document outside the repository; cite docs/ or an RFC: %s",
					path, i+1, m, strings.TrimSpace(line))
			}
		}
	}
	if checked < 100 {
		t.Errorf("checked only %d files", checked)
	}
}

// repositoryFiles lists the files git tracks, or, without git, every
// regular file below the repository root; paths use forward slashes.
func repositoryFiles(t *testing.T) []string {
	t.Helper()
	if out, err := exec.Command("git", "ls-files", "-z").Output(); err == nil {
		var files []string
		for f := range strings.SplitSeq(strings.TrimRight(string(out), "\x00"), "\x00") {
			if fi, err := os.Lstat(filepath.FromSlash(f)); err == nil && fi.Mode().IsRegular() {
				files = append(files, f)
			}
		}
		return files
	}
	var files []string
	err := filepath.WalkDir(".", func(path string, d fs.DirEntry, err error) error {
		switch {
		case err != nil:
			return err
		case d.IsDir() && d.Name() == ".git":
			return filepath.SkipDir
		case d.Type().IsRegular():
			files = append(files, filepath.ToSlash(path))
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return files
}

// skipped reports whether path is in referenceSkips (itself or a folder
// holding it).
func skipped(path string) bool {
	for p := path; p != "." && p != "/"; p = filepath.ToSlash(filepath.Dir(p)) {
		if _, ok := referenceSkips[p]; ok {
			return true
		}
	}
	return false
}

// TestOutsideReferencePattern pins what the pattern catches and what it
// leaves alone.
func TestOutsideReferencePattern(t *testing.T) {
	for _, s := range []string{
		"(" + "SP" + "EC §7)", "ORIGINAL" + "-API §2.5", "iss" + "ue 4", "Iss" + "ue #12",
		"Find" + "ing 3:", "../" + "shared/docs", "the original" + "'s S2",
	} {
		if !outsideReference.MatchString(s) {
			t.Errorf("%q is not caught", s)
		}
	}
	for _, s := range []string{
		"PASSWORD_REQUIRE_SPECIAL", "RFC 6749 §5.2", "issued at", "the issue time",
		"findings", "shared state", "the original's claims",
	} {
		if outsideReference.MatchString(s) {
			t.Errorf("%q is caught", s)
		}
	}
}
