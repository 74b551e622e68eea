package config

import (
	"encoding"
	"errors"
	"fmt"
	"io"
	"net/netip"
	"path/filepath"
	"reflect"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/go-viper/mapstructure/v2"
	"github.com/spf13/viper"
	"gopkg.in/yaml.v3"
)

// EnvPrefix is the prefix of environment variables that override agent
// settings, e.g. KEEPWATCH_AGENT_LISTEN_ADDRESS.
const EnvPrefix = "KEEPWATCH"

// IsStructured reports whether path names a YAML, TOML or JSON config (by
// extension) rather than a keepalived.conf.
func IsStructured(path string) bool {
	switch strings.ToLower(filepath.Ext(path)) {
	case ".yaml", ".yml", ".toml", ".json":
		return true
	}
	return false
}

// LoadStructured reads a YAML, TOML or JSON config through viper, applies
// KEEPWATCH_* environment overrides to the agent settings, fills in
// keepalived's defaults and validates the result.
func LoadStructured(path string, opts ValidateOptions) (*Config, Diagnostics) {
	var ds Diagnostics
	v := viper.New()
	v.SetConfigFile(path)
	v.SetEnvPrefix(EnvPrefix)
	v.SetEnvKeyReplacer(strings.NewReplacer(".", "_"))
	for _, k := range []string{"listen_address", "web_config_file", "log_format", "log_level", "otlp_endpoint", "otlp_protocol", "advert_span_ratio", "strict"} {
		_ = v.BindEnv("agent." + k)
	}
	if err := v.ReadInConfig(); err != nil {
		ds.Add(Pos{File: path}, Fatal, "", "cannot read config: %v", err)
		return nil, ds
	}
	c := &Config{Source: path}
	md := &mapstructure.Metadata{}
	err := v.Unmarshal(c, func(dc *mapstructure.DecoderConfig) {
		dc.TagName = "yaml"
		dc.Squash = true
		dc.Metadata = md
		dc.DecodeHook = mapstructure.ComposeDecodeHookFunc(durationHook, prefixHook, mapstructure.TextUnmarshallerHookFunc())
	})
	if err != nil {
		ds.Add(Pos{File: path}, Error, "", "%v", cleanDecodeError(err))
		return nil, ds
	}
	sort.Strings(md.Unused)
	for _, k := range md.Unused {
		ds.Add(Pos{File: path}, Warning, k, "unknown keyword %q - ignoring", k)
	}
	applyStructuredDefaults(c, v)
	for _, d := range Validate(c, opts) {
		// Structured files carry no line numbers; name the file at least.
		if d.Pos.File == "" {
			d.Pos.File = path
		}
		ds = append(ds, d)
	}
	return c, ds
}

// cleanDecodeError puts mapstructure's joined errors on one line.
func cleanDecodeError(err error) error {
	msg := err.Error()
	if _, rest, ok := strings.Cut(msg, "error(s):"); ok {
		msg = rest
	}
	var parts []string
	for _, p := range strings.Split(msg, "\n") {
		if p = strings.TrimSpace(strings.TrimPrefix(strings.TrimSpace(p), "*")); p != "" {
			parts = append(parts, p)
		}
	}
	return errors.New(strings.Join(parts, "; "))
}

var (
	durationType = reflect.TypeOf(time.Duration(0))
	prefixType   = reflect.TypeOf(netip.Prefix{})
)

// durationHook accepts durations as Go strings ("1s", "50ms") or, as
// keepalived.conf does, as bare numbers of seconds (1, 0.05, "1.5").
func durationHook(from, to reflect.Type, data any) (any, error) {
	if to != durationType {
		return data, nil
	}
	switch d := data.(type) {
	case int:
		return time.Duration(d) * time.Second, nil
	case int64:
		return time.Duration(d) * time.Second, nil
	case float64:
		return time.Duration(d * float64(time.Second)), nil
	case string:
		if f, err := strconv.ParseFloat(d, 64); err == nil {
			return time.Duration(f * float64(time.Second)), nil
		}
		return time.ParseDuration(d)
	}
	return data, nil
}

