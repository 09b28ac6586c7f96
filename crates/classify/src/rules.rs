//! The rules file: YAML with locations kept, validated rule by rule into [`Rule`]s.
//!
//! ```yaml
//! rules:
//!   - name: acme-quota            # unique in the file; shown in every verdict
//!     reason: mailboxfull         # one of the 34 reason names
//!     hard: false                 # optional; only used when the text has no DSN
//!     dsn: "5.2."                 # exact "5.2.2", prefix "5.2." or regex "^5\.2\.[12]$"
//!     code: 552                   # reply code: 552, "55x", or a list
//!     text: 'storage (quota|limit) reached'   # regex, case-insensitive
//!     relay: '\.acme\.example$'   # regex on the relay host, case-insensitive
//!     status: [bounced, deferred] # Postfix status words
//! ```
//!
//! A rule matches when every matcher it has matches (a list matches when any of its
//! items does). A rule needs at least one matcher.

use std::collections::HashSet;
use std::fmt;
use std::sync::Arc;

use regex::bytes::{Regex, RegexBuilder};
use serde::Deserialize;
use serde_saphyr::Spanned;

use crate::{LoadError, Reason};

/// Compiled size limit of one rule's regex (bytes of the compiled program).
pub(crate) const REGEX_SIZE_LIMIT: usize = 1 << 20;
/// Longest accepted rules file, in bytes: a rules file is written by hand.
pub const MAX_RULES_FILE_BYTES: usize = 4 << 20;
/// Most rules one file may hold.
pub const MAX_RULES_PER_FILE: usize = 10_000;

/// The Postfix status words a rule may name in `status:`. `rejected` is pftrack's word
/// for NOQUEUE / smtpd / cleanup / milter rejects.
pub const STATUSES: [&str; 7] = [
    "sent",
    "deferred",
    "bounced",
    "expired",
    "rejected",
    "undeliverable",
    "deliverable",
];

/// Names the rule that decided a verdict: where it was written and its name.
///
/// Cheap to clone (one reference count). Displays as `source:line:name` for rules
/// read from a file, `source:name` for rules written in code (`postfix:connect-refused`),
/// and `fallback` when no rule matched.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct RuleId(Arc<RuleIdInner>);

#[derive(PartialEq, Eq, Hash)]
struct RuleIdInner {
    source: Box<str>,
    line: u32,
    name: Box<str>,
    display: Box<str>,
}

impl RuleId {
    /// A rule id. `line` 0 means "written in code".
    pub fn new(source: &str, line: u32, name: &str) -> RuleId {
        let display = match (source.is_empty(), line) {
            (true, _) => name.to_owned(),
            (false, 0) => format!("{source}:{name}"),
            (false, _) => format!("{source}:{line}:{name}"),
        };
        RuleId(Arc::new(RuleIdInner {
            source: source.into(),
            line,
            name: name.into(),
            display: display.into(),
        }))
    }

    /// Where the rule was written: `builtin`, `postfix` (code), a file path, or empty
    /// for the fallback.
    pub fn source(&self) -> &str {
        &self.0.source
    }

    /// Line of the rule in its source (1-based); 0 for rules written in code.
    pub fn line(&self) -> u32 {
        self.0.line
    }

    /// The rule's name.
    pub fn name(&self) -> &str {
        &self.0.name
    }

    /// The display form, without allocating.
    pub fn as_str(&self) -> &str {
        &self.0.display
    }
}

impl fmt::Display for RuleId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl fmt::Debug for RuleId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "RuleId({})", self.as_str())
    }
}

