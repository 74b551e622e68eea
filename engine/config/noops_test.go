package config

import (
	"bufio"
	"bytes"
	"go/ast"
	"go/importer"
	"go/parser"
	"go/token"
	"go/types"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"sort"
	"strings"
	"testing"
)

// This file finds which fields of the config model the running agent
// reads, by type-checking the packages `keepwatch run` is built from: a
// field counts as read when some selector in that code resolves to it.
// Nothing is listed by hand, so the result cannot go stale.

// modelField is one field of the config model, "Type.Field" (e.g.
// "Instance.PromoteSecondaries"), with its yaml name.
type modelField struct {
	path string
	yaml string
}

// modelFields walks the config model from Config by reflection: every field
// of every struct type of this package that Config reaches.
func modelFields() []modelField { return modelFieldsUnder(func(string, string) bool { return false }) }

// modelFieldsUnder is modelFields that does not descend into the fields
// skip reports (their own entry is kept).
func modelFieldsUnder(skip func(typ, field string) bool) []modelField {
	pkg := reflect.TypeOf(Config{}).PkgPath()
	seen := map[reflect.Type]bool{}
	var out []modelField
	var walk func(t reflect.Type)
	walk = func(t reflect.Type) {
		for t.Kind() == reflect.Pointer || t.Kind() == reflect.Slice || t.Kind() == reflect.Map || t.Kind() == reflect.Array {
			t = t.Elem()
		}
		if t.Kind() != reflect.Struct || t.PkgPath() != pkg || seen[t] {
			return
		}
		seen[t] = true
		for i := 0; i < t.NumField(); i++ {
			f := t.Field(i)
			if f.Anonymous {
				walk(f.Type)
				continue
			}
			name, _, _ := strings.Cut(f.Tag.Get("yaml"), ",")
			out = append(out, modelField{path: t.Name() + "." + f.Name, yaml: name})
			if !skip(t.Name(), f.Name) {
				walk(f.Type)
			}
		}
	}
	walk(reflect.TypeOf(Config{}))
	sort.Slice(out, func(i, j int) bool { return out[i].path < out[j].path })
	return out
}

func goTool(t *testing.T) string {
	p, err := exec.LookPath("go")
	if err != nil {
		t.Fatalf("the go command is needed to list the agent's packages: %v", err)
	}
	return p
}

// listedPackage is what `go list` says of one package.
type listedPackage struct {
	path, export, dir string
	files             []string
	ours              bool
}

// listPackages runs `go list -export -deps` on the agent's command: every
// package it is built from, with its compiled export data for importing.
func listPackages(t *testing.T, root string) map[string]*listedPackage {
	t.Helper()
	cmd := exec.Command(goTool(t), "list", "-export", "-deps", "-f",
		"{{.ImportPath}}\t{{.Export}}\t{{.Dir}}\t{{join .GoFiles \" \"}}\t{{if .Module}}{{.Module.Main}}{{end}}", "./cmd/keepwatch")
	cmd.Dir = root
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("go list: %v\n%s", err, stderr.String())
	}
	pkgs := map[string]*listedPackage{}
	sc := bufio.NewScanner(bytes.NewReader(out))
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		f := strings.Split(sc.Text(), "\t")
		if len(f) != 5 {
			continue
		}
		pkgs[f[0]] = &listedPackage{path: f[0], export: f[1], dir: f[2], files: strings.Fields(f[3]), ours: f[4] == "true"}
	}
	return pkgs
}

