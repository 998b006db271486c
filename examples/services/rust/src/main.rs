//! slipway-demo-rust is Slipway's reference Rust service: the workload that
//! blue/green slots and canary steps are exercised with. Its HTTP and metrics
//! contract is shared with the Go service (examples/services/go) and documented
//! in docs/services.md.

mod config;

use std::net::SocketAddr;
use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use axum::Router;
use axum::extract::{RawQuery, Request, State};
use axum::http::{StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use prometheus::{
    Encoder, Histogram, HistogramOpts, IntCounterVec, IntGauge, Opts, Registry, TextEncoder,
};
use serde_json::{Value, json};

use config::{Config, Outcome};

const RUNTIME: &str = "rust";
const DEFAULT_ITERATIONS: u64 = 50_000;
const MAX_ITERATIONS: u64 = 10_000_000;
/// Latency buckets for a service answering in milliseconds: 1 ms .. 2.5 s.
const DURATION_BUCKETS: &[f64] = &[
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5,
];

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let cfg = match config::load(&args, |k| std::env::var(k).ok()) {
        Outcome::Run(cfg) => cfg,
        Outcome::Help(text) => {
            eprint!("{text}");
            return ExitCode::SUCCESS;
        }
        Outcome::Invalid(errors) => {
            for e in errors {
                eprintln!("slipway-demo-rust: configuration error: {e}");
            }
            return ExitCode::from(2);
        }
    };
    // The runtime is built from the validated TOKIO_WORKER_THREADS (or the CPUs
    // this process may use), not from Tokio's own reading of the variable.
    let rt = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(cfg.worker_threads)
        .thread_name("slipway-worker")
        .enable_io()
        .enable_time()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("slipway-demo-rust: cannot start the Tokio runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    rt.block_on(serve(cfg))
}

struct AppState {
    cfg: Config,
    ready: AtomicBool,
    registry: Registry,
    requests: IntCounterVec,
    duration: Histogram,
}

fn build_state(cfg: Config) -> prometheus::Result<Arc<AppState>> {
    let const_labels = [
        ("service", &cfg.service_name),
        ("slot", &cfg.slot),
        ("version", &cfg.version),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v.clone()))
    .collect::<std::collections::HashMap<_, _>>();
    let requests = IntCounterVec::new(
        Opts::new(
            "http_requests_total",
            "HTTP requests served, by status code (probes and /metrics excluded).",
        )
        .const_labels(const_labels.clone()),
        &["code"],
    )?;
    let duration = Histogram::with_opts(
        HistogramOpts::new(
            "http_request_duration_seconds",
            "Time to serve an HTTP request, injected latency included (probes and /metrics excluded).",
        )
        .const_labels(const_labels.clone())
        .buckets(DURATION_BUCKETS.to_vec()),
    )?;
    let mut info_labels = const_labels;
    info_labels.insert("revision".into(), cfg.revision.clone());
    info_labels.insert("runtime".into(), RUNTIME.into());
    let info = IntGauge::with_opts(
        Opts::new(
            "service_info",
            "Always 1; labels describe the running build.",
        )
        .const_labels(info_labels),
    )?;
    info.set(1);
    // Start the success and error series at zero, so that an error ratio can be
    // computed from the first scrape on (absent series are not zero in PromQL).
    requests.with_label_values(&["200"]);
    requests.with_label_values(&["500"]);

    let registry = Registry::new();
    registry.register(Box::new(requests.clone()))?;
    registry.register(Box::new(duration.clone()))?;
    registry.register(Box::new(info))?;
    Ok(Arc::new(AppState {
        cfg,
        ready: AtomicBool::new(true),
        registry,
        requests,
        duration,
    }))
}

fn router(state: Arc<AppState>) -> Router {
    Router::new()
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
        .route("/metrics", get(metrics))
        .route("/version", get(version))
        .route("/work", get(work))
        .fallback(not_found)
        .layer(middleware::from_fn_with_state(state.clone(), instrument))
        .with_state(state)
}

