//! `pftrack-loggen`: write a generated Postfix log to standard output.
//!
//! ```text
//! pftrack-loggen [--seed N] [--lines N] [--format classic|rfc3339]
//!                [--start 2025-12-31T23:00:00] [--hosts mx1,mx2] [--rate PER_SEC]
//!                [--utc-offset +01:00] [--lifetime SECS] [--qid-space N] > mail.log
//! pftrack-loggen --fleet N --out-dir DIR [--messages N] [--seed N] [--format …]
//!                [--start …] [--rate PER_SEC]
//! ```
//! The second form writes the logs of a fleet of N hosts (mx → store, submit →
//! smarthost; see `pftrack_loggen::generate_fleet`), one file `DIR/<host>.log` each.
//!
//! Counts of what was generated go to standard error.

use std::io::{self, BufWriter, Write};
use std::process::ExitCode;

use chrono::NaiveDateTime;
use pftrack_loggen::{FleetConfig, GenConfig, StampFormat, fleet_hosts, generate, generate_fleet};

const USAGE: &str = "usage: pftrack-loggen [--seed N] [--lines N] [--format classic|rfc3339] \
[--start YYYY-MM-DDTHH:MM:SS] [--hosts mx1,mx2] [--rate PER_SEC] [--utc-offset +HH:MM] \
[--lifetime SECS] [--qid-space N]
       pftrack-loggen --fleet N --out-dir DIR [--messages N] [--seed N] [--format classic|rfc3339] \
[--start YYYY-MM-DDTHH:MM:SS] [--rate PER_SEC]";

/// Fleet mode: `--fleet`, `--out-dir`, `--messages` and the options they share.
struct FleetArgs {
    config: FleetConfig,
    out_dir: std::path::PathBuf,
}

/// The fleet options when `--fleet` is given (the single-host options that do not
/// apply are refused), `None` otherwise.
fn parse_fleet_args(args: &[String]) -> Result<Option<FleetArgs>, String> {
    if !args.iter().any(|a| a == "--fleet") {
        return Ok(None);
    }
    let mut cfg = FleetConfig::default();
    let mut out_dir = None;
    let mut it = args.iter();
    while let Some(flag) = it.next() {
        let value = it
            .next()
            .ok_or_else(|| format!("{flag} needs a value\n{USAGE}"))?;
        let bad = |what: &str| format!("bad {what} for {flag}: {value:?}");
        match flag.as_str() {
            "--fleet" => cfg.hosts = value.parse().map_err(|_| bad("number"))?,
            "--out-dir" => out_dir = Some(std::path::PathBuf::from(value)),
            "--messages" => cfg.messages = value.parse().map_err(|_| bad("number"))?,
            "--seed" => cfg.seed = value.parse().map_err(|_| bad("number"))?,
            "--rate" => cfg.messages_per_second = value.parse().map_err(|_| bad("rate"))?,
            "--format" => {
                cfg.format = match value.as_str() {
                    "classic" => StampFormat::Classic,
                    "rfc3339" => StampFormat::Rfc3339,
                    _ => return Err(bad("format (classic or rfc3339)")),
                }
            }
            "--start" => {
                cfg.start = NaiveDateTime::parse_from_str(value, "%Y-%m-%dT%H:%M:%S")
                    .map_err(|_| bad("time (YYYY-MM-DDTHH:MM:SS)"))?
            }
            _ => return Err(format!("{flag} does not apply to --fleet\n{USAGE}")),
        }
    }
    if !(pftrack_loggen::MIN_FLEET_HOSTS..=pftrack_loggen::MAX_FLEET_HOSTS).contains(&cfg.hosts) {
        return Err(format!(
            "--fleet: between {} and {} hosts",
            pftrack_loggen::MIN_FLEET_HOSTS,
            pftrack_loggen::MAX_FLEET_HOSTS
        ));
    }
    let out_dir = out_dir.ok_or_else(|| format!("--fleet needs --out-dir DIR\n{USAGE}"))?;
    Ok(Some(FleetArgs {
        config: cfg,
        out_dir,
    }))
}

fn run_fleet(args: &FleetArgs) -> io::Result<()> {
    std::fs::create_dir_all(&args.out_dir)?;
    let mut outs: Vec<Box<dyn Write>> = Vec::new();
    for h in fleet_hosts(args.config.hosts) {
        let path = args.out_dir.join(format!("{}.log", h.name));
        let file = std::fs::File::create(&path)
            .map_err(|e| io::Error::new(e.kind(), format!("{}: {e}", path.display())))?;
        outs.push(Box::new(BufWriter::with_capacity(1 << 20, file)));
    }
    let stats = generate_fleet(&args.config, &mut outs)?;
    for out in &mut outs {
        out.flush()?;
    }
    eprintln!("{stats:#?}");
    Ok(())
}

