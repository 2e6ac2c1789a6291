package config

import (
	"errors"
	"fmt"
	"io"
	"os"
	"reflect"
	"sort"
	"strconv"
	"strings"

	"github.com/BurntSushi/toml"
)

// Load reads and parses the configuration file at path; see Parse.
func Load(path string) (*Config, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	return Parse(path, data)
}

// Parse decodes a configuration file: the defaults of SPEC §4, overridden by
// data, decoded strictly (an unknown key or a value of the wrong type is an
// error), then the secret files (api_secret_file, token_file) read, then
// Validate. name is the file name used in errors. The error joins (with
// errors.Join) one error per problem, each formatted
// "name:line: key.path: message".
func Parse(name string, data []byte) (*Config, error) {
	var raw map[string]any
	if _, err := toml.Decode(string(data), &raw); err != nil {
		var pe toml.ParseError
		if errors.As(err, &pe) {
			msg := strings.NewReplacer("\n", `\n`, "\r", `\r`).Replace(pe.Message) // one line per error
			return nil, &confError{file: name, line: pe.Position.Line, msg: msg}
		}
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	c := defaults()
	c.file = name
	c.lines = keyLines(string(data))
	d := decoder{lines: c.lines, keys: map[string]bool{}}
	d.decode("", raw, reflect.ValueOf(c).Elem())
	if len(d.issues) > 0 {
		return nil, c.join(d.issues)
	}
	c.keys = d.keys
	c.fill()
	issues := c.readSecrets()
	issues = append(issues, c.check()...)
	if len(issues) > 0 {
		return nil, c.join(issues)
	}
	return c, nil
}

// fill sets the defaults that depend on other keys.
func (c *Config) fill() {
	for i := range c.Bridges {
		b := &c.Bridges[i]
		p := fmt.Sprintf("bridge[%d]", i)
		if !c.keys[p+".keyframe_interval"] {
			b.KeyframeInterval = c.Defaults.KeyframeInterval
		}
		for j := range b.Sinks {
			s := &b.Sinks[j]
			if s.Name == "" {
				s.Name = s.Type + strconv.Itoa(j)
			}
			if s.Type == SinkRTMP && s.AudioBitrate == 0 {
				s.AudioBitrate = 128000
			}
		}
		if b.Source == nil {
			continue
		}
		for j := range b.Source.Tracks {
			t := &b.Source.Tracks[j]
			codec, ok := codecs[t.Codec]
			if !ok {
				continue
			}
			if !c.keys[fmt.Sprintf("%s.source.track[%d].payload_type", p, j)] {
				t.PayloadType = codec.staticPT
			}
			if t.ClockRate == 0 {
				t.ClockRate = codec.clockRate
			}
			if t.Channels == 0 {
				t.Channels = codec.channels
			}
		}
	}
}

// readSecrets replaces each secret's *_file key by the file's contents.
func (c *Config) readSecrets() []issue {
	var issues []issue
	for _, s := range []struct {
		key, fileKey string
		value, file  *string
	}{
		{"janus.api_secret", "janus.api_secret_file", &c.Janus.APISecret, &c.Janus.APISecretFile},
		{"janus.token", "janus.token_file", &c.Janus.Token, &c.Janus.TokenFile},
		{"control.token", "control.token_file", &c.Control.Token, &c.Control.TokenFile},
	} {
		switch {
		case *s.file == "":
		case *s.value != "" || c.keys[s.key]:
			issues = append(issues, issue{s.fileKey, "set either " + s.key + " or " + s.fileKey + ", not both"})
		default:
			v, err := readSecret(*s.file)
			if err != nil {
				issues = append(issues, issue{s.fileKey, err.Error()})
			}
			*s.value = v
		}
	}
	return issues
}

// readSecret returns the trimmed contents of a small regular file.
func readSecret(path string) (string, error) {
	const limit = 4096
	fail := func(err error) (string, error) {
		var pe *os.PathError
		if errors.As(err, &pe) {
			err = pe.Err
		}
		return "", fmt.Errorf("cannot read %q: %w", path, err)
	}
	if st, err := os.Stat(path); err != nil {
		return fail(err)
	} else if !st.Mode().IsRegular() { // a FIFO or device would block or never end
		return fail(errors.New("not a regular file"))
	}
	f, err := os.Open(path)
	if err != nil {
		return fail(err)
	}
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(f, limit+1))
	switch s := strings.TrimSpace(string(b)); {
	case err != nil:
		return fail(err)
	case len(b) > limit:
		return fail(fmt.Errorf("longer than %d bytes", limit))
	case s == "":
		return fail(errors.New("empty"))
	default:
		return s, nil
	}
}

