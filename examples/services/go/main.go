// Command slipway-demo-go is Slipway's reference Go service: the workload that
// blue/green slots and canary steps are exercised with. Its HTTP and metrics
// contract is shared with the Rust service (examples/services/rust) and
// documented in docs/services.md.
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net"
	"net/http"
	"os"
	"os/signal"
	"runtime"
	"runtime/debug"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

const (
	runtimeName       = "go"
	defaultIterations = 50_000
	maxIterations     = 10_000_000
)

// Latency buckets for a service answering in milliseconds: 1 ms .. 2.5 s.
var durationBuckets = []float64{.001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5}

func main() {
	os.Exit(run(os.Args[1:]))
}

func run(args []string) int {
	logger := slog.New(slog.NewJSONHandler(os.Stdout, nil))
	cfg, err := loadConfig(args, os.Getenv, os.Stderr)
	if errors.Is(err, flag.ErrHelp) {
		return 0
	}
	if err != nil {
		for _, line := range strings.Split(err.Error(), "\n") {
			fmt.Fprintf(os.Stderr, "slipway-demo-go: configuration error: %s\n", line)
		}
		return 2
	}
	logger = logger.With("service", cfg.ServiceName, "slot", cfg.Slot, "version", cfg.Version)

	srv := newServer(cfg)
	ln, err := net.Listen("tcp", net.JoinHostPort(cfg.BindAddr, strconv.Itoa(cfg.Port)))
	if err != nil {
		fmt.Fprintf(os.Stderr, "slipway-demo-go: cannot listen on %s port %d (PORT): %v\n", cfg.BindAddr, cfg.Port, err)
		return 1
	}
	// The Go runtime sizes itself from GOMAXPROCS and GOMEMLIMIT (and, since Go 1.25,
	// from the cgroup CPU limit); print what it settled on.
	logger.Info("listening",
		"addr", ln.Addr().String(),
		"runtime", runtimeName,
		"revision", cfg.Revision,
		"go_version", runtime.Version(),
		"gomaxprocs", runtime.GOMAXPROCS(0),
		"gomemlimit", memLimitString(debug.SetMemoryLimit(-1)),
		"fault_error_ratio", cfg.FaultErrorRatio,
		"fault_latency_ms", cfg.FaultLatency.Milliseconds(),
	)

	httpServer := &http.Server{
		Handler:           srv,
		ReadHeaderTimeout: 10 * time.Second,
		IdleTimeout:       90 * time.Second,
	}
	serveErr := make(chan error, 1)
	go func() { serveErr <- httpServer.Serve(ln) }()

	sigs := make(chan os.Signal, 1)
	signal.Notify(sigs, syscall.SIGTERM, syscall.SIGINT)
	select {
	case err := <-serveErr:
		logger.Error("server stopped", "error", err.Error())
		return 1
	case sig := <-sigs:
		logger.Info("shutting down", "signal", sig.String(), "delay_ms", cfg.ShutdownDelay.Milliseconds())
	}
	signal.Stop(sigs) // a second signal kills the process the default way

	// Fail readiness first so that load balancers stop sending new requests,
	// keep serving for the drain delay, then stop accepting and wait for
	// in-flight requests.
	srv.ready.Store(false)
	time.Sleep(cfg.ShutdownDelay)
	ctx, cancel := context.WithTimeout(context.Background(), cfg.ShutdownTimeout)
	defer cancel()
	if err := httpServer.Shutdown(ctx); err != nil {
		logger.Error("shutdown did not finish in time", "error", err.Error())
		return 1
	}
	logger.Info("stopped")
	return 0
}

func memLimitString(limit int64) string {
	if limit == int64(^uint64(0)>>1) {
		return "unlimited"
	}
	return strconv.FormatInt(limit, 10)
}

type server struct {
	cfg      *config
	mux      *http.ServeMux
	ready    atomic.Bool
	requests *prometheus.CounterVec
	duration prometheus.Histogram
}