fn parse_args(args: &[String]) -> Result<GenConfig, String> {
    let mut cfg = GenConfig::default();
    let mut it = args.iter();
    while let Some(flag) = it.next() {
        if flag == "-h" || flag == "--help" {
            return Err(USAGE.to_owned());
        }
        let value = it
            .next()
            .ok_or_else(|| format!("{flag} needs a value\n{USAGE}"))?;
        let bad = |what: &str| format!("bad {what} for {flag}: {value:?}");
        match flag.as_str() {
            "--seed" => cfg.seed = value.parse().map_err(|_| bad("number"))?,
            "--lines" => cfg.lines = value.parse().map_err(|_| bad("number"))?,
            "--format" => {
                cfg.format = match value.as_str() {
                    "classic" => StampFormat::Classic,
                    "rfc3339" => StampFormat::Rfc3339,
                    _ => return Err(bad("format (classic or rfc3339)")),
                }
            }
            "--start" => {
                cfg.start = NaiveDateTime::parse_from_str(value, "%Y-%m-%dT%H:%M:%S")
                    .map_err(|_| bad("time (YYYY-MM-DDTHH:MM:SS)"))?
            }
            "--hosts" => {
                cfg.hosts = value
                    .split(',')
                    .filter(|h| !h.is_empty())
                    .map(str::to_owned)
                    .collect()
            }
            "--rate" => cfg.messages_per_second = value.parse().map_err(|_| bad("rate"))?,
            "--lifetime" => cfg.queue_lifetime_secs = value.parse().map_err(|_| bad("seconds"))?,
            "--qid-space" => cfg.queue_id_space = value.parse().map_err(|_| bad("number"))?,
            "--utc-offset" => {
                cfg.utc_offset_seconds = parse_offset(value).ok_or_else(|| bad("offset"))?
            }
            _ => return Err(format!("unknown option {flag}\n{USAGE}")),
        }
    }
    Ok(cfg)
}

/// `+HH:MM` / `-HH:MM` / `+HHMM` to seconds east of UTC.
fn parse_offset(s: &str) -> Option<i32> {
    let sign = match s.as_bytes().first()? {
        b'+' => 1,
        b'-' => -1,
        _ => return None,
    };
    let digits: String = s[1..].chars().filter(|c| *c != ':').collect();
    if digits.len() != 4 || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let h: i32 = digits[..2].parse().ok()?;
    let m: i32 = digits[2..].parse().ok()?;
    (h < 24 && m < 60).then_some(sign * (h * 3600 + m * 60))
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match parse_fleet_args(&args) {
        Ok(Some(fleet)) => {
            return match run_fleet(&fleet) {
                Ok(()) => ExitCode::SUCCESS,
                Err(e) => {
                    eprintln!("pftrack-loggen: {e}");
                    ExitCode::FAILURE
                }
            };
        }
        Ok(None) => {}
        Err(e) => {
            eprintln!("{e}");
            return ExitCode::from(2);
        }
    }
    let cfg = match parse_args(&args) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("{e}");
            return ExitCode::from(2);
        }
    };
    let stdout = io::stdout();
    let mut out = BufWriter::with_capacity(1 << 20, stdout.lock());
    let result = generate(&cfg, &mut out).and_then(|s| out.flush().map(|()| s));
    match result {
        Ok(stats) => {
            eprintln!("{stats:#?}");
            ExitCode::SUCCESS
        }
        // A closed pipe (`| head`) is not a failure.
        Err(e) if e.kind() == io::ErrorKind::BrokenPipe => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("pftrack-loggen: {e}");
            ExitCode::FAILURE
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(s: &str) -> Vec<String> {
        s.split_whitespace().map(str::to_owned).collect()
    }

    #[test]
    fn parses_all_options() {
        let cfg = parse_args(&args(
            "--seed 7 --lines 123 --format rfc3339 --start 2025-12-31T23:00:00 \
             --hosts mx1,mx2 --rate 2.5 --utc-offset -05:30 --lifetime 60 --qid-space 99",
        ))
        .unwrap();
        assert_eq!(cfg.seed, 7);
        assert_eq!(cfg.lines, 123);
        assert_eq!(cfg.format, StampFormat::Rfc3339);
        assert_eq!(cfg.start.to_string(), "2025-12-31 23:00:00");
        assert_eq!(cfg.hosts, ["mx1", "mx2"]);
        assert_eq!(cfg.messages_per_second, 2.5);
        assert_eq!(cfg.utc_offset_seconds, -(5 * 3600 + 30 * 60));
        assert_eq!(cfg.queue_lifetime_secs, 60);
        assert_eq!(cfg.queue_id_space, 99);
    }

    #[test]
    fn rejects_bad_input() {
        assert!(parse_args(&args("--format syslog")).is_err());
        assert!(parse_args(&args("--lines")).is_err());
        assert!(parse_args(&args("--bogus 1")).is_err());
        assert!(parse_args(&args("--start yesterday")).is_err());
        assert!(parse_args(&args("--utc-offset 0100")).is_err());
    }

    #[test]
    fn parses_fleet_options() {
        assert!(parse_fleet_args(&args("--lines 5")).unwrap().is_none());
        let f = parse_fleet_args(&args("--fleet 20 --out-dir /tmp/x --messages 99 --seed 3"))
            .unwrap()
            .unwrap();
        assert_eq!(f.config.hosts, 20);
        assert_eq!(f.config.messages, 99);
        assert_eq!(f.out_dir, std::path::PathBuf::from("/tmp/x"));
        assert!(parse_fleet_args(&args("--fleet 20")).is_err());
        assert!(parse_fleet_args(&args("--fleet 2 --out-dir /tmp/x")).is_err());
        assert!(parse_fleet_args(&args("--fleet 20 --out-dir /tmp/x --lifetime 5")).is_err());
    }
}