// issue is one problem found at a key path such as "bridge[1].sink[0].path".
type issue struct {
	path, msg string
}

// confError is an issue placed in its file: "file:line: key: message".
type confError struct {
	file string
	line int
	key  string
	msg  string
}

func (e *confError) Error() string {
	var b strings.Builder
	if e.file != "" {
		b.WriteString(e.file)
		if e.line > 0 {
			fmt.Fprintf(&b, ":%d", e.line)
		}
		b.WriteString(": ")
	}
	if e.key != "" {
		b.WriteString(e.key)
		b.WriteString(": ")
	}
	b.WriteString(e.msg)
	return b.String()
}

// join turns issues into one error (nil for none), in line order.
func (c *Config) join(issues []issue) error {
	var errs []error
	for _, e := range c.placed(issues) {
		errs = append(errs, e)
	}
	return errors.Join(errs...)
}

// placed turns issues into errors sorted by line; those without a line first.
func (c *Config) placed(issues []issue) []*confError {
	errs := make([]*confError, len(issues))
	for i, is := range issues {
		errs[i] = &confError{file: c.file, line: c.line(is.path), key: c.display(is.path), msg: is.msg}
	}
	sort.SliceStable(errs, func(i, j int) bool { return errs[i].line < errs[j].line })
	return errs
}

// line is the line of path, or of its closest enclosing key; 0 if unknown.
func (c *Config) line(path string) int {
	for path != "" {
		if n := c.lines[path]; n > 0 {
			return n
		}
		i := strings.LastIndexAny(path, ".[")
		if i < 0 {
			break
		}
		path = path[:i]
	}
	return 0
}

// display writes a key path for people: "bridge[1].sink[0].path" becomes
// `bridge[1] "lobby": sink[0].path`.
func (c *Config) display(path string) string {
	rest, ok := strings.CutPrefix(path, "bridge[")
	if !ok {
		return path
	}
	end := strings.IndexByte(rest, ']')
	i, err := strconv.Atoi(rest[:max(end, 0)])
	if end < 0 || err != nil {
		return path
	}
	label := path[:len("bridge[")+end+1]
	if i < len(c.Bridges) && c.Bridges[i].Name != "" {
		label += " " + strconv.Quote(c.Bridges[i].Name)
	}
	if rest = strings.TrimPrefix(rest[end+1:], "."); rest != "" {
		label += ": " + rest
	}
	return label
}

// keyPart is one key of a path, quoted unless it is a bare TOML key.
func keyPart(k string) string {
	if k == "" || strings.IndexFunc(k, func(r rune) bool { return !isBare(r) }) >= 0 {
		return strconv.Quote(k)
	}
	return k
}

func isBare(r rune) bool {
	return r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '_' || r == '-'
}

func joinKey(path, k string) string {
	if path == "" {
		return keyPart(k)
	}
	return path + "." + keyPart(k)
}

// decoder copies a decoded TOML document (maps, slices and scalars from
// toml.Decode) into the Config structs by their toml tags, recording which
// key paths are present and collecting an issue per unknown key or type
// mismatch. It exists, rather than decoding straight into the structs with
// the toml package, because that package's key positions and undecoded keys
// carry no array index ("bridge.sink.path"), so they cannot name the sink.
type decoder struct {
	lines  map[string]int
	keys   map[string]bool
	issues []issue
}

var unmarshaler = reflect.TypeFor[toml.Unmarshaler]()

