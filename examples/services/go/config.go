package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"regexp"
	"strconv"
	"strings"
	"time"
)

// config is the service's whole configuration. Every value comes from a flag
// when one is given, else from the environment variable, else the default.
// The contract (names, ranges, defaults) is the same for the Rust service; see
// docs/services.md.
type config struct {
	Port            int
	BindAddr        string
	ServiceName     string
	Slot            string
	Version         string
	Revision        string
	FaultErrorRatio float64
	FaultLatency    time.Duration
	ShutdownDelay   time.Duration
	ShutdownTimeout time.Duration
}

type setting struct {
	env, flag, def, help string
}

var settings = []setting{
	{"PORT", "port", "8080", "TCP port to listen on (1-65535)"},
	{"BIND_ADDR", "bind-addr", "0.0.0.0", "IP address to listen on"},
	{"SERVICE_NAME", "service-name", "slipway-demo", "service name (metric label; lowercase DNS label)"},
	{"SLOT", "slot", "blue", "slot this instance serves: blue or green"},
	{"VERSION", "version", "0.0.0-dev", "release version label"},
	{"REVISION", "revision", "unknown", "source revision (e.g. a git commit)"},
	{"FAULT_ERROR_RATIO", "fault-error-ratio", "0", "fraction of /work requests answered 500 (0..1)"},
	{"FAULT_LATENCY_MS", "fault-latency-ms", "0", "extra latency added to each /work request, ms (0..60000)"},
	{"SHUTDOWN_DELAY_MS", "shutdown-delay-ms", "0", "after SIGTERM, report not-ready for this long before draining, ms (0..300000)"},
	{"SHUTDOWN_TIMEOUT_MS", "shutdown-timeout-ms", "10000", "longest wait for in-flight requests on shutdown, ms (0..300000)"},
}

// configError names the variable (or flag) at fault, the value, and what is allowed.
type configError struct {
	source, value, allowed string
}

func (e *configError) Error() string {
	return fmt.Sprintf("invalid %s=%q: %s", e.source, e.value, e.allowed)
}

var (
	dnsLabel   = regexp.MustCompile(`^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$`)
	decimal    = regexp.MustCompile(`^([0-9]+(\.[0-9]*)?|\.[0-9]+)$`)
	labelValue = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._+-]{0,127}$`)
)

// loadConfig parses args (without the program name) and the environment.
func loadConfig(args []string, getenv func(string) string, usage io.Writer) (*config, error) {
	fs := flag.NewFlagSet("slipway-demo-go", flag.ContinueOnError)
	fs.SetOutput(usage)
	raw := make(map[string]*string, len(settings))
	for _, s := range settings {
		raw[s.env] = fs.String(s.flag, "", fmt.Sprintf("%s (env %s, default %q)", s.help, s.env, s.def))
	}
	if err := fs.Parse(args); err != nil {
		return nil, err
	}
	if fs.NArg() > 0 {
		return nil, fmt.Errorf("unexpected argument %q", fs.Arg(0))
	}
	given := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { given[f.Name] = true })

	// value returns the effective string and the name to blame if it is bad.
	value := func(env string) (string, string) {
		for _, s := range settings {
			if s.env != env {
				continue
			}
			if given[s.flag] {
				return *raw[env], "--" + s.flag
			}
			if v, ok := lookup(getenv, env); ok {
				return v, env
			}
			return s.def, env
		}
		panic("unknown setting " + env)
	}

	c := &config{}
	var errs []error
	check := func(err error) {
		if err != nil {
			errs = append(errs, err)
		}
	}
	intSetting := func(env string, lo, hi int) int {
		v, src := value(env)
		n, err := strconv.Atoi(strings.TrimSpace(v))
		if err != nil || n < lo || n > hi {
			check(&configError{src, v, fmt.Sprintf("must be a whole number from %d to %d", lo, hi)})
		}
		return n
	}
	matchSetting := func(env string, ok func(string) bool, allowed string) string {
		v, src := value(env)
		if !ok(v) {
			check(&configError{src, v, allowed})
		}
		return v
	}
	const labelRule = "must be 1-128 characters from A-Z a-z 0-9 . _ + -, starting with a letter or digit"

	c.Port = intSetting("PORT", 1, 65535)
	c.BindAddr = matchSetting("BIND_ADDR", func(v string) bool { return net.ParseIP(v) != nil },
		"must be an IP address such as 0.0.0.0, 127.0.0.1 or ::")
	c.ServiceName = matchSetting("SERVICE_NAME", dnsLabel.MatchString,
		"must be a lowercase DNS label: a-z, 0-9 and '-', 1-63 characters")
	c.Slot = matchSetting("SLOT", func(v string) bool { return v == "blue" || v == "green" }, "must be blue or green")
	c.Version = matchSetting("VERSION", labelValue.MatchString, labelRule)
	c.Revision = matchSetting("REVISION", labelValue.MatchString, labelRule)
	{
		v, src := value("FAULT_ERROR_RATIO")
		f, err := strconv.ParseFloat(strings.TrimSpace(v), 64)
		if !decimal.MatchString(strings.TrimSpace(v)) || err != nil || f < 0 || f > 1 {
			check(&configError{src, v, "must be a number from 0 to 1"})
		}
		c.FaultErrorRatio = f
	}
	c.FaultLatency = time.Duration(intSetting("FAULT_LATENCY_MS", 0, 60000)) * time.Millisecond
	c.ShutdownDelay = time.Duration(intSetting("SHUTDOWN_DELAY_MS", 0, 300000)) * time.Millisecond
	c.ShutdownTimeout = time.Duration(intSetting("SHUTDOWN_TIMEOUT_MS", 0, 300000)) * time.Millisecond
	if len(errs) > 0 {
		// Report every bad value at once, not one per restart.
		return nil, errors.Join(errs...)
	}
	return c, nil
}

// lookup treats an empty variable as unset, as most deploy tools write "" for "no value".
func lookup(getenv func(string) string, name string) (string, bool) {
	v := getenv(name)
	return v, v != ""
}
