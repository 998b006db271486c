//! Configuration: every value comes from a flag when one is given, else from the
//! environment variable, else the default. Same names, ranges and defaults as the
//! Go service (see docs/services.md); `TOKIO_WORKER_THREADS` is Rust-only.

use std::collections::HashMap;
use std::fmt;
use std::net::IpAddr;
use std::time::Duration;

pub struct Config {
    pub port: u16,
    pub bind_addr: IpAddr,
    pub service_name: String,
    pub slot: String,
    pub version: String,
    pub revision: String,
    pub fault_error_ratio: f64,
    pub fault_latency: Duration,
    pub shutdown_delay: Duration,
    pub shutdown_timeout: Duration,
    pub worker_threads: usize,
}

struct Setting {
    env: &'static str,
    flag: &'static str,
    default: &'static str,
    help: &'static str,
}

const SETTINGS: &[Setting] = &[
    Setting {
        env: "PORT",
        flag: "port",
        default: "8080",
        help: "TCP port to listen on (1-65535)",
    },
    Setting {
        env: "BIND_ADDR",
        flag: "bind-addr",
        default: "0.0.0.0",
        help: "IP address to listen on",
    },
    Setting {
        env: "SERVICE_NAME",
        flag: "service-name",
        default: "slipway-demo",
        help: "service name (metric label; lowercase DNS label)",
    },
    Setting {
        env: "SLOT",
        flag: "slot",
        default: "blue",
        help: "slot this instance serves: blue or green",
    },
    Setting {
        env: "VERSION",
        flag: "version",
        default: "0.0.0-dev",
        help: "release version label",
    },
    Setting {
        env: "REVISION",
        flag: "revision",
        default: "unknown",
        help: "source revision (e.g. a git commit)",
    },
    Setting {
        env: "FAULT_ERROR_RATIO",
        flag: "fault-error-ratio",
        default: "0",
        help: "fraction of /work requests answered 500 (0..1)",
    },
    Setting {
        env: "FAULT_LATENCY_MS",
        flag: "fault-latency-ms",
        default: "0",
        help: "extra latency added to each /work request, ms (0..60000)",
    },
    Setting {
        env: "SHUTDOWN_DELAY_MS",
        flag: "shutdown-delay-ms",
        default: "0",
        help: "after SIGTERM, report not-ready for this long before draining, ms (0..300000)",
    },
    Setting {
        env: "SHUTDOWN_TIMEOUT_MS",
        flag: "shutdown-timeout-ms",
        default: "10000",
        help: "longest wait for in-flight requests on shutdown, ms (0..300000)",
    },
    Setting {
        env: "TOKIO_WORKER_THREADS",
        flag: "worker-threads",
        default: "",
        help: "Tokio worker threads (1..1024; default: the CPUs this process may use)",
    },
];

/// A bad value: names the variable (or flag) at fault, the value, and what is allowed.
#[derive(Debug)]
pub struct ConfigError {
    source: String,
    value: String,
    allowed: String,
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "invalid {}={:?}: {}",
            self.source, self.value, self.allowed
        )
    }
}

pub enum Outcome {
    Run(Config),
    Help(String),
    Invalid(Vec<String>),
}

pub fn usage() -> String {
    let mut s = String::from("Usage of slipway-demo-rust:\n");
    for st in SETTINGS {
        let def = if st.default.is_empty() {
            "automatic"
        } else {
            st.default
        };
        s.push_str(&format!(
            "  --{} value\n    \t{} (env {}, default {:?})\n",
            st.flag, st.help, st.env, def
        ));
    }
    s
}

