package migrations

import (
	"testing"
	"testing/fstest"
)

func TestLoad(t *testing.T) {
	fsys := fstest.MapFS{
		"m/0002_seed.up.sql":     {Data: []byte("insert")},
		"m/0002_seed.down.sql":   {Data: []byte("delete")},
		"m/0001_schema.up.sql":   {Data: []byte("create")},
		"m/0001_schema.down.sql": {Data: []byte("drop")},
		"m/README":               {Data: []byte("ignored")},
	}
	ms, err := Load(fsys, "m")
	if err != nil {
		t.Fatal(err)
	}
	if len(ms) != 2 || ms[0].Version != 1 || ms[0].Name != "schema" || ms[0].Up != "create" || ms[1].Down != "delete" {
		t.Fatalf("unexpected migrations: %+v", ms)
	}
}

func TestLoadRejects(t *testing.T) {
	cases := map[string]fstest.MapFS{
		"missing down": {"m/0001_a.up.sql": {Data: []byte("x")}},
		"gap": {
			"m/0001_a.up.sql": {Data: []byte("x")}, "m/0001_a.down.sql": {Data: []byte("x")},
			"m/0003_c.up.sql": {Data: []byte("x")}, "m/0003_c.down.sql": {Data: []byte("x")},
		},
		"bad name":      {"m/one.up.sql": {Data: []byte("x")}},
		"two names":     {"m/0001_a.up.sql": {Data: []byte("x")}, "m/0001_b.down.sql": {Data: []byte("x")}},
		"bad direction": {"m/0001_a.sql": {Data: []byte("x")}},
	}
	for name, fsys := range cases {
		if _, err := Load(fsys, "m"); err == nil {
			t.Errorf("%s: expected an error", name)
		}
	}
}
