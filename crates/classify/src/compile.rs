//! Building a [`Classifier`]: user rules, then built-ins; each regex is checked alone
//! when its file is parsed, then all of one layer go into one `RegexSet`.

use regex::bytes::{RegexSet, RegexSetBuilder};

use crate::builtin::{
    self, BUILTIN_RULES, BUILTIN_SOURCE, POSTFIX_RULES, POSTFIX_SOURCE, STATUS_EXPIRED, STATUS_SENT,
};
use crate::rules::{self, REGEX_SIZE_LIMIT, Rule};
use crate::{Input, LoadError, Origin, Reason, RuleId, Verdict};

/// Size limit of one layer's compiled regex set. Generous: the built-in set is about
/// a tenth of it, and the limit only guards against a pathological user file.
const SET_SIZE_LIMIT: usize = 64 * REGEX_SIZE_LIMIT;
/// Cache of the set's lazy DFA, per search thread. The default (2 MiB) thrashes with
/// a few hundred case-insensitive patterns; a DFA that fits keeps matching at a few
/// nanoseconds per byte.
const SET_DFA_SIZE_LIMIT: usize = 32 << 20;
/// Longest text prefix the rules see. SMTP replies are short; multi-line bounces
/// pasted into a log can be long, and the interesting part is at the start.
pub const MAX_TEXT_BYTES: usize = 4096;

/// Collects rules files; [`ClassifierBuilder::build`] compiles them.
#[derive(Debug, Default)]
pub struct ClassifierBuilder {
    user: Vec<Rule>,
    without_builtin: bool,
}

impl ClassifierBuilder {
    /// Add a user rules file (YAML text). `source` names it in rule ids and errors,
    /// usually the path. Files added earlier take precedence. On error nothing of the
    /// file is added.
    pub fn add_rules(&mut self, source: &str, yaml: &str) -> Result<&mut Self, LoadError> {
        let mut parsed = rules::parse(source, yaml)?;
        self.user.append(&mut parsed);
        Ok(self)
    }

    /// Leave out the built-in rules (the Postfix wordings in code stay): for testing a
    /// rules file on its own.
    pub fn without_builtin_rules(&mut self) -> &mut Self {
        self.without_builtin = true;
        self
    }

    /// Compile. Fails only when the regexes together exceed the size limit.
    pub fn build(&self) -> Result<Classifier, LoadError> {
        let user = RuleSet::new(self.user.clone(), "user rules")?;
        let builtin_rules = if self.without_builtin {
            Vec::new()
        } else {
            rules::parse(BUILTIN_SOURCE, BUILTIN_RULES)?
        };
        let builtin = RuleSet::new(builtin_rules, BUILTIN_SOURCE)?;
        Ok(Classifier {
            user,
            builtin,
            postfix: POSTFIX_RULES
                .iter()
                .map(|(name, _)| RuleId::new(POSTFIX_SOURCE, 0, name))
                .collect(),
            fallback: RuleId::new("", 0, "fallback"),
        })
    }
}

/// The compiled classifier. Immutable and `Send + Sync`: share it in an `Arc` and
/// swap the `Arc` to reload.
#[derive(Debug)]
pub struct Classifier {
    user: RuleSet,
    builtin: RuleSet,
    postfix: Vec<RuleId>,
    fallback: RuleId,
}

/// One layer of rules with their text regexes in one set.
#[derive(Debug)]
struct RuleSet {
    rules: Vec<Rule>,
    /// Per rule: its pattern number in `set`, if it has a text regex.
    text_index: Vec<Option<usize>>,
    set: RegexSet,
}