/// Parses args (without the program name) and the environment.
pub fn load(args: &[String], getenv: impl Fn(&str) -> Option<String>) -> Outcome {
    let mut given: HashMap<&'static str, String> = HashMap::new();
    let mut i = 0;
    while i < args.len() {
        let arg = &args[i];
        if arg == "-h" || arg == "--help" || arg == "-help" {
            return Outcome::Help(usage());
        }
        // Accept --flag value, --flag=value, and the single-dash forms Go's flag package takes.
        let stripped = arg.strip_prefix("--").or_else(|| arg.strip_prefix('-'));
        let Some(body) = stripped.filter(|b| !b.is_empty()) else {
            return Outcome::Invalid(vec![format!("unexpected argument {arg:?}")]);
        };
        let (name, inline) = match body.split_once('=') {
            Some((n, v)) => (n, Some(v.to_string())),
            None => (body, None),
        };
        let Some(setting) = SETTINGS.iter().find(|s| s.flag == name) else {
            return Outcome::Invalid(vec![format!("flag provided but not defined: -{name}")]);
        };
        let value = match inline {
            Some(v) => v,
            None => {
                i += 1;
                match args.get(i) {
                    Some(v) => v.clone(),
                    None => {
                        return Outcome::Invalid(vec![format!("flag needs an argument: -{name}")]);
                    }
                }
            }
        };
        given.insert(setting.flag, value);
        i += 1;
    }

    // value returns the effective string and the name to blame if it is bad.
    let value = |env: &str| -> (String, String) {
        let s = SETTINGS
            .iter()
            .find(|s| s.env == env)
            .expect("known setting");
        if let Some(v) = given.get(s.flag) {
            return (v.clone(), format!("--{}", s.flag));
        }
        match getenv(env) {
            // An empty variable counts as unset, as most deploy tools write "" for "no value".
            Some(v) if !v.is_empty() => (v, env.to_string()),
            _ => (s.default.to_string(), env.to_string()),
        }
    };

    let mut errors: Vec<String> = Vec::new();
    let mut bad = |source: String, value: String, allowed: &str| {
        errors.push(
            ConfigError {
                source,
                value,
                allowed: allowed.to_string(),
            }
            .to_string(),
        );
    };
    let int_setting =
        |env: &str, lo: u64, hi: u64, bad: &mut dyn FnMut(String, String, &str)| -> u64 {
            let (v, src) = value(env);
            match v.trim().parse::<u64>() {
                Ok(n) if (lo..=hi).contains(&n) => n,
                _ => {
                    bad(src, v, &format!("must be a whole number from {lo} to {hi}"));
                    0
                }
            }
        };

    let port = int_setting("PORT", 1, 65535, &mut bad) as u16;
    let (v, src) = value("BIND_ADDR");
    let bind_addr = match v.parse::<IpAddr>() {
        Ok(ip) => ip,
        Err(_) => {
            bad(
                src,
                v,
                "must be an IP address such as 0.0.0.0, 127.0.0.1 or ::",
            );
            IpAddr::from([0, 0, 0, 0])
        }
    };
    let (service_name, src) = value("SERVICE_NAME");
    if !is_dns_label(&service_name) {
        bad(
            src,
            service_name.clone(),
            "must be a lowercase DNS label: a-z, 0-9 and '-', 1-63 characters",
        );
    }
    let (slot, src) = value("SLOT");
    if slot != "blue" && slot != "green" {
        bad(src, slot.clone(), "must be blue or green");
    }
    const LABEL_RULE: &str =
        "must be 1-128 characters from A-Z a-z 0-9 . _ + -, starting with a letter or digit";
    let (version, src) = value("VERSION");
    if !is_label_value(&version) {
        bad(src, version.clone(), LABEL_RULE);
    }
    let (revision, src) = value("REVISION");
    if !is_label_value(&revision) {
        bad(src, revision.clone(), LABEL_RULE);
    }
    let (v, src) = value("FAULT_ERROR_RATIO");
    let fault_error_ratio = match (is_decimal(v.trim()), v.trim().parse::<f64>()) {
        (true, Ok(f)) if (0.0..=1.0).contains(&f) => f,
        _ => {
            bad(src, v, "must be a number from 0 to 1");
            0.0
        }
    };
    let fault_latency = Duration::from_millis(int_setting("FAULT_LATENCY_MS", 0, 60_000, &mut bad));
    let shutdown_delay =
        Duration::from_millis(int_setting("SHUTDOWN_DELAY_MS", 0, 300_000, &mut bad));
    let shutdown_timeout =
        Duration::from_millis(int_setting("SHUTDOWN_TIMEOUT_MS", 0, 300_000, &mut bad));
    let (v, _) = value("TOKIO_WORKER_THREADS");
    let worker_threads = if v.is_empty() {
        // Like Tokio's own default; std's answer honours CPU affinity and cgroup quotas.
        std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(1)
    } else {
        int_setting("TOKIO_WORKER_THREADS", 1, 1024, &mut bad) as usize
    };

    if !errors.is_empty() {
        return Outcome::Invalid(errors);
    }
    Outcome::Run(Config {
        port,
        bind_addr,
        service_name,
        slot,
        version,
        revision,
        fault_error_ratio,
        fault_latency,
        shutdown_delay,
        shutdown_timeout,
        worker_threads,
    })
}

