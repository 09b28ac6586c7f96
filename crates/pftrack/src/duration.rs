//! Human durations in configuration and flags: `90d`, `12h`, `30m`, `45s`, `2w`.

use anyhow::bail;
use chrono::TimeDelta;

/// Parse `<number><unit>` with unit `s`, `m`, `h`, `d` or `w`.
pub fn parse(text: &str) -> anyhow::Result<TimeDelta> {
    let t = text.trim();
    let split = t.find(|c: char| !c.is_ascii_digit()).unwrap_or(t.len());
    let (digits, unit) = t.split_at(split);
    let Ok(n) = digits.parse::<i64>() else {
        bail!("expected a number followed by s, m, h, d or w (such as 90d)");
    };
    let seconds = match unit {
        "s" => 1,
        "m" => 60,
        "h" => 3600,
        "d" => 86_400,
        "w" => 7 * 86_400,
        _ => bail!("unknown unit {unit:?}: use s, m, h, d or w (such as 90d)"),
    };
    match n.checked_mul(seconds).and_then(TimeDelta::try_seconds) {
        Some(d) => Ok(d),
        None => bail!("duration too large"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn units() {
        assert_eq!(parse("90d").unwrap(), TimeDelta::days(90));
        assert_eq!(parse("12h").unwrap(), TimeDelta::hours(12));
        assert!(parse("d").is_err());
        assert!(parse("5y").is_err());
        assert!(parse("99999999999999999w").is_err());
    }
}