func (d *decoder) decode(path string, v any, rv reflect.Value) {
	if rv.Addr().Type().Implements(unmarshaler) {
		if err := rv.Addr().Interface().(toml.Unmarshaler).UnmarshalTOML(v); err != nil {
			d.issues = append(d.issues, issue{path, err.Error()})
		}
		return
	}
	var ok bool
	switch rv.Kind() {
	case reflect.Pointer:
		e := reflect.New(rv.Type().Elem())
		d.decode(path, v, e.Elem())
		rv.Set(e)
		return
	case reflect.Struct:
		var m map[string]any
		if m, ok = v.(map[string]any); ok {
			d.decodeTable(path, m, rv)
		}
	case reflect.Slice:
		var elems []any
		switch v := v.(type) {
		case []any:
			elems, ok = v, true
		case []map[string]any:
			for _, m := range v {
				elems = append(elems, m)
			}
			ok = true
		}
		if ok {
			s := reflect.MakeSlice(rv.Type(), len(elems), len(elems))
			for i, e := range elems {
				p := fmt.Sprintf("%s[%d]", path, i)
				d.keys[p] = true
				d.decode(p, e, s.Index(i))
			}
			rv.Set(s)
		}
	case reflect.String:
		var s string
		if s, ok = v.(string); ok {
			rv.SetString(s)
		}
	case reflect.Bool:
		var b bool
		if b, ok = v.(bool); ok {
			rv.SetBool(b)
		}
	case reflect.Int:
		n, isInt := v.(int64)
		if ok = isInt && !rv.OverflowInt(n); ok {
			rv.SetInt(n)
		}
	case reflect.Float64:
		switch n := v.(type) {
		case int64:
			rv.SetFloat(float64(n))
			ok = true
		case float64:
			rv.SetFloat(n)
			ok = true
		}
	default:
		panic("config: no decoding for " + rv.Type().String()) // a Config field of a new type
	}
	if !ok {
		d.issues = append(d.issues, issue{path, fmt.Sprintf("must be %s, not %s", wants(rv.Type()), typeName(v))})
	}
}

// decodeTable decodes m into the struct rv, key by key in file order.
func (d *decoder) decodeTable(path string, m map[string]any, rv reflect.Value) {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Slice(keys, func(i, j int) bool {
		li, lj := d.lines[joinKey(path, keys[i])], d.lines[joinKey(path, keys[j])]
		if li != lj {
			return li < lj
		}
		return keys[i] < keys[j]
	})
	for _, k := range keys {
		p := joinKey(path, k)
		d.keys[p] = true
		f, ok := fieldByTag(rv, k)
		if !ok {
			d.issues = append(d.issues, issue{p, "unknown key"})
			continue
		}
		d.decode(p, m[k], f)
	}
}

func fieldByTag(rv reflect.Value, key string) (reflect.Value, bool) {
	t := rv.Type()
	for i := range t.NumField() {
		if tag := t.Field(i).Tag.Get("toml"); tag != "" && tag != "-" && tag == key {
			return rv.Field(i), true
		}
	}
	return reflect.Value{}, false
}

// wants describes what a Go type takes in TOML.
func wants(t reflect.Type) string {
	switch t.Kind() {
	case reflect.String:
		return "a string"
	case reflect.Bool:
		return "a boolean"
	case reflect.Int:
		return "an integer"
	case reflect.Float64:
		return "a number"
	case reflect.Slice:
		if t.Elem().Kind() == reflect.Struct {
			return "an array of tables"
		}
		return "an array"
	}
	return "a table"
}

// keyLines maps the key path of every key, table and array element of a
// valid TOML document to the line it starts on, e.g. "bridge[1].sink[0]" to
// the line of the second bridge's first [[bridge.sink]] header.
func keyLines(doc string) map[string]int {
	s := &lineScanner{doc: doc, line: 1, lines: map[string]int{}, arrays: map[string]int{}}
	table := ""
	for s.pos < len(s.doc) {
		start := s.pos
		s.space(true)
		if s.pos >= len(s.doc) {
			break
		}
		if s.peek(0) == '[' {
			array := s.peek(1) == '['
			s.advance(1)
			if array {
				s.advance(1)
			}
			table = s.header(s.key(), array)
			s.record(table)
		} else {
			path := table
			keys := s.key()
			for _, k := range keys {
				path = joinKey(path, k)
				s.record(path)
			}
			s.space(false)
			if s.peek(0) == '=' {
				s.advance(1)
			}
			s.space(false)
			s.value(path)
		}
		for s.pos < len(s.doc) && s.doc[s.pos] != '\n' { // the rest of the line: "]]", a comment
			s.advance(1)
		}
		if s.pos == start {
			s.advance(1)
		}
	}
	return s.lines
}

type lineScanner struct {
	doc    string
	pos    int
	line   int
	lines  map[string]int
	arrays map[string]int // path of an array of tables -> elements so far
}

func (s *lineScanner) peek(off int) byte {
	if s.pos+off < len(s.doc) {
		return s.doc[s.pos+off]
	}
	return 0
}

func (s *lineScanner) advance(n int) {
	for ; n > 0 && s.pos < len(s.doc); n-- {
		if s.doc[s.pos] == '\n' {
			s.line++
		}
		s.pos++
	}
}

func (s *lineScanner) record(path string) {
	if _, ok := s.lines[path]; !ok {
		s.lines[path] = s.line
	}
}