// prefixHook accepts an address with or without a prefix length.
func prefixHook(from, to reflect.Type, data any) (any, error) {
	s, ok := data.(string)
	if to != prefixType || !ok {
		return data, nil
	}
	if s == "" {
		return netip.Prefix{}, nil
	}
	if strings.Contains(s, "/") {
		return netip.ParsePrefix(s)
	}
	a, err := netip.ParseAddr(s)
	if err != nil {
		return nil, err
	}
	return netip.PrefixFrom(a, a.BitLen()), nil
}

// applyStructuredDefaults fills what a YAML user left out with keepalived's
// defaults. Fields whose zero is valid (real server weight) are defaulted
// only when the key is absent.
func applyStructuredDefaults(c *Config, v *viper.Viper) {
	// The same defaults the keepalived.conf reader writes into the model
	// (keepalived's global_data.c), so one config gives one model whichever
	// form it is written in.
	g := &c.Global
	if g.VRRPVersion == 0 {
		g.VRRPVersion = DefaultVRRPVersion
	}
	if g.SMTPPort == 0 {
		g.SMTPPort = DefaultSMTPPort
	}
	if g.SMTPConnectTimeout == 0 {
		g.SMTPConnectTimeout = DefaultSMTPTimeout
	}
	rawTF, _ := v.Get("track_files").([]any)
	for i := range c.TrackFiles {
		if i < len(rawTF) {
			if m, ok := rawTF[i].(map[string]any); ok {
				if _, set := m["weight"]; set {
					continue
				}
			}
		}
		c.TrackFiles[i].Weight = 1 // keepalived's track_file default; 0 would mean "fault on any value"
	}
	for i := range c.Instances {
		in := &c.Instances[i]
		if in.Priority == 0 {
			in.Priority = DefaultPriority
		}
		if in.AdvertInterval == 0 {
			in.AdvertInterval = DefaultAdvertInterval
		}
		if in.InitialState == "" {
			in.InitialState = "BACKUP"
		}
	}
	for i := range c.Scripts {
		s := &c.Scripts[i]
		if s.Interval == 0 {
			s.Interval = DefaultScriptInterval
		}
		if s.Timeout == 0 {
			s.Timeout = s.Interval // keepalived: timeout defaults to the interval
		}
		if s.Rise == 0 {
			s.Rise = 1
		}
		if s.Fall == 0 {
			s.Fall = 1
		}
		s.Args = SplitCommand(s.Command)
	}
	raw, _ := v.Get("virtual_servers").([]any)
	for i := range c.VirtualServers {
		vs := &c.VirtualServers[i]
		if vs.Scheduler == "" {
			vs.Scheduler = DefaultScheduler
		}
		if vs.Method == "" {
			vs.Method = DefaultMethod
		}
		if vs.Protocol == "" && vs.FWMark == 0 {
			vs.Protocol = DefaultProtocol
		}
		if vs.Quorum == 0 {
			vs.Quorum = DefaultQuorum
		}
		var rawRS []any
		if i < len(raw) {
			if m, ok := raw[i].(map[string]any); ok {
				rawRS, _ = m["real_servers"].([]any)
			}
		}
		for j := range vs.RealServers {
			for k := range vs.RealServers[j].Checkers {
				ck := &vs.RealServers[j].Checkers[k]
				if ck.HTTP != nil && ck.HTTP.Protocol == "" {
					ck.HTTP.Protocol = "1.0"
				}
				if ck.DNS != nil {
					if ck.DNS.Type == "" {
						ck.DNS.Type = DefaultDNSType
					}
					if ck.DNS.Name == "" {
						ck.DNS.Name = DefaultDNSName
					}
				}
			}
			if j < len(rawRS) {
				if m, ok := rawRS[j].(map[string]any); ok {
					if _, set := m["weight"]; set {
						continue
					}
				}
			}
			vs.RealServers[j].Weight = DefaultWeight
		}
	}
}