impl serde::Serialize for RuleId {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

/// A DSN matcher.
#[derive(Debug, Clone)]
pub(crate) enum DsnMatch {
    /// `5.1.1`: the whole code.
    Exact(Box<str>),
    /// `5.1.`: a class or class.subject prefix.
    Prefix(Box<str>),
    /// `^5\.7\.(2[0-7])$`: a regex, written with a leading `^`.
    Regex(Regex),
}

impl DsnMatch {
    pub(crate) fn matches(&self, dsn: &str) -> bool {
        match self {
            DsnMatch::Exact(d) => **d == *dsn,
            DsnMatch::Prefix(p) => dsn.starts_with(&**p),
            DsnMatch::Regex(r) => r.is_match(dsn.as_bytes()),
        }
    }
}

/// A reply-code matcher: three characters, digits or `x` for any digit.
#[derive(Debug, Clone, Copy)]
pub(crate) struct CodeMatch([u8; 3]);

impl CodeMatch {
    pub(crate) fn matches(self, code: u16) -> bool {
        let digits = [
            b'0' + (code / 100 % 10) as u8,
            b'0' + (code / 10 % 10) as u8,
            b'0' + (code % 10) as u8,
        ];
        self.0
            .iter()
            .zip(digits)
            .all(|(&want, got)| want == b'x' || want == got)
    }
}

/// One validated rule, before its text regex joins the set.
#[derive(Debug, Clone)]
pub(crate) struct Rule {
    pub(crate) id: RuleId,
    pub(crate) reason: Reason,
    pub(crate) hard: Option<bool>,
    pub(crate) dsn: Vec<DsnMatch>,
    pub(crate) code: Vec<CodeMatch>,
    pub(crate) status: Vec<Box<str>>,
    /// The text regex as written; compiled into the set by the builder.
    pub(crate) text: Option<String>,
    pub(crate) relay: Option<Regex>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct FileSpec {
    rules: Vec<Spanned<RuleSpec>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RuleSpec {
    name: Spanned<String>,
    reason: Spanned<String>,
    #[serde(default)]
    hard: Option<bool>,
    #[serde(default)]
    dsn: Option<Spanned<OneOrMany<String>>>,
    #[serde(default)]
    code: Option<Spanned<OneOrMany<CodeSpec>>>,
    #[serde(default)]
    text: Option<Spanned<String>>,
    #[serde(default)]
    relay: Option<Spanned<String>>,
    #[serde(default)]
    status: Option<Spanned<OneOrMany<String>>>,
}

#[derive(Deserialize)]
#[serde(untagged)]
enum OneOrMany<T> {
    One(T),
    Many(Vec<T>),
}

impl<T> OneOrMany<T> {
    fn into_vec(self) -> Vec<T> {
        match self {
            OneOrMany::One(t) => vec![t],
            OneOrMany::Many(v) => v,
        }
    }
}

#[derive(Deserialize)]
#[serde(untagged)]
enum CodeSpec {
    Number(u16),
    Pattern(String),
}

/// The regex options every rule regex is compiled with, alone and in the set: ASCII
/// case-insensitive, byte-oriented. Unicode classes are off because they multiply
/// the DFA's states for no gain on SMTP replies (which are ASCII by RFC 5321); a
/// non-ASCII literal in a pattern still matches its UTF-8 bytes.
pub(crate) fn regex_builder(pattern: &str) -> RegexBuilder {
    let mut b = RegexBuilder::new(pattern);
    b.case_insensitive(true)
        .unicode(false)
        .size_limit(REGEX_SIZE_LIMIT);
    b
}

/// Parse and validate a rules file. `source` names it in rule ids and errors.
pub(crate) fn parse(source: &str, yaml: &str) -> Result<Vec<Rule>, LoadError> {
    if yaml.len() > MAX_RULES_FILE_BYTES {
        return Err(LoadError::Invalid {
            file: source.to_owned(),
            line: 1,
            column: 1,
            rule: String::new(),
            message: format!("file is larger than {MAX_RULES_FILE_BYTES} bytes"),
        });
    }
    let spec: FileSpec = serde_saphyr::from_str(yaml).map_err(|e| {
        let (line, column) = e
            .location()
            .map_or((0, 0), |l| (l.line() as u32, l.column() as u32));
        LoadError::Yaml {
            file: source.to_owned(),
            line,
            column,
            message: yaml_message(&e),
        }
    })?;
    if spec.rules.len() > MAX_RULES_PER_FILE {
        return Err(LoadError::Invalid {
            file: source.to_owned(),
            line: 1,
            column: 1,
            rule: String::new(),
            message: format!("more than {MAX_RULES_PER_FILE} rules"),
        });
    }
    let mut names = HashSet::new();
    let mut out = Vec::with_capacity(spec.rules.len());
    for spanned in spec.rules {
        let line = spanned.referenced.line() as u32;
        let column = spanned.referenced.column() as u32;
        let r = spanned.value;
        let name = r.name.value.trim().to_owned();
        let err = |at: Option<(u64, u64)>, message: String| {
            let (l, c) = at.map_or((line, column), |(l, c)| (l as u32, c as u32));
            LoadError::Invalid {
                file: source.to_owned(),
                line: l,
                column: c,
                rule: name.clone(),
                message,
            }
        };
        let at = |s: &serde_saphyr::Location| Some((s.line(), s.column()));
        if name.is_empty() {
            return Err(err(at(&r.name.referenced), "empty rule name".into()));
        }
        if !names.insert(name.clone()) {
            return Err(err(
                at(&r.name.referenced),
                format!("duplicate rule name {name:?}"),
            ));
        }
        let reason: Reason = r
            .reason
            .value
            .parse()
            .map_err(|e| err(at(&r.reason.referenced), format!("{e}")))?;
        let mut dsn = Vec::new();
        if let Some(d) = r.dsn {
            for item in d.value.into_vec() {
                dsn.push(parse_dsn(&item).map_err(|m| err(at(&d.referenced), m))?);
            }
        }
        let mut code = Vec::new();
        if let Some(c) = r.code {
            for item in c.value.into_vec() {
                code.push(parse_code(&item).map_err(|m| err(at(&c.referenced), m))?);
            }
        }
        let mut status = Vec::new();
        if let Some(s) = r.status {
            for item in s.value.into_vec() {
                if !STATUSES.contains(&item.as_str()) {
                    return Err(err(
                        at(&s.referenced),
                        format!(
                            "unknown status {item:?} (expected one of {})",
                            STATUSES.join(", ")
                        ),
                    ));
                }
                status.push(item.into_boxed_str());
            }
        }
        let text = match r.text {
            Some(t) => {
                regex_builder(&t.value)
                    .build()
                    .map_err(|e| err(at(&t.referenced), format!("invalid text regex: {e}")))?;
                Some(t.value)
            }
            None => None,
        };
        let relay = match r.relay {
            Some(t) => Some(
                regex_builder(&t.value)
                    .build()
                    .map_err(|e| err(at(&t.referenced), format!("invalid relay regex: {e}")))?,
            ),
            None => None,
        };
        if dsn.is_empty()
            && code.is_empty()
            && status.is_empty()
            && text.is_none()
            && relay.is_none()
        {
            return Err(err(
                None,
                "a rule needs at least one matcher (dsn, code, text, relay or status)".into(),
            ));
        }
        out.push(Rule {
            id: RuleId::new(source, line, &name),
            reason,
            hard: r.hard,
            dsn,
            code,
            status,
            text,
            relay,
        });
    }
    Ok(out)
}

/// The YAML error's message without the location and snippet (we report those as
/// fields of [`LoadError`]).
fn yaml_message(e: &serde_saphyr::Error) -> String {
    let full = e.to_string();
    // serde-saphyr appends " at line L column C" and may add a source snippet below;
    // keep the first line and drop that suffix.
    let first = full.lines().next().unwrap_or("").trim();
    match first.find(" at line ") {
        Some(i) => first[..i].to_owned(),
        None => first.to_owned(),
    }
}

fn parse_dsn(s: &str) -> Result<DsnMatch, String> {
    let s = s.trim();
    if s.starts_with('^') {
        return regex_builder(s)
            .build()
            .map(DsnMatch::Regex)
            .map_err(|e| format!("invalid dsn regex: {e}"));
    }
    let parts: Vec<&str> = s.split('.').collect();
    let numeric = |p: &str| !p.is_empty() && p.len() <= 3 && p.bytes().all(|b| b.is_ascii_digit());
    let class_ok = parts.first().is_some_and(|c| matches!(*c, "2" | "4" | "5"));
    match parts.as_slice() {
        [_, rest @ .., ""] if class_ok && rest.len() <= 1 && rest.iter().all(|p| numeric(p)) => {
            Ok(DsnMatch::Prefix(s.into()))
        }
        [_, a, b] if class_ok && numeric(a) && numeric(b) => Ok(DsnMatch::Exact(s.into())),
        _ => Err(format!(
            "invalid dsn {s:?}: expected X.Y.Z (5.1.1), a prefix ending in '.' (5.1.), \
             or a regex starting with '^'"
        )),
    }
}

fn parse_code(c: &CodeSpec) -> Result<CodeMatch, String> {
    let s = match c {
        CodeSpec::Number(n) => n.to_string(),
        CodeSpec::Pattern(p) => p.trim().to_ascii_lowercase(),
    };
    let b = s.as_bytes();
    let ok = b.len() == 3
        && matches!(b[0], b'2'..=b'5')
        && b[1..].iter().all(|&x| x.is_ascii_digit() || x == b'x');
    if ok {
        Ok(CodeMatch([b[0], b[1], b[2]]))
    } else {
        Err(format!(
            "invalid reply code {s:?}: expected three digits (550) or a pattern (55x, 4xx)"
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_all_matchers() {
        let yaml = "rules:\n  - name: a\n    reason: mailboxfull\n    hard: false\n    dsn: [\"5.2.\", \"4.2.2\", '^5\\.7\\.2[0-7]$']\n    code: [552, 45x]\n    text: 'quota'\n    relay: 'example$'\n    status: bounced\n";
        let rules = parse("u.yaml", yaml).unwrap();
        assert_eq!(rules.len(), 1);
        let r = &rules[0];
        assert_eq!(r.id.to_string(), "u.yaml:2:a");
        assert_eq!(r.reason, Reason::MailboxFull);
        assert_eq!(r.hard, Some(false));
        assert!(r.dsn[0].matches("5.2.2") && !r.dsn[0].matches("5.1.1"));
        assert!(r.dsn[1].matches("4.2.2") && !r.dsn[1].matches("4.2.20"));
        assert!(r.dsn[2].matches("5.7.26") && !r.dsn[2].matches("5.7.1"));
        assert!(r.code[0].matches(552) && !r.code[0].matches(550));
        assert!(r.code[1].matches(452) && !r.code[1].matches(552));
        assert_eq!(&*r.status[0], "bounced");
    }

    fn err(yaml: &str) -> LoadError {
        parse("r.yaml", yaml).unwrap_err()
    }

    #[test]
    fn unknown_reason_names_its_line() {
        let e = err(
            "rules:\n  - name: a\n    reason: userunknown\n    text: x\n  - name: b\n    reason: mailboxful\n    text: y\n",
        );
        assert_eq!((e.file(), e.line()), ("r.yaml", 6), "{e}");
        assert!(e.to_string().contains("mailboxful"), "{e}");
        assert!(e.to_string().starts_with("r.yaml:6:"), "{e}");
    }

    #[test]
    fn invalid_regex_names_its_line_and_column() {
        let e = err("rules:\n  - name: a\n    reason: userunknown\n    text: 'user (unknown'\n");
        assert_eq!((e.line(), e.column()), (4, 11), "{e}");
        assert!(e.to_string().contains("invalid text regex"), "{e}");
    }

    #[test]
    fn unknown_key_is_an_error() {
        let e = err("rules:\n  - name: a\n    reason: userunknown\n    txt: x\n");
        assert!(matches!(e, LoadError::Yaml { .. }), "{e}");
        assert_eq!(e.line(), 4, "{e}");
        assert!(e.to_string().contains("txt"), "{e}");
    }

    #[test]
    fn bad_matchers_are_errors() {
        for (yaml, what) in [
            ("dsn: '5.1'", "invalid dsn"),
            ("dsn: '7.1.1'", "invalid dsn"),
            ("code: 650", "invalid reply code"),
            ("code: '5x'", "invalid reply code"),
            ("status: bounce", "unknown status"),
            ("relay: '('", "invalid relay regex"),
        ] {
            let e = err(&format!(
                "rules:\n  - name: a\n    reason: blocked\n    {yaml}\n"
            ));
            assert!(e.to_string().contains(what), "{yaml}: {e}");
            assert_eq!(e.line(), 4, "{yaml}: {e}");
        }
    }

    #[test]
    fn a_rule_needs_a_matcher_and_a_unique_name() {
        let e = err("rules:\n  - name: a\n    reason: blocked\n");
        assert!(e.to_string().contains("at least one matcher"), "{e}");
        let e = err(
            "rules:\n  - name: a\n    reason: blocked\n    code: 550\n  - name: a\n    reason: blocked\n    code: 554\n",
        );
        assert!(e.to_string().contains("duplicate"), "{e}");
        assert_eq!(e.line(), 5);
    }

    #[test]
    fn syntax_errors_carry_a_location() {
        let e = err("rules:\n  - name: a\n    reason: [\n");
        assert!(e.line() >= 3, "{e}");
    }
}