// space skips blanks and comments, and line ends too if newlines.
func (s *lineScanner) space(newlines bool) {
	for s.pos < len(s.doc) {
		switch c := s.doc[s.pos]; {
		case c == ' ' || c == '\t' || c == '\r' || newlines && c == '\n':
			s.advance(1)
		case c == '#':
			for s.pos < len(s.doc) && s.doc[s.pos] != '\n' {
				s.advance(1)
			}
		default:
			return
		}
	}
}

// header resolves the keys of a [table] or [[array]] header to a path with
// the index of the current element of every array of tables in it.
func (s *lineScanner) header(keys []string, array bool) string {
	path := ""
	for i, k := range keys {
		path = joinKey(path, k)
		n, isArray := s.arrays[path]
		if array && i == len(keys)-1 {
			s.arrays[path] = n + 1
			return fmt.Sprintf("%s[%d]", path, n)
		}
		if isArray {
			path = fmt.Sprintf("%s[%d]", path, n-1)
		}
	}
	return path
}

// key reads a dotted key.
func (s *lineScanner) key() []string {
	var keys []string
	for {
		s.space(false)
		switch s.peek(0) {
		case '"':
			raw := s.quoted('"')
			if k, err := strconv.Unquote(`"` + raw + `"`); err == nil {
				raw = k
			}
			keys = append(keys, raw)
		case '\'':
			keys = append(keys, s.quoted('\''))
		default:
			start := s.pos
			for s.pos < len(s.doc) && isBare(rune(s.doc[s.pos])) {
				s.advance(1)
			}
			keys = append(keys, s.doc[start:s.pos])
		}
		s.space(false)
		if s.peek(0) != '.' {
			return keys
		}
		s.advance(1)
	}
}

// quoted reads a one-line string and returns what is between the quotes.
func (s *lineScanner) quoted(q byte) string {
	s.advance(1)
	start := s.pos
	for s.pos < len(s.doc) && s.doc[s.pos] != q && s.doc[s.pos] != '\n' {
		if q == '"' && s.doc[s.pos] == '\\' {
			s.advance(1)
		}
		s.advance(1)
	}
	end := min(s.pos, len(s.doc))
	s.advance(1)
	return s.doc[start:end]
}

// value skips a value, recording the keys of inline tables and the elements
// of arrays under path.
func (s *lineScanner) value(path string) {
	rest := s.doc[s.pos:]
	switch {
	case strings.HasPrefix(rest, `"""`), strings.HasPrefix(rest, "'''"):
		q := rest[:3]
		s.advance(3)
		for s.pos < len(s.doc) && !strings.HasPrefix(s.doc[s.pos:], q) {
			if q[0] == '"' && s.doc[s.pos] == '\\' {
				s.advance(1)
			}
			s.advance(1)
		}
		s.advance(3)
		for s.pos < len(s.doc) && s.doc[s.pos] == q[0] { // up to two quotes end the content
			s.advance(1)
		}
	case strings.HasPrefix(rest, `"`), strings.HasPrefix(rest, "'"):
		s.quoted(rest[0])
	case strings.HasPrefix(rest, "["):
		s.advance(1)
		for i := 0; ; i++ {
			start := s.pos
			s.space(true)
			if s.pos >= len(s.doc) || s.peek(0) == ']' {
				s.advance(1)
				return
			}
			p := fmt.Sprintf("%s[%d]", path, i)
			s.record(p)
			s.value(p)
			s.space(true)
			if s.peek(0) == ',' {
				s.advance(1)
			}
			if s.pos == start {
				s.advance(1)
			}
		}
	case strings.HasPrefix(rest, "{"):
		s.advance(1)
		for {
			start := s.pos
			s.space(true)
			if s.pos >= len(s.doc) || s.peek(0) == '}' {
				s.advance(1)
				return
			}
			p := path
			for _, k := range s.key() {
				p = joinKey(p, k)
				s.record(p)
			}
			s.space(false)
			if s.peek(0) == '=' {
				s.advance(1)
			}
			s.space(false)
			s.value(p)
			s.space(true)
			if s.peek(0) == ',' {
				s.advance(1)
			}
			if s.pos == start {
				s.advance(1)
			}
		}
	default: // number, boolean, date: up to a delimiter
		for s.pos < len(s.doc) && !strings.ContainsRune(",]}\n#", rune(s.doc[s.pos])) {
			s.advance(1)
		}
	}
}