func newServer(cfg *config) *server {
	s := &server{cfg: cfg, mux: http.NewServeMux()}
	s.ready.Store(true)

	reg := prometheus.NewRegistry()
	constLabels := prometheus.Labels{"service": cfg.ServiceName, "slot": cfg.Slot, "version": cfg.Version}
	s.requests = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name:        "http_requests_total",
		Help:        "HTTP requests served, by status code (probes and /metrics excluded).",
		ConstLabels: constLabels,
	}, []string{"code"})
	s.duration = prometheus.NewHistogram(prometheus.HistogramOpts{
		Name:        "http_request_duration_seconds",
		Help:        "Time to serve an HTTP request, injected latency included (probes and /metrics excluded).",
		ConstLabels: constLabels,
		Buckets:     durationBuckets,
	})
	info := prometheus.NewGauge(prometheus.GaugeOpts{
		Name: "service_info",
		Help: "Always 1; labels describe the running build.",
		ConstLabels: prometheus.Labels{
			"service": cfg.ServiceName, "slot": cfg.Slot, "version": cfg.Version,
			"revision": cfg.Revision, "runtime": runtimeName,
		},
	})
	info.Set(1)
	// Start the success and error series at zero, so that an error ratio can be
	// computed from the first scrape on (absent series are not zero in PromQL).
	s.requests.WithLabelValues("200")
	s.requests.WithLabelValues("500")
	reg.MustRegister(s.requests, s.duration, info,
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))

	s.mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, http.StatusOK, map[string]any{"status": "ok"})
	})
	s.mux.HandleFunc("GET /readyz", func(w http.ResponseWriter, r *http.Request) {
		if !s.ready.Load() {
			writeJSON(w, http.StatusServiceUnavailable, map[string]any{"status": "shutting down"})
			return
		}
		writeJSON(w, http.StatusOK, map[string]any{"status": "ready"})
	})
	s.mux.Handle("GET /metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{}))
	s.mux.Handle("GET /version", s.instrument(http.HandlerFunc(s.version)))
	s.mux.Handle("GET /work", s.instrument(http.HandlerFunc(s.work)))
	s.mux.Handle("/", s.instrument(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, http.StatusNotFound, map[string]any{"error": "not found", "path": r.URL.Path})
	})))
	return s
}

func (s *server) ServeHTTP(w http.ResponseWriter, r *http.Request) { s.mux.ServeHTTP(w, r) }

// instrument counts and times application requests. Probes and scrapes are
// left out on purpose: they would dilute the error ratio canary analysis reads.
func (s *server) instrument(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		rec := &statusRecorder{ResponseWriter: w, code: http.StatusOK}
		next.ServeHTTP(rec, r)
		s.duration.Observe(time.Since(start).Seconds())
		s.requests.WithLabelValues(strconv.Itoa(rec.code)).Inc()
	})
}

type statusRecorder struct {
	http.ResponseWriter
	code        int
	wroteHeader bool
}

func (r *statusRecorder) WriteHeader(code int) {
	if !r.wroteHeader {
		r.code, r.wroteHeader = code, true
	}
	r.ResponseWriter.WriteHeader(code)
}

func (s *server) version(w http.ResponseWriter, r *http.Request) {
	writeJSON(w, http.StatusOK, map[string]any{
		"service":  s.cfg.ServiceName,
		"version":  s.cfg.Version,
		"slot":     s.cfg.Slot,
		"runtime":  runtimeName,
		"revision": s.cfg.Revision,
	})
}

// work is what the load generator calls: a little CPU work (a chain of
// SplitMix64 steps, the same in both runtimes, so the result is checkable),
// then the configured faults.
func (s *server) work(w http.ResponseWriter, r *http.Request) {
	iterations := defaultIterations
	if q := r.URL.Query().Get("iterations"); q != "" {
		n, err := strconv.Atoi(q)
		if err != nil || n < 0 || n > maxIterations {
			writeJSON(w, http.StatusBadRequest, map[string]any{
				"error": fmt.Sprintf("iterations must be a whole number from 0 to %d", maxIterations),
			})
			return
		}
		iterations = n
	}
	result := splitmixChain(iterations)

	if s.cfg.FaultLatency > 0 {
		t := time.NewTimer(s.cfg.FaultLatency)
		select {
		case <-t.C:
		case <-r.Context().Done():
			t.Stop()
		}
	}
	body := map[string]any{
		"service":    s.cfg.ServiceName,
		"slot":       s.cfg.Slot,
		"version":    s.cfg.Version,
		"runtime":    runtimeName,
		"iterations": iterations,
		"result":     fmt.Sprintf("%016x", result),
	}
	if s.cfg.FaultErrorRatio > 0 && rand.Float64() < s.cfg.FaultErrorRatio {
		body["error"] = "injected fault (FAULT_ERROR_RATIO)"
		writeJSON(w, http.StatusInternalServerError, body)
		return
	}
	writeJSON(w, http.StatusOK, body)
}

// splitmixChain applies SplitMix64's step n times to 0, each step feeding the next.
func splitmixChain(n int) uint64 {
	var x uint64
	for range n {
		x += 0x9e3779b97f4a7c15
		z := x
		z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9
		z = (z ^ (z >> 27)) * 0x94d049bb133111eb
		x = z ^ (z >> 31)
	}
	return x
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(code)
	_ = json.NewEncoder(w).Encode(v)
}