/// `^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$`
fn is_dns_label(s: &str) -> bool {
    let b = s.as_bytes();
    let ok = |c: &u8| c.is_ascii_lowercase() || c.is_ascii_digit();
    !b.is_empty()
        && b.len() <= 63
        && ok(&b[0])
        && ok(&b[b.len() - 1])
        && b.iter().all(|c| ok(c) || *c == b'-')
}

/// `^[A-Za-z0-9][A-Za-z0-9._+-]{0,127}$`
fn is_label_value(s: &str) -> bool {
    let b = s.as_bytes();
    !b.is_empty()
        && b.len() <= 128
        && b[0].is_ascii_alphanumeric()
        && b.iter()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, b'.' | b'_' | b'+' | b'-'))
}

/// `^([0-9]+(\.[0-9]*)?|\.[0-9]+)$`
fn is_decimal(s: &str) -> bool {
    let (int, frac) = match s.split_once('.') {
        Some((i, f)) => (i, Some(f)),
        None => (s, None),
    };
    let digits = |x: &str| x.bytes().all(|c| c.is_ascii_digit());
    match frac {
        None => !int.is_empty() && digits(int),
        Some(f) => digits(int) && digits(f) && (!int.is_empty() || !f.is_empty()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(pairs: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
        let m: HashMap<String, String> = pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        move |k| m.get(k).cloned()
    }

    #[test]
    fn defaults() {
        let Outcome::Run(c) = load(&[], env(&[])) else {
            panic!("expected defaults to be valid")
        };
        assert_eq!(c.port, 8080);
        assert_eq!(c.slot, "blue");
        assert_eq!(c.fault_error_ratio, 0.0);
    }

    #[test]
    fn flag_overrides_env_and_errors_name_the_source() {
        let args: Vec<String> = ["--slot=green", "--port", "9000"]
            .iter()
            .map(|s| s.to_string())
            .collect();
        let Outcome::Run(c) = load(&args, env(&[("SLOT", "red"), ("PORT", "x")])) else {
            panic!()
        };
        assert_eq!((c.port, c.slot.as_str()), (9000, "green"));
        let Outcome::Invalid(errs) =
            load(&[], env(&[("SLOT", "red"), ("FAULT_ERROR_RATIO", "1.5")]))
        else {
            panic!()
        };
        assert!(errs[0].contains("SLOT=\"red\""), "{errs:?}");
        assert!(errs[1].contains("FAULT_ERROR_RATIO"), "{errs:?}");
    }

    #[test]
    fn decimals() {
        for ok in ["0", "1", "0.5", ".5", "1.", "1.0"] {
            assert!(is_decimal(ok), "{ok}");
        }
        for bad in ["", ".", "-0.1", "1e0", "inf", "NaN", "0x1"] {
            assert!(!is_decimal(bad), "{bad}");
        }
    }
}