// SplitCommand splits a script specification into argv the way keepalived
// does: unquoted blanks separate words, single and double quotes group.
func SplitCommand(s string) []string {
	var args []string
	var cur strings.Builder
	in, quote := false, byte(0)
	for i := 0; i < len(s); i++ {
		ch := s[i]
		switch {
		case quote != 0:
			if ch == quote {
				quote = 0
			} else {
				cur.WriteByte(ch)
			}
		case ch == '"' || ch == '\'':
			quote, in = ch, true
		case ch == ' ' || ch == '\t':
			if in {
				args = append(args, cur.String())
				cur.Reset()
				in = false
			}
		default:
			cur.WriteByte(ch)
			in = true
		}
	}
	if in {
		args = append(args, cur.String())
	}
	return args
}

// WriteYAML writes c as YAML in the model's field order, omitting unset
// values. Durations print as Go durations ("1s", "50ms"); addresses as text.
func WriteYAML(w io.Writer, c *Config) error {
	n, err := toNode(reflect.ValueOf(c).Elem())
	if err != nil {
		return err
	}
	enc := yaml.NewEncoder(w)
	enc.SetIndent(2)
	if err := enc.Encode(n); err != nil {
		return err
	}
	return enc.Close()
}

var textMarshaler = reflect.TypeOf((*encoding.TextMarshaler)(nil)).Elem()

func scalar(tag, s string) *yaml.Node {
	return &yaml.Node{Kind: yaml.ScalarNode, Tag: tag, Value: s}
}

func toNode(v reflect.Value) (*yaml.Node, error) {
	if v.Kind() == reflect.Pointer {
		if v.IsNil() {
			return scalar("!!null", "null"), nil
		}
		v = v.Elem()
	}
	if v.Type() == durationType {
		return scalar("!!str", time.Duration(v.Int()).String()), nil
	}
	if v.Type().Implements(textMarshaler) {
		b, err := v.Interface().(encoding.TextMarshaler).MarshalText()
		if err != nil {
			return nil, err
		}
		return scalar("!!str", string(b)), nil
	}
	switch v.Kind() {
	case reflect.Struct:
		m := &yaml.Node{Kind: yaml.MappingNode}
		if err := addFields(m, v); err != nil {
			return nil, err
		}
		return m, nil
	case reflect.Slice:
		if v.Type().Elem().Kind() == reflect.Uint8 {
			return scalar("!!str", fmt.Sprintf("%x", v.Bytes())), nil
		}
		s := &yaml.Node{Kind: yaml.SequenceNode}
		for i := 0; i < v.Len(); i++ {
			n, err := toNode(v.Index(i))
			if err != nil {
				return nil, err
			}
			s.Content = append(s.Content, n)
		}
		return s, nil
	case reflect.String:
		return scalar("!!str", v.String()), nil
	case reflect.Bool:
		return scalar("!!bool", strconv.FormatBool(v.Bool())), nil
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		return scalar("!!int", strconv.FormatInt(v.Int(), 10)), nil
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		return scalar("!!int", strconv.FormatUint(v.Uint(), 10)), nil
	case reflect.Float32, reflect.Float64:
		return scalar("!!float", strconv.FormatFloat(v.Float(), 'g', -1, 64)), nil
	}
	return nil, fmt.Errorf("config: cannot write %s as YAML", v.Type())
}

func addFields(m *yaml.Node, v reflect.Value) error {
	t := v.Type()
	for i := 0; i < t.NumField(); i++ {
		f := t.Field(i)
		if !f.IsExported() {
			continue
		}
		name, opts, _ := strings.Cut(f.Tag.Get("yaml"), ",")
		if name == "-" {
			continue
		}
		fv := v.Field(i)
		if f.Anonymous && name == "" && fv.Kind() == reflect.Struct {
			if err := addFields(m, fv); err != nil {
				return err
			}
			continue
		}
		if name == "" {
			name = strings.ToLower(f.Name)
		}
		if strings.Contains(opts, "omitempty") && isEmpty(fv) {
			continue
		}
		n, err := toNode(fv)
		if err != nil {
			return err
		}
		m.Content = append(m.Content, scalar("!!str", name), n)
	}
	return nil
}

func isEmpty(v reflect.Value) bool {
	switch v.Kind() {
	case reflect.Slice, reflect.Map:
		return v.Len() == 0
	case reflect.Pointer, reflect.Interface:
		return v.IsNil()
	}
	return v.IsZero()
}