impl RuleSet {
    fn new(rules: Vec<Rule>, what: &str) -> Result<RuleSet, LoadError> {
        let mut text_index = Vec::with_capacity(rules.len());
        let mut patterns = Vec::new();
        for r in &rules {
            text_index.push(r.text.as_ref().map(|t| {
                patterns.push(t.as_str());
                patterns.len() - 1
            }));
        }
        let set = RegexSetBuilder::new(&patterns)
            .case_insensitive(true)
            .unicode(false)
            .size_limit(SET_SIZE_LIMIT)
            .dfa_size_limit(SET_DFA_SIZE_LIMIT)
            .build()
            .map_err(|e| LoadError::TooLarge {
                file: what.to_owned(),
                message: e.to_string(),
            })?;
        Ok(RuleSet {
            rules,
            text_index,
            set,
        })
    }

    /// The first rule whose matchers all pass.
    fn first(&self, facts: &Facts<'_>, scratch: &mut Vec<bool>) -> Option<&Rule> {
        if self.rules.is_empty() {
            return None;
        }
        scratch.clear();
        scratch.resize(self.set.len(), false);
        let any = !self.set.is_empty()
            && self
                .set
                .matches_read_at(scratch, facts.text, facts.rules_start);
        self.rules
            .iter()
            .zip(&self.text_index)
            .find(|(rule, idx)| {
                match idx {
                    Some(i) if !any || !scratch[*i] => return false,
                    _ => {}
                }
                facts.structured_match(rule)
            })
            .map(|(rule, _)| rule)
    }
}

/// What the rules look at, taken from the input once.
struct Facts<'a> {
    status: &'a str,
    /// Postfix's DSN, else one found in the text.
    dsn: Option<&'a str>,
    code: Option<u16>,
    relay: Option<&'a str>,
    text: &'a [u8],
    /// Where text regexes start looking: past `host NAME[ADDR]`, so that a host name
    /// (`spam-gw.example.net`) never reads as part of the reply.
    rules_start: usize,
}

impl Facts<'_> {
    fn structured_match(&self, rule: &Rule) -> bool {
        (rule.status.is_empty() || rule.status.iter().any(|s| **s == *self.status))
            && (rule.dsn.is_empty()
                || self
                    .dsn
                    .is_some_and(|d| rule.dsn.iter().any(|m| m.matches(d))))
            && (rule.code.is_empty()
                || self
                    .code
                    .is_some_and(|c| rule.code.iter().any(|m| m.matches(c))))
            && rule
                .relay
                .as_ref()
                .is_none_or(|re| self.relay.is_some_and(|host| re.is_match(host.as_bytes())))
    }
}

impl Classifier {
    /// A builder; `Classifier::builder().build()` gives the built-in rules only.
    pub fn builder() -> ClassifierBuilder {
        ClassifierBuilder::default()
    }

    /// Classify one input.
    pub fn classify(&self, input: &Input<'_>) -> Verdict {
        let mut scratch = Vec::new();
        self.classify_with(input, &mut scratch)
    }

    /// Classify one input, reusing `scratch` between calls (no allocation per call).
    pub fn classify_with(&self, input: &Input<'_>, scratch: &mut Vec<bool>) -> Verdict {
        let text = truncate(input.text, MAX_TEXT_BYTES);
        let quoted = builtin::quoted_reply(text);
        let reply = quoted.as_ref().map_or(text, |q| &text[q.reply..]);
        let postfix_dsn = input.dsn.filter(|d| !d.is_empty());
        // Only looked for when Postfix logged none: it is then the best evidence.
        let text_dsn = if postfix_dsn.is_none() {
            find_dsn(reply)
        } else {
            None
        };
        let facts = Facts {
            status: input.status,
            dsn: postfix_dsn.or(text_dsn),
            code: input.code.or_else(|| reply_code(reply)),
            relay: input
                .relay
                .map(host_of)
                .or(quoted.as_ref().map(|q| q.host))
                .filter(|h| !h.is_empty()),
            text: text.as_bytes(),
            rules_start: quoted.as_ref().map_or(0, |q| q.marker),
        };
        let decided = |reason: Reason, rule: &RuleId, over: Option<bool>| Verdict {
            reason,
            hard: hardness(reason, input, over, text_dsn, facts.code),
            rule: rule.clone(),
        };
        if let Some(rule) = self.user.first(&facts, scratch) {
            return decided(rule.reason, &rule.id, rule.hard);
        }
        let status_rule = match input.status {
            "sent" | "deliverable" => Some(STATUS_SENT),
            "expired" => Some(STATUS_EXPIRED),
            _ => None,
        };
        let own = || match input.origin {
            Origin::Remote => None,
            Origin::Postfix => builtin::postfix_own(text),
            Origin::Unknown if builtin::looks_remote(text, quoted.as_ref()) => None,
            Origin::Unknown => builtin::postfix_own(text),
        };
        if let Some(i) = status_rule.or_else(own) {
            return decided(POSTFIX_RULES[i].1, &self.postfix[i], None);
        }
        if let Some(rule) = self.builtin.first(&facts, scratch) {
            return decided(rule.reason, &rule.id, rule.hard);
        }
        let reason = if text.trim().is_empty() {
            Reason::Undefined
        } else {
            Reason::OnHold
        };
        decided(reason, &self.fallback, None)
    }

