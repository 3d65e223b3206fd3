//! Calendar arithmetic for the few date formats the tool reads and writes (proleptic
//! Gregorian, UTC). Small enough that a date-time crate would add more than it saves.

use anyhow::{bail, Result};
use std::time::{SystemTime, UNIX_EPOCH};

pub fn is_leap(year: i64) -> bool {
    (year % 4 == 0 && year % 100 != 0) || year % 400 == 0
}

pub fn days_in_month(year: i64, month: u32) -> u32 {
    match month {
        1 | 3 | 5 | 7 | 8 | 10 | 12 => 31,
        4 | 6 | 9 | 11 => 30,
        2 if is_leap(year) => 29,
        2 => 28,
        _ => 0,
    }
}

/// Days since 1970-01-01 (H. Hinnant's `days_from_civil`).
pub fn days_from_civil(year: i64, month: u32, day: u32) -> i64 {
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let m = i64::from(month);
    let doy = (153 * (if m > 2 { m - 3 } else { m + 9 }) + 2) / 5 + i64::from(day) - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// (year, month, day) of a day count since 1970-01-01.
pub fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let month = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let year = yoe + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

pub fn now_unix() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

/// `YYYY-MM-DDTHH:MM:SSZ`, or with nine fractional digits when `nanos` is non-zero.
pub fn rfc3339(unix_secs: u64, nanos: u32) -> String {
    let days = (unix_secs / 86_400) as i64;
    let rem = unix_secs % 86_400;
    let (y, m, d) = civil_from_days(days);
    let (hh, mm, ss) = (rem / 3600, rem % 3600 / 60, rem % 60);
    if nanos == 0 {
        format!("{y:04}-{m:02}-{d:02}T{hh:02}:{mm:02}:{ss:02}Z")
    } else {
        format!("{y:04}-{m:02}-{d:02}T{hh:02}:{mm:02}:{ss:02}.{nanos:09}Z")
    }
}

/// RFC 3339 text of a chain timestamp given in nanoseconds since the epoch.
pub fn rfc3339_nanos(nanos: u64) -> String {
    rfc3339(nanos / 1_000_000_000, (nanos % 1_000_000_000) as u32)
}

fn digits(text: &str) -> Option<u32> {
    if text.is_empty() || !text.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    text.parse().ok()
}

/// A valid calendar date from its parts.
pub fn checked_date(year: u32, month: u32, day: u32) -> Option<(i64, u32, u32)> {
    let year = i64::from(year);
    ((1..=12).contains(&month) && (1..=days_in_month(year, month)).contains(&day))
        .then_some((year, month, day))
}

/// `YYYY-MM-DD` only (strict), as a date.
pub fn parse_iso_date(text: &str) -> Option<(i64, u32, u32)> {
    let b = text.as_bytes();
    if b.len() != 10 || b[4] != b'-' || b[7] != b'-' {
        return None;
    }
    checked_date(
        digits(&text[0..4])?,
        digits(&text[5..7])?,
        digits(&text[8..10])?,
    )
}

/// A moment for `--since` / `--until`: unix seconds, `YYYY-MM-DD` (midnight UTC) or
/// `YYYY-MM-DDTHH:MM:SS[.fff]Z`. Returns unix seconds.
pub fn parse_moment(text: &str) -> Result<u64> {
    let text = text.trim();
    if !text.is_empty() && text.bytes().all(|b| b.is_ascii_digit()) {
        return text
            .parse()
            .map_err(|_| anyhow::anyhow!("`{text}` is too large for unix seconds"));
    }
    let (date, time) = match text.split_once(['T', ' ']) {
        Some((d, t)) => (d, Some(t)),
        None => (text, None),
    };
    let Some((y, m, d)) = parse_iso_date(date) else {
        bail!("`{text}` is not a time: use unix seconds, YYYY-MM-DD or YYYY-MM-DDTHH:MM:SSZ");
    };
    let mut secs = days_from_civil(y, m, d) * 86_400;
    if let Some(time) = time {
        let time = time.strip_suffix('Z').unwrap_or(time);
        let time = time.split_once('.').map_or(time, |(t, _)| t);
        let parts: Vec<Option<u32>> = time.split(':').map(digits).collect();
        match parts.as_slice() {
            [Some(h), Some(mi), Some(s)] if *h < 24 && *mi < 60 && *s < 61 => {
                secs += i64::from(h * 3600 + mi * 60 + s);
            }
            _ => bail!("`{text}` has an invalid time of day (HH:MM:SS, UTC)"),
        }
    }
    if secs < 0 {
        bail!("`{text}` is before 1970");
    }
    Ok(secs as u64)
}

/// With `EHRX_REPORT_PEAK_RSS` set: "peak RSS of ehrx itself: N kB", this process's peak
/// resident set (Linux `VmHWM`; not the `wasmd` processes it runs), for the benchmark.
pub fn peak_rss_report() -> Option<String> {
    std::env::var_os("EHRX_REPORT_PEAK_RSS")?;
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    Some(format!("peak RSS of ehrx itself: {}", line[6..].trim()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn civil_round_trip() {
        for days in [-800_000i64, -1, 0, 1, 11_016, 19_782, 2_932_896] {
            let (y, m, d) = civil_from_days(days);
            assert_eq!(days_from_civil(y, m, d), days);
        }
        assert_eq!(days_from_civil(2000, 3, 1), 11_017);
        assert_eq!(civil_from_days(0), (1970, 1, 1));
    }

    #[test]
    fn rfc3339_formats_chain_nanos() {
        assert_eq!(rfc3339(1_700_000_000, 0), "2023-11-14T22:13:20Z");
        assert_eq!(
            rfc3339_nanos(1_700_000_000_000_000_001),
            "2023-11-14T22:13:20.000000001Z"
        );
    }

    #[test]
    fn moments_parse() {
        assert_eq!(parse_moment("1700000000").unwrap(), 1_700_000_000);
        assert_eq!(parse_moment("2023-11-14").unwrap(), 1_699_920_000);
        assert_eq!(parse_moment("2023-11-14T22:13:20Z").unwrap(), 1_700_000_000);
        assert_eq!(
            parse_moment("2023-11-14T22:13:20.5Z").unwrap(),
            1_700_000_000
        );
        assert!(parse_moment("2023-02-30").is_err());
        assert!(parse_moment("yesterday").is_err());
    }
}