async fn serve(cfg: Config) -> ExitCode {
    let addr = SocketAddr::new(cfg.bind_addr, cfg.port);
    let worker_threads = cfg.worker_threads;
    let state = match build_state(cfg) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("slipway-demo-rust: cannot set up metrics: {e}");
            return ExitCode::FAILURE;
        }
    };
    let listener = match tokio::net::TcpListener::bind(addr).await {
        Ok(l) => l,
        Err(e) => {
            eprintln!(
                "slipway-demo-rust: cannot listen on {} port {} (PORT): {e}",
                addr.ip(),
                addr.port()
            );
            return ExitCode::FAILURE;
        }
    };
    let c = &state.cfg;
    log(
        "INFO",
        "listening",
        &state,
        json!({
            "addr": listener.local_addr().map(|a| a.to_string()).unwrap_or_default(),
            "runtime": RUNTIME,
            "revision": c.revision,
            "tokio_worker_threads": worker_threads,
            "fault_error_ratio": c.fault_error_ratio,
            "fault_latency_ms": c.fault_latency.as_millis() as u64,
        }),
    );

    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(
        axum::serve(listener, router(state.clone()))
            .with_graceful_shutdown(async move {
                let _ = stop_rx.await;
            })
            .into_future(),
    );
    let mut server = server;

    tokio::select! {
        res = &mut server => {
            log("ERROR", "server stopped", &state, json!({"error": format!("{res:?}")}));
            return ExitCode::FAILURE;
        }
        sig = shutdown_signal() => {
            log("INFO", "shutting down", &state,
                json!({"signal": sig, "delay_ms": state.cfg.shutdown_delay.as_millis() as u64}));
        }
    }

    // Fail readiness first so that load balancers stop sending new requests,
    // keep serving for the drain delay, then stop accepting and wait for
    // in-flight requests.
    state.ready.store(false, Ordering::SeqCst);
    tokio::time::sleep(state.cfg.shutdown_delay).await;
    let _ = stop_tx.send(());
    match tokio::time::timeout(state.cfg.shutdown_timeout, server).await {
        Ok(Ok(Ok(()))) => {
            log("INFO", "stopped", &state, json!({}));
            ExitCode::SUCCESS
        }
        Ok(res) => {
            log(
                "ERROR",
                "server failed while stopping",
                &state,
                json!({"error": format!("{res:?}")}),
            );
            ExitCode::FAILURE
        }
        Err(_) => {
            log(
                "ERROR",
                "shutdown did not finish in time",
                &state,
                json!({}),
            );
            ExitCode::FAILURE
        }
    }
}

async fn shutdown_signal() -> &'static str {
    use tokio::signal::unix::{SignalKind, signal};
    let (mut term, mut int) = match (
        signal(SignalKind::terminate()),
        signal(SignalKind::interrupt()),
    ) {
        (Ok(t), Ok(i)) => (t, i),
        _ => {
            eprintln!("slipway-demo-rust: cannot install signal handlers; running until killed");
            return std::future::pending().await;
        }
    };
    tokio::select! {
        _ = term.recv() => "terminated",
        _ = int.recv() => "interrupt",
    }
}

/// Counts and times application requests. Probes and scrapes are left out on
/// purpose: they would dilute the error ratio canary analysis reads.
async fn instrument(State(state): State<Arc<AppState>>, req: Request, next: Next) -> Response {
    if matches!(req.uri().path(), "/healthz" | "/readyz" | "/metrics") {
        return next.run(req).await;
    }
    let start = Instant::now();
    let res = next.run(req).await;
    state.duration.observe(start.elapsed().as_secs_f64());
    state
        .requests
        .with_label_values(&[res.status().as_str()])
        .inc();
    res
}

fn reply(code: StatusCode, body: Value) -> Response {
    (
        code,
        [(header::CACHE_CONTROL, "no-store")],
        axum::Json(body),
    )
        .into_response()
}

async fn healthz() -> Response {
    reply(StatusCode::OK, json!({"status": "ok"}))
}

async fn readyz(State(state): State<Arc<AppState>>) -> Response {
    if state.ready.load(Ordering::SeqCst) {
        reply(StatusCode::OK, json!({"status": "ready"}))
    } else {
        reply(
            StatusCode::SERVICE_UNAVAILABLE,
            json!({"status": "shutting down"}),
        )
    }
}