    /// Number of user rules and built-in rules.
    pub fn rule_counts(&self) -> (usize, usize) {
        (self.user.rules.len(), self.builtin.rules.len())
    }
}

/// Hard/soft: Postfix's DSN class, else the rule's override, else the class of a DSN
/// or reply code in the text, else the status.
fn hardness(
    reason: Reason,
    input: &Input<'_>,
    rule_hard: Option<bool>,
    text_dsn: Option<&str>,
    code: Option<u16>,
) -> Option<bool> {
    if !reason.is_failure() {
        return None;
    }
    let class = |first: Option<u8>| match first {
        Some(b'5') => Some(Some(true)),
        Some(b'4') => Some(Some(false)),
        Some(b'2') => Some(None),
        _ => None,
    };
    if let Some(h) = class(input.dsn.and_then(|d| d.bytes().next())) {
        return h;
    }
    if rule_hard.is_some() {
        return rule_hard;
    }
    if let Some(h) = class(text_dsn.and_then(|d| d.bytes().next()))
        .or_else(|| class(code.map(|c| b'0' + (c / 100 % 10) as u8)))
    {
        return h;
    }
    match input.status {
        "bounced" | "rejected" | "expired" | "undeliverable" => Some(true),
        "deferred" => Some(false),
        _ => None,
    }
}

/// At most `max` bytes of `s`, cut at a character boundary.
fn truncate(s: &str, max: usize) -> &str {
    if s.len() <= max {
        return s;
    }
    let mut end = max;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    &s[..end]
}

/// The host part of a relay: `mx.example.com[192.0.2.1]:25` → `mx.example.com`.
fn host_of(relay: &str) -> &str {
    relay.split_once('[').map_or(relay, |(h, _)| h)
}

/// A leading three-digit reply code (`550 `, `550-`, `#550`, `421` alone) of a reply.
fn reply_code(reply: &str) -> Option<u16> {
    let r = reply.trim_start_matches('#').as_bytes();
    let digits = r.get(..3)?;
    if !matches!(digits[0], b'2'..=b'5') || !digits[1..].iter().all(u8::is_ascii_digit) {
        return None;
    }
    if r.get(3)
        .is_some_and(|&b| b.is_ascii_alphanumeric() || b == b'.')
    {
        return None;
    }
    Some(
        digits
            .iter()
            .fold(0u16, |acc, &d| acc * 10 + u16::from(d - b'0')),
    )
}

