//! `pftrack classify`: the failure classifier from the command line.
//!
//! - `--dsn 5.1.1 --text '…' [--status bounced] [--relay …]`: one JSON object;
//! - `--jsonl`: one JSON object per stdin line (`{"status":…,"dsn":…,"text":…}`, `relay`
//!   optional) → the same object, every input field kept byte for byte, plus `reason`,
//!   `hard` and `rule`; a bad line gives `{"error":…,"line":N}` and the stream goes on;
//! - `--check FILE`: validate a rules file, print `OK` or `FILE:LINE:COL: error` (exit 1).
//!
//! User rules come from `--rules FILE` (repeatable, first has precedence) and then from
//! `classify.rules` in the configuration file.

use std::borrow::Cow;
use std::io::{BufRead, BufReader, BufWriter, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{Context, bail};
use pftrack_classify::{Classifier, Input, Verdict};
use serde::de::IgnoredAny;
use serde::{Deserialize, Serialize};

use crate::config::Config;

/// Input buffer of `--jsonl` (bytes).
const READ_BUFFER: usize = 256 * 1024;
/// Output buffer of `--jsonl` (bytes).
const WRITE_BUFFER: usize = 256 * 1024;
/// Longest input line echoed into an error object, in characters.
const ERROR_EXCERPT_CHARS: usize = 80;

/// Arguments of `pftrack classify`.
#[derive(Debug, clap::Args)]
pub struct ClassifyArgs {
    /// Enhanced status code Postfix logged (dsn=…).
    #[arg(long)]
    dsn: Option<String>,
    /// The failure text (inside status=…(…), or a reject's text).
    #[arg(long, required_unless_present_any = ["jsonl", "check"])]
    text: Option<String>,
    /// Postfix status (sent, deferred, bounced, expired, rejected); default: from the
    /// DSN class (2 sent, 4 deferred, else bounced).
    #[arg(long)]
    status: Option<String>,
    /// Relay host (`mx.example.com[192.0.2.1]:25` or the name alone).
    #[arg(long)]
    relay: Option<String>,
    /// Read JSON objects from stdin, one per line, and write each back with
    /// reason, hard and rule added.
    #[arg(long, conflicts_with_all = ["text", "dsn", "status", "relay", "check"])]
    jsonl: bool,
    /// A user rules file (YAML); may be repeated, the first has precedence. Rules of
    /// `classify.rules` in the configuration come after these.
    #[arg(long, value_name = "FILE")]
    rules: Vec<PathBuf>,
    /// Validate a rules file: print OK, or the error with file:line:column (exit 1).
    #[arg(long, value_name = "FILE", conflicts_with_all = ["text", "jsonl", "rules"])]
    check: Option<PathBuf>,
}

/// Run the command.
pub fn run(args: &ClassifyArgs, config: &Config) -> anyhow::Result<ExitCode> {
    if let Some(path) = &args.check {
        return Ok(check(path));
    }
    let mut files: Vec<&Path> = args.rules.iter().map(PathBuf::as_path).collect();
    if let Some(p) = config.classify.rules.as_deref() {
        files.push(p);
    }
    let classifier = build(&files)?;
    if args.jsonl {
        let stdin = std::io::stdin().lock();
        let stdout = std::io::stdout().lock();
        stream(
            &classifier,
            BufReader::with_capacity(READ_BUFFER, stdin),
            stdout,
        )?;
        return Ok(ExitCode::SUCCESS);
    }
    let Some(text) = args.text.as_deref() else {
        bail!("--text is required (or --jsonl, or --check FILE)");
    };
    let status = args.status.as_deref().unwrap_or(match args.dsn.as_deref() {
        Some(d) if d.starts_with('2') => "sent",
        Some(d) if d.starts_with('4') => "deferred",
        _ => "bounced",
    });
    let verdict = classifier.classify(&Input {
        status,
        dsn: args.dsn.as_deref(),
        text,
        relay: args.relay.as_deref(),
        ..Input::default()
    });
    let obj = OneAnswer {
        status,
        dsn: args.dsn.as_deref(),
        text,
        relay: args.relay.as_deref(),
        verdict: &verdict,
    };
    let mut out = std::io::stdout().lock();
    serde_json::to_writer(&mut out, &obj)?;
    out.write_all(b"\n")?;
    Ok(ExitCode::SUCCESS)
}

/// The answer for one text: the input, then the verdict.
#[derive(Serialize)]
struct OneAnswer<'a> {
    status: &'a str,
    dsn: Option<&'a str>,
    text: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    relay: Option<&'a str>,
    #[serde(flatten)]
    verdict: &'a Verdict,
}

/// The classifier with the user rules of `files` (in precedence order).
pub fn build(files: &[&Path]) -> anyhow::Result<Classifier> {
    let mut builder = Classifier::builder();
    for path in files {
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("cannot read the rules file {}", path.display()))?;
        builder.add_rules(&path.display().to_string(), &text)?;
    }
    Ok(builder.build()?)
}

fn check(path: &Path) -> ExitCode {
    match build(&[path]) {
        Ok(c) => {
            let (user, _) = c.rule_counts();
            println!("OK");
            eprintln!("{}: {user} rule(s)", path.display());
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("{e:#}");
            ExitCode::from(1)
        }
    }
}