// fieldsRead type-checks the agent's packages (not engine/config and its
// front ends, not engine/dump's printing of them, not deploy/) and returns the model fields they read, plus
// those read inside engine/config functions they call (Family,
// EffectiveVersion, GarpSchedule, ...).
func fieldsRead(t *testing.T, root string) map[string]bool {
	t.Helper()
	pkgs := listPackages(t, root)
	cfgPath := reflect.TypeOf(Config{}).PkgPath()
	fset := token.NewFileSet()
	imp := importer.ForCompiler(fset, "gc", func(path string) (io.ReadCloser, error) {
		p := pkgs[path]
		if p == nil || p.export == "" {
			return nil, os.ErrNotExist
		}
		return os.Open(p.export)
	})
	read := map[string]bool{}
	calledCfg := map[string]bool{} // engine/config functions and methods the agent calls
	record := func(info *types.Info, n ast.Node) {
		// A field only assigned (c.StaticAddrs = nil: the drop-in's -C
		// trimming the VRRP side away) is not read: skip the selectors on
		// the left of an assignment, keep what they are selected from.
		written := map[*ast.SelectorExpr]bool{}
		ast.Inspect(n, func(n ast.Node) bool {
			if as, ok := n.(*ast.AssignStmt); ok && as.Tok == token.ASSIGN {
				for _, l := range as.Lhs {
					if se, ok := l.(*ast.SelectorExpr); ok {
						written[se] = true
					}
				}
			}
			return true
		})
		ast.Inspect(n, func(n ast.Node) bool {
			se, ok := n.(*ast.SelectorExpr)
			if ok && written[se] {
				return true // not a read; what it is selected from may be
			}
			if !ok {
				if id, ok := n.(*ast.Ident); ok {
					if fn, ok := info.Uses[id].(*types.Func); ok && fn.Pkg() != nil && fn.Pkg().Path() == cfgPath {
						calledCfg[fn.Name()] = true
					}
				}
				return true
			}
			sel := info.Selections[se]
			if sel == nil {
				return true
			}
			if sel.Kind() != types.FieldVal {
				if fn, ok := sel.Obj().(*types.Func); ok && fn.Pkg() != nil && fn.Pkg().Path() == cfgPath {
					calledCfg[fn.Name()] = true
				}
				return true
			}
			typ := sel.Recv()
			for _, idx := range sel.Index() {
				for {
					if p, ok := typ.(*types.Pointer); ok {
						typ = p.Elem()
						continue
					}
					break
				}
				named, _ := typ.(*types.Named)
				st, ok := typ.Underlying().(*types.Struct)
				if !ok {
					break
				}
				f := st.Field(idx)
				if named != nil && named.Obj().Pkg() != nil && named.Obj().Pkg().Path() == cfgPath {
					read[named.Obj().Name()+"."+f.Name()] = true
				}
				typ = f.Type()
			}
			return true
		})
	}
	check := func(p *listedPackage) (*types.Info, []*ast.File) {
		var files []*ast.File
		for _, name := range p.files {
			f, err := parser.ParseFile(fset, filepath.Join(p.dir, name), nil, parser.SkipObjectResolution)
			if err != nil {
				t.Fatal(err)
			}
			files = append(files, f)
		}
		info := &types.Info{Selections: map[*ast.SelectorExpr]*types.Selection{}, Uses: map[*ast.Ident]types.Object{}}
		conf := types.Config{Importer: imp, Error: func(error) {}}
		if _, err := conf.Check(p.path, fset, files, info); err != nil {
			t.Fatalf("type-checking %s: %v", p.path, err)
		}
		return info, files
	}
	for _, p := range pkgs {
		// engine/dump prints the config as keepalived.data lists it:
		// printing a keyword is not acting on it.
		if !p.ours || strings.HasPrefix(p.path, cfgPath) || strings.Contains(p.path, "/deploy/") || strings.HasSuffix(p.path, "/engine/dump") {
			continue
		}
		info, files := check(p)
		for _, f := range files {
			record(info, f)
		}
	}
	// engine/config's own functions count when the agent calls them; what
	// they call in turn is followed to a fixed point.
	cp := pkgs[cfgPath]
	if cp == nil {
		t.Fatalf("go list did not list %s", cfgPath)
	}
	info, files := check(cp)
	bodies := map[string][]ast.Node{}
	for _, f := range files {
		for _, d := range f.Decls {
			if fd, ok := d.(*ast.FuncDecl); ok && fd.Body != nil && !inspectsOnly(fd) {
				bodies[fd.Name.Name] = append(bodies[fd.Name.Name], fd.Body)
			}
		}
	}
	done := map[string]bool{}
	for changed := true; changed; {
		changed = false
		for name := range calledCfg {
			if done[name] {
				continue
			}
			done[name], changed = true, true
			for _, b := range bodies[name] {
				record(info, b)
			}
		}
	}
	return read
}

// inspectsOnly reports engine/config functions that look at a keyword
// without acting on it: validation (the validator's methods) and the script
// listing that script security checks. A field they read is not thereby
// implemented.
func inspectsOnly(fd *ast.FuncDecl) bool {
	switch fd.Name.Name {
	case "ScriptRefs", "ScriptFindings":
		return true
	}
	if fd.Recv != nil && len(fd.Recv.List) == 1 {
		if st, ok := fd.Recv.List[0].Type.(*ast.StarExpr); ok {
			if id, ok := st.X.(*ast.Ident); ok && id.Name == "validator" {
				return true
			}
		}
	}
	return false
}

// exemptField reports fields that are not keywords: positions, the
// source path, the load diagnostics, the raw Extra settings (each already
// warned about as it is read), the printing text of a group entry, and the
// agent: section, keepwatch's own settings, which cmd/keepwatch applies.
func exemptField(typ, field string) bool {
	switch {
	case field == "Pos", strings.HasSuffix(field, "Pos"), field == "Extra", typ == "Setting", typ == "Agent":
		return true
	case typ == "Config" && (field == "Source" || field == "Diagnostics"), typ == "VSGroupEntry" && field == "Text":
		return true
	}
	return false
}