/// The first enhanced status code (`5.1.1`, `4.7.650`) in the text, with class 2, 4
/// or 5, not inside a longer dotted number (an IP address).
fn find_dsn(text: &str) -> Option<&str> {
    let b = text.as_bytes();
    let digits = |mut i: usize, max: usize| {
        let start = i;
        while i < b.len() && b[i].is_ascii_digit() && i - start < max {
            i += 1;
        }
        (i > start).then_some(i)
    };
    let mut i = 0;
    while i + 4 < b.len() {
        let c = b[i];
        let boundary_before = i == 0 || !(b[i - 1].is_ascii_alphanumeric() || b[i - 1] == b'.');
        if matches!(c, b'2' | b'4' | b'5')
            && b[i + 1] == b'.'
            && boundary_before
            && let Some(j) = digits(i + 2, 3)
            && b.get(j) == Some(&b'.')
            && let Some(k) = digits(j + 1, 3)
            && !b.get(k).is_some_and(|&x| {
                x.is_ascii_digit() || (x == b'.' && b.get(k + 1).is_some_and(u8::is_ascii_digit))
            })
        {
            return Some(&text[i..k]);
        }
        i += 1;
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn classifier(user: &str) -> Classifier {
        let mut b = Classifier::builder();
        if !user.is_empty() {
            b.add_rules("user.yaml", user).unwrap();
        }
        b.build().unwrap()
    }

    fn input<'a>(status: &'a str, dsn: Option<&'a str>, text: &'a str) -> Input<'a> {
        Input {
            status,
            dsn,
            text,
            ..Input::default()
        }
    }

    #[test]
    fn text_helpers() {
        assert_eq!(reply_code("550-5.7.26 x"), Some(550));
        assert_eq!(reply_code("421 Too many"), Some(421));
        assert_eq!(reply_code("#550 5.2.3 RESOLVER"), Some(550));
        assert_eq!(reply_code("5.2.3 Message too large"), None);
        assert_eq!(reply_code("2000 things"), None);
        assert_eq!(
            find_dsn("host a[192.0.2.1] said: 550 5.1.1 <x>"),
            Some("5.1.1")
        );
        assert_eq!(find_dsn("451 4.7.650 The mail server"), Some("4.7.650"));
        assert_eq!(find_dsn("from 192.0.2.1 only"), None);
        assert_eq!(find_dsn("(#5.1.1)"), Some("5.1.1"));
        assert_eq!(host_of("mx.a.example[192.0.2.1]:25"), "mx.a.example");
        assert_eq!(truncate("aé", 2), "a");
    }

    #[test]
    fn hard_soft_follows_the_dsn_class() {
        let c = classifier("");
        let v = c.classify(&input("bounced", Some("4.2.2"), "452 4.2.2 Mailbox full"));
        assert_eq!((v.reason, v.hard), (Reason::MailboxFull, Some(false)));
        let v = c.classify(&input("deferred", Some("5.0.0"), "552 4.2.2 Mailbox full"));
        assert_eq!(v.hard, Some(true));
        let v = c.classify(&input(
            "deferred",
            None,
            "connect to a[192.0.2.1]:25: Connection refused",
        ));
        assert_eq!((v.reason, v.hard), (Reason::NetworkError, Some(false)));
        assert_eq!(v.rule.to_string(), "postfix:connect-refused");
        let v = c.classify(&input("sent", Some("2.0.0"), "250 2.0.0 Ok: queued as ABC"));
        assert_eq!((v.reason, v.hard), (Reason::Delivered, None));
    }

    #[test]
    fn user_rules_come_first_and_override_hardness_without_dsn() {
        let user = "rules:\n  - name: acme-full\n    reason: mailboxfull\n    hard: false\n    text: 'connection refused'\n    relay: '\\.acme\\.example$'\n";
        let c = classifier(user);
        let mut i = input(
            "bounced",
            None,
            "connect to mx.acme.example[192.0.2.1]:25: Connection refused",
        );
        i.relay = Some("mx.acme.example[192.0.2.1]:25");
        let v = c.classify(&i);
        assert_eq!(v.reason, Reason::MailboxFull);
        assert_eq!(v.rule.to_string(), "user.yaml:2:acme-full");
        assert_eq!(v.hard, Some(false));
        // Another relay: the user rule does not apply.
        i.relay = Some("mx.other.example");
        assert_eq!(c.classify(&i).reason, Reason::NetworkError);
        // With a DSN, Postfix's class wins over the override.
        i.relay = Some("mx.acme.example");
        i.dsn = Some("5.0.0");
        assert_eq!(c.classify(&i).hard, Some(true));
    }

    #[test]
    fn precedence_is_file_order() {
        let user = "rules:\n  - name: first\n    reason: spamdetected\n    text: 'rejected'\n  - name: second\n    reason: policyviolation\n    text: 'message rejected'\n";
        let c = classifier(user);
        let v = c.classify(&input(
            "bounced",
            Some("5.7.1"),
            "554 5.7.1 Message rejected",
        ));
        assert_eq!(v.rule.name(), "first");
        // A second file comes after the first.
        let mut b = Classifier::builder();
        b.add_rules(
            "a.yaml",
            "rules:\n  - name: a\n    reason: blocked\n    code: 554\n",
        )
        .unwrap();
        b.add_rules("b.yaml", user).unwrap();
        let v = b
            .build()
            .unwrap()
            .classify(&input("bounced", None, "554 Message rejected"));
        assert_eq!(v.rule.to_string(), "a.yaml:2:a");
    }

    #[test]
    fn structured_matchers_must_all_pass() {
        let user = "rules:\n  - name: r\n    reason: ratelimited\n    dsn: '4.7.'\n    code: 4xx\n    status: deferred\n    text: 'slow down'\n";
        let c = classifier(user);
        let ok = input("deferred", Some("4.7.0"), "421 4.7.0 please slow down");
        assert_eq!(c.classify(&ok).rule.name(), "r");
        for bad in [
            input("bounced", Some("4.7.0"), "421 4.7.0 please slow down"),
            input("deferred", Some("4.2.0"), "421 4.2.0 please slow down"),
            input("deferred", Some("4.7.0"), "521 4.7.0 please slow down"),
            input("deferred", Some("4.7.0"), "421 4.7.0 please go away"),
        ] {
            assert_ne!(c.classify(&bad).rule.name(), "r", "{bad:?}");
        }
    }

    #[test]
    fn fallback() {
        let c = classifier("");
        let v = c.classify(&input("bounced", None, "zzz qqq"));
        assert_eq!(
            (v.reason, v.rule.to_string().as_str()),
            (Reason::OnHold, "fallback")
        );
        assert_eq!(
            c.classify(&input("bounced", None, "")).reason,
            Reason::Undefined
        );
    }

    #[test]
    fn classifier_is_shareable() {
        fn send_sync<T: Send + Sync>() {}
        send_sync::<Classifier>();
        send_sync::<Verdict>();
    }

    proptest::proptest! {
        #[test]
        fn never_panics(
            text in "\\PC{0,300}",
            host in "[a-z0-9.\\[\\]-]{0,20}",
            dsn in proptest::option::of("[245]\\.[0-9]{1,3}\\.[0-9]{0,3}"),
        ) {
            // Built once: compiling the built-in rules takes a while in debug builds.
            static SHARED: std::sync::OnceLock<Classifier> = std::sync::OnceLock::new();
            let c = SHARED.get_or_init(|| classifier(""));
            for t in [
                text.clone(),
                format!("host {host} said: {text}"),
                format!("delivery temporarily suspended: host {host} refused to talk to me: {text}"),
                format!("connect to {host}: {text}"),
            ] {
                let v = c.classify(&input("bounced", dsn.as_deref(), &t));
                proptest::prop_assert!(v.reason.is_failure() || v.hard.is_none());
                let _ = crate::normalize(&t);
            }
        }
    }

    #[test]
    fn builtin_rules_load() {
        let c = classifier("");
        assert!(c.rule_counts().1 > 50);
    }
}
