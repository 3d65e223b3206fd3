//! Wall-clock stamps as the shell scripts print them (`date '+%H:%M:%S'`, `date -Is`), in
//! local time, and durations as `fmt_duration` of scripts/lib.sh.

use std::time::{SystemTime, UNIX_EPOCH};

/// Broken-down local time.
struct Local {
    year: i32,
    month: u32,
    day: u32,
    hour: u32,
    min: u32,
    sec: u32,
    /// Seconds east of UTC.
    offset: i64,
}

fn now() -> Local {
    let secs = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0) as libc::time_t;
    // SAFETY: localtime_r writes only into `tm`, which is a plain C struct.
    let mut tm: libc::tm = unsafe { std::mem::zeroed() };
    let ok = unsafe { !libc::localtime_r(&secs, &mut tm).is_null() };
    if !ok {
        return Local {
            year: 1970,
            month: 1,
            day: 1,
            hour: 0,
            min: 0,
            sec: 0,
            offset: 0,
        };
    }
    Local {
        year: tm.tm_year + 1900,
        month: (tm.tm_mon + 1) as u32,
        day: tm.tm_mday as u32,
        hour: tm.tm_hour as u32,
        min: tm.tm_min as u32,
        sec: tm.tm_sec as u32,
        offset: tm.tm_gmtoff,
    }
}

/// `HH:MM:SS`, the stamp of every log line.
pub fn clock() -> String {
    let t = now();
    format!("{:02}:{:02}:{:02}", t.hour, t.min, t.sec)
}

/// `date -Is`: `2026-12-06T21:13:43+00:00`.
pub fn iso_now() -> String {
    let t = now();
    format!(
        "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}{}",
        t.year,
        t.month,
        t.day,
        t.hour,
        t.min,
        t.sec,
        fmt_offset(t.offset)
    )
}

/// `date -u +%Y%m%dT%H%M%SZ`: `20261206T211343Z`.
pub fn utc_stamp() -> String {
    let secs = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0) as libc::time_t;
    // SAFETY: gmtime_r writes only into `tm`, which is a plain C struct.
    let mut tm: libc::tm = unsafe { std::mem::zeroed() };
    unsafe { libc::gmtime_r(&secs, &mut tm) };
    format!(
        "{:04}{:02}{:02}T{:02}{:02}{:02}Z",
        tm.tm_year + 1900,
        tm.tm_mon + 1,
        tm.tm_mday,
        tm.tm_hour,
        tm.tm_min,
        tm.tm_sec
    )
}

/// A UTC offset as `date -Is` prints it: `+00:00`, `-05:30`.
fn fmt_offset(secs: i64) -> String {
    let sign = if secs < 0 { '-' } else { '+' };
    let m = secs.unsigned_abs() / 60;
    format!("{sign}{:02}:{:02}", m / 60, m % 60)
}

/// `fmt_duration` of scripts/lib.sh: `1m05s`, `1h02m03s`.
pub fn fmt_duration(s: u64) -> String {
    if s >= 3600 {
        format!("{}h{:02}m{:02}s", s / 3600, s % 3600 / 60, s % 60)
    } else {
        format!("{}m{:02}s", s / 60, s % 60)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_as_the_scripts_print_them() {
        assert_eq!(fmt_duration(0), "0m00s");
        assert_eq!(fmt_duration(65), "1m05s");
        assert_eq!(fmt_duration(1105), "18m25s");
        assert_eq!(fmt_duration(3723), "1h02m03s");
    }

    #[test]
    fn offsets_as_date_iso_prints_them() {
        assert_eq!(fmt_offset(0), "+00:00");
        assert_eq!(fmt_offset(3600), "+01:00");
        assert_eq!(fmt_offset(-5 * 3600 - 1800), "-05:30");
    }

    #[test]
    fn stamps_have_the_shells_shape() {
        let c = clock();
        assert_eq!(c.len(), 8, "{c}");
        assert_eq!(&c[2..3], ":");
        let iso = iso_now();
        // 2026-12-06T21:13:43+00:00
        assert_eq!(iso.len(), 25, "{iso}");
        assert_eq!(&iso[10..11], "T");
    }
}