async fn metrics(State(state): State<Arc<AppState>>) -> Response {
    let encoder = TextEncoder::new();
    let mut buf = Vec::new();
    if let Err(e) = encoder.encode(&state.registry.gather(), &mut buf) {
        return (StatusCode::INTERNAL_SERVER_ERROR, e.to_string()).into_response();
    }
    (
        [(header::CONTENT_TYPE, encoder.format_type().to_string())],
        buf,
    )
        .into_response()
}

async fn version(State(state): State<Arc<AppState>>) -> Response {
    let c = &state.cfg;
    reply(
        StatusCode::OK,
        json!({"service": c.service_name, "version": c.version, "slot": c.slot, "runtime": RUNTIME, "revision": c.revision}),
    )
}

async fn not_found(req: Request) -> Response {
    reply(
        StatusCode::NOT_FOUND,
        json!({"error": "not found", "path": req.uri().path()}),
    )
}

/// What the load generator calls: a little CPU work (a chain of SplitMix64
/// steps, the same in both runtimes, so the result is checkable), then the
/// configured faults.
async fn work(State(state): State<Arc<AppState>>, RawQuery(query): RawQuery) -> Response {
    let mut iterations = DEFAULT_ITERATIONS;
    let requested = query
        .as_deref()
        .unwrap_or("")
        .split('&')
        .filter_map(|kv| kv.split_once('=').or(Some((kv, ""))))
        .find(|(k, _)| *k == "iterations")
        .map(|(_, v)| v);
    if let Some(v) = requested.filter(|v| !v.is_empty()) {
        match v.parse::<u64>() {
            Ok(n) if n <= MAX_ITERATIONS => iterations = n,
            _ => {
                return reply(
                    StatusCode::BAD_REQUEST,
                    json!({"error": format!("iterations must be a whole number from 0 to {MAX_ITERATIONS}")}),
                );
            }
        }
    }
    let result = splitmix_chain(iterations);

    let c = &state.cfg;
    if !c.fault_latency.is_zero() {
        tokio::time::sleep(c.fault_latency).await;
    }
    let mut body = json!({
        "service": c.service_name,
        "slot": c.slot,
        "version": c.version,
        "runtime": RUNTIME,
        "iterations": iterations,
        "result": format!("{result:016x}"),
    });
    if c.fault_error_ratio > 0.0 && fastrand::f64() < c.fault_error_ratio {
        body["error"] = json!("injected fault (FAULT_ERROR_RATIO)");
        return reply(StatusCode::INTERNAL_SERVER_ERROR, body);
    }
    reply(StatusCode::OK, body)
}

/// Applies SplitMix64's step n times to 0, each step feeding the next.
fn splitmix_chain(n: u64) -> u64 {
    let mut x: u64 = 0;
    for _ in 0..n {
        x = x.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = x;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        x = z ^ (z >> 31);
    }
    x
}

/// One JSON line on stdout, shaped like the Go service's slog output.
fn log(level: &str, msg: &str, state: &AppState, fields: Value) {
    let mut line = json!({
        "time": rfc3339_now(),
        "level": level,
        "msg": msg,
        "service": state.cfg.service_name,
        "slot": state.cfg.slot,
        "version": state.cfg.version,
    });
    if let (Some(obj), Value::Object(extra)) = (line.as_object_mut(), fields) {
        obj.extend(extra);
    }
    println!("{line}");
}

fn rfc3339_now() -> String {
    let d = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default();
    let secs = d.as_secs() as i64;
    let (days, rem) = (secs.div_euclid(86_400), secs.rem_euclid(86_400));
    // Civil-from-days (H. Hinnant), proleptic Gregorian calendar.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1_460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + if month <= 2 { 1 } else { 0 };
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}.{:09}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60,
        d.subsec_nanos()
    )
}

#[cfg(test)]
mod tests {
    #[test]
    fn splitmix_matches_the_go_service() {
        // Same value the Go service returns for /work?iterations=1000.
        assert_eq!(
            format!("{:016x}", super::splitmix_chain(1000)),
            "a17ac4d60a6b3f89"
        );
    }
}
