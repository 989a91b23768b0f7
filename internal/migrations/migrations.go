// Package migrations reads the embedded, numbered SQL migration files that
// each storage backend ships ("0001_schema.up.sql", "0001_schema.down.sql",
// ...). Applying them is the backend's job (each in its own dialect and
// locking); this package only gives both backends one parser, so the
// numbering rules cannot drift apart.
package migrations

import (
	"fmt"
	"io/fs"
	"path"
	"sort"
	"strconv"
	"strings"
)

// Migration is one numbered step with its up and down SQL.
type Migration struct {
	Version int
	Name    string
	Up      string
	Down    string
}

// Load reads every *.up.sql and *.down.sql file in dir of fsys. File names
// are NNNN_name.up.sql / NNNN_name.down.sql; every version must have both
// files, versions must be unique, and the result is ordered by version.
func Load(fsys fs.FS, dir string) ([]Migration, error) {
	entries, err := fs.ReadDir(fsys, dir)
	if err != nil {
		return nil, err
	}
	byVersion := map[int]*Migration{}
	for _, e := range entries {
		if e.IsDir() || !strings.HasSuffix(e.Name(), ".sql") {
			continue
		}
		base := strings.TrimSuffix(e.Name(), ".sql")
		var up bool
		switch {
		case strings.HasSuffix(base, ".up"):
			up, base = true, strings.TrimSuffix(base, ".up")
		case strings.HasSuffix(base, ".down"):
			base = strings.TrimSuffix(base, ".down")
		default:
			return nil, fmt.Errorf("migration %s: name must end in .up.sql or .down.sql", e.Name())
		}
		num, name, ok := strings.Cut(base, "_")
		if !ok || name == "" {
			return nil, fmt.Errorf("migration %s: name must be NNNN_name", e.Name())
		}
		v, err := strconv.Atoi(num)
		if err != nil || v <= 0 {
			return nil, fmt.Errorf("migration %s: bad version number", e.Name())
		}
		body, err := fs.ReadFile(fsys, path.Join(dir, e.Name()))
		if err != nil {
			return nil, err
		}
		m := byVersion[v]
		if m == nil {
			m = &Migration{Version: v, Name: name}
			byVersion[v] = m
		} else if m.Name != name {
			return nil, fmt.Errorf("migration version %d has two names: %s and %s", v, m.Name, name)
		}
		if up {
			m.Up = string(body)
		} else {
			m.Down = string(body)
		}
	}
	out := make([]Migration, 0, len(byVersion))
	for _, m := range byVersion {
		if strings.TrimSpace(m.Up) == "" || strings.TrimSpace(m.Down) == "" {
			return nil, fmt.Errorf("migration %04d_%s: both .up.sql and .down.sql are required", m.Version, m.Name)
		}
		out = append(out, *m)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Version < out[j].Version })
	for i, m := range out {
		if m.Version != i+1 {
			return nil, fmt.Errorf("migration versions must be 1..n without gaps; found %d at position %d", m.Version, i+1)
		}
	}
	return out, nil
}