// TestNoSilentNoOps: every field of the config model is either read by the
// agent (found by type-checking the packages `keepwatch run` is built
// from) or listed in IgnoredFields, which makes check and run warn
// "accepted but ignored by keepwatch" when a config sets it. A field listed
// there that the agent reads is an error too: the warning would lie.
func TestNoSilentNoOps(t *testing.T) {
	read := fieldsRead(t, filepath.Join("..", ".."))
	all := map[string]bool{}
	for _, f := range modelFields() {
		all[f.path] = true
	}
	implemented, warned := 0, 0
	for _, f := range modelFieldsUnder(func(typ, field string) bool {
		return exemptField(typ, field) || IgnoredFields[typ+"."+field] != ""
	}) {
		typ, field, _ := strings.Cut(f.path, ".")
		switch {
		case exemptField(typ, field):
		case IgnoredFields[f.path] != "":
			warned++
		case read[f.path]:
			implemented++
		default:
			t.Errorf("%s (yaml %q) is neither read by the agent nor listed in config.IgnoredFields: implement it, or list it so check and run say it is ignored", f.path, f.yaml)
		}
	}
	for path := range IgnoredFields {
		if !all[path] {
			t.Errorf("IgnoredFields lists %s, which the model does not have", path)
		}
		if read[path] {
			t.Errorf("IgnoredFields lists %s, but the agent reads it now: remove it, so it is no longer reported as ignored", path)
		}
	}
	t.Logf("model fields with a keyword: %d read by the agent, %d warned as accepted but ignored", implemented, warned)
}

// TestIgnoredFieldsWarn: a config that sets every IgnoredFields field gets
// one "accepted but ignored by keepwatch" warning naming each keyword, and
// those warnings do not change check's exit code.
func TestIgnoredFieldsWarn(t *testing.T) {
	c := &Config{Source: "k.conf"}
	fill(reflect.ValueOf(c).Elem(), 0)
	ds := Validate(c, ValidateOptions{})
	got := map[string]bool{}
	for _, d := range ds {
		if d.Outcome() == NotImplemented {
			if d.Severity != Warning || d.Message != "keyword "+d.Keyword+" is accepted but ignored by keepwatch" {
				t.Errorf("bad note: %s", d.Report())
			}
			got[d.Keyword] = true
		}
	}
	for path, kw := range IgnoredFields {
		if !got[kw] {
			t.Errorf("%s set: no warning for keyword %q", path, kw)
		}
	}
	clean := Diagnostics{{Severity: Warning, Action: NotImplemented, Keyword: "promote_secondaries"}}
	if clean.ExitCode() != 0 {
		t.Errorf("a keepwatch-only note makes check exit %d; keepalived -t exits 0", clean.ExitCode())
	}
}

// fill makes every struct of the model exist (one element per slice, every
// pointer set) and every IgnoredFields field non-zero.
func fill(v reflect.Value, depth int) {
	if depth > 12 {
		return
	}
	t := v.Type()
	for i := 0; i < t.NumField(); i++ {
		sf, fv := t.Field(i), v.Field(i)
		if !sf.IsExported() || sf.Name == "Extra" {
			continue
		}
		if _, ok := IgnoredFields[t.Name()+"."+sf.Name]; ok {
			setNonZero(fv)
		}
		switch fv.Kind() {
		case reflect.Struct:
			if fv.Type().PkgPath() == t.PkgPath() {
				fill(fv, depth+1)
			}
		case reflect.Pointer:
			if fv.Type().Elem().Kind() == reflect.Struct && fv.Type().Elem().PkgPath() == t.PkgPath() {
				if fv.IsNil() {
					fv.Set(reflect.New(fv.Type().Elem()))
				}
				fill(fv.Elem(), depth+1)
			}
		case reflect.Slice:
			if fv.Type().Elem().Kind() == reflect.Struct && fv.Type().Elem().PkgPath() == t.PkgPath() {
				if fv.Len() == 0 {
					fv.Set(reflect.MakeSlice(fv.Type(), 1, 1))
				}
				fill(fv.Index(0), depth+1)
			}
		}
	}
}

func setNonZero(v reflect.Value) {
	switch v.Kind() {
	case reflect.Bool:
		v.SetBool(true)
	case reflect.Int, reflect.Int64, reflect.Int32:
		v.SetInt(1)
	case reflect.Uint32, reflect.Uint8, reflect.Uint16, reflect.Uint64:
		v.SetUint(1)
	case reflect.String:
		v.SetString("x")
	case reflect.Pointer:
		v.Set(reflect.New(v.Type().Elem()))
	case reflect.Slice:
		v.Set(reflect.MakeSlice(v.Type(), 1, 1))
		if v.Index(0).Kind() == reflect.String {
			v.Index(0).SetString("x")
		}
	}
}