/// The fields of an input line we read; every other field is kept as written.
#[derive(Deserialize)]
struct Line<'a> {
    #[serde(borrow, default)]
    status: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    dsn: Option<Cow<'a, str>>,
    #[serde(borrow)]
    text: Cow<'a, str>,
    #[serde(borrow, default)]
    relay: Option<Cow<'a, str>>,
    #[serde(default)]
    code: Option<u16>,
    // Present in the input? Then the output is rebuilt rather than appended to, so that
    // no key appears twice.
    #[serde(default)]
    reason: Option<IgnoredAny>,
    #[serde(default)]
    hard: Option<IgnoredAny>,
    #[serde(default)]
    rule: Option<IgnoredAny>,
}

/// Classify a JSONL stream. Only I/O errors stop it.
pub fn stream(
    classifier: &Classifier,
    mut input: impl BufRead,
    output: impl Write,
) -> anyhow::Result<()> {
    let mut out = BufWriter::with_capacity(WRITE_BUFFER, output);
    let mut buf = Vec::new();
    let mut scratch = Vec::new();
    let mut n: u64 = 0;
    loop {
        buf.clear();
        if input.read_until(b'\n', &mut buf)? == 0 {
            break;
        }
        n += 1;
        let line = trim_ascii_end(&buf);
        if line.iter().all(u8::is_ascii_whitespace) {
            continue;
        }
        match serde_json::from_slice::<Line<'_>>(line) {
            Ok(l) => {
                let verdict = classifier.classify_with(
                    &Input {
                        status: l.status.as_deref().unwrap_or(""),
                        dsn: l.dsn.as_deref(),
                        code: l.code,
                        text: &l.text,
                        relay: l.relay.as_deref(),
                        ..Input::default()
                    },
                    &mut scratch,
                );
                if l.reason.is_some() || l.hard.is_some() || l.rule.is_some() {
                    rebuild(line, &verdict, &mut out)?;
                } else {
                    append(line, &verdict, &mut out)?;
                }
            }
            Err(e) => {
                let excerpt: String = String::from_utf8_lossy(line)
                    .chars()
                    .take(ERROR_EXCERPT_CHARS)
                    .collect();
                serde_json::to_writer(
                    &mut out,
                    &serde_json::json!({
                        "error": format!("{e}"),
                        "line": n,
                        "input": excerpt,
                    }),
                )?;
                out.write_all(b"\n")?;
            }
        }
    }
    out.flush()?;
    Ok(())
}

fn trim_ascii_end(b: &[u8]) -> &[u8] {
    let mut end = b.len();
    while end > 0 && b[end - 1].is_ascii_whitespace() {
        end -= 1;
    }
    &b[..end]
}

/// The input object with the verdict's fields appended before its closing brace.
fn append(line: &[u8], v: &Verdict, out: &mut impl Write) -> std::io::Result<()> {
    // The line parsed as an object, so after trimming it ends with '}'.
    let body = &line[..line.len() - 1];
    let empty = trim_ascii_end(body).ends_with(b"{");
    out.write_all(body)?;
    out.write_all(if empty {
        b"\"reason\":\""
    } else {
        b",\"reason\":\""
    })?;
    out.write_all(v.reason.as_str().as_bytes())?;
    out.write_all(match v.hard {
        Some(true) => b"\",\"hard\":true,\"rule\":",
        Some(false) => b"\",\"hard\":false,\"rule\":",
        None => b"\",\"hard\":null,\"rule\":",
    })?;
    serde_json::to_writer(&mut *out, v.rule.as_str())?;
    out.write_all(b"}\n")
}

/// The input object re-serialised with the verdict's fields replacing any of the same
/// name.
fn rebuild(line: &[u8], v: &Verdict, out: &mut impl Write) -> anyhow::Result<()> {
    let mut obj: serde_json::Map<String, serde_json::Value> = serde_json::from_slice(line)?;
    obj.insert("reason".into(), v.reason.as_str().into());
    obj.insert("hard".into(), v.hard.into());
    obj.insert("rule".into(), v.rule.as_str().into());
    serde_json::to_writer(&mut *out, &obj)?;
    out.write_all(b"\n")?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run_stream(input: &str) -> String {
        let c = Classifier::builder().build().unwrap();
        let mut out = Vec::new();
        stream(&c, input.as_bytes(), &mut out).unwrap();
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn fields_are_kept_and_verdict_appended() {
        let out = run_stream(
            "{\"id\":7,\"status\":\"deferred\",\"dsn\":\"4.4.1\",\"text\":\"connect to a[192.0.2.1]:25: Connection refused\"}\n",
        );
        let v: serde_json::Value = serde_json::from_str(out.trim()).unwrap();
        assert_eq!(v["id"], 7);
        assert_eq!(v["reason"], "networkerror");
        assert_eq!(v["hard"], false);
        assert_eq!(v["rule"], "postfix:connect-refused");
    }

    #[test]
    fn bad_lines_give_error_objects_and_the_stream_goes_on() {
        let out = run_stream(
            "not json\n\n{\"status\":\"bounced\"}\n{\"status\":\"bounced\",\"dsn\":null,\"text\":\"550 5.1.1 User unknown\"}\n",
        );
        let lines: Vec<serde_json::Value> = out
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
        assert_eq!(lines.len(), 3);
        assert_eq!(lines[0]["line"], 1);
        assert!(lines[0]["error"].is_string());
        assert_eq!(lines[1]["line"], 3);
        assert_eq!(lines[2]["reason"], "userunknown");
    }

    #[test]
    fn existing_verdict_fields_are_replaced() {
        let out = run_stream("{\"text\":\"550 5.1.1 User unknown\",\"reason\":\"x\"}\n");
        assert_eq!(out.matches("\"reason\"").count(), 1, "{out}");
        assert!(out.contains("\"reason\":\"userunknown\""), "{out}");
    }
}
