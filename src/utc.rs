//! UTC times as people read and type them: Unix seconds or RFC 3339, for
//! the audit commands and tool messages. Small enough to keep rather than
//! take a date crate for.

/// Unix seconds (`1714560000`), an RFC 3339 date-time
/// (`2024-05-01T12:00:00Z`, `2024-05-01T14:00:00.5+02:00`) or a full date
/// (`2024-05-01`, midnight UTC). Fractions of a second are dropped.
pub fn parse_time(input: &str) -> Result<i64, String> {
    let s = input.trim();
    if !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit()) {
        return s
            .parse()
            .map_err(|_| format!("{input:?}: too large for Unix seconds"));
    }
    rfc3339(s).ok_or_else(|| {
        format!("{input:?} is neither Unix seconds nor an RFC 3339 time (2024-05-01T12:00:00Z)")
    })
}

fn rfc3339(s: &str) -> Option<i64> {
    let b = s.as_bytes();
    let date = b.get(..10)?;
    if date[4] != b'-' || date[7] != b'-' {
        return None;
    }
    let year = digits(&date[0..4])?;
    let month = digits(&date[5..7])?;
    let day = digits(&date[8..10])?;
    if !(1..=12).contains(&month) || day < 1 || day > days_in_month(year, month) {
        return None;
    }
    let days = days_from_civil(year, month, day);
    let rest = &b[10..];
    if rest.is_empty() {
        return Some(days * 86_400);
    }
    // RFC 3339 allows a space (or lower-case t) in place of `T`.
    if !matches!(rest[0], b'T' | b't' | b' ') || rest.len() < 9 {
        return None;
    }
    let clock = &rest[1..9];
    if clock[2] != b':' || clock[5] != b':' {
        return None;
    }
    let (hour, minute, second) = (
        digits(&clock[0..2])?,
        digits(&clock[3..5])?,
        digits(&clock[6..8])?,
    );
    // 60: a leap second, counted as the next second's start.
    if hour > 23 || minute > 59 || second > 60 {
        return None;
    }
    let mut zone = &rest[9..];
    if let Some(fraction) = zone.strip_prefix(b".") {
        let n = fraction.iter().take_while(|b| b.is_ascii_digit()).count();
        if n == 0 {
            return None;
        }
        zone = &fraction[n..];
    }
    let offset = match zone {
        b"Z" | b"z" => 0,
        [sign @ (b'+' | b'-'), h1, h2, b':', m1, m2] => {
            let (h, m) = (digits(&[*h1, *h2])?, digits(&[*m1, *m2])?);
            if h > 23 || m > 59 {
                return None;
            }
            let secs = h * 3600 + m * 60;
            if *sign == b'+' { secs } else { -secs }
        }
        _ => return None,
    };
    Some(days * 86_400 + hour * 3600 + minute * 60 + second - offset)
}

fn digits(b: &[u8]) -> Option<i64> {
    b.iter().try_fold(0i64, |acc, &d| {
        d.is_ascii_digit().then(|| acc * 10 + i64::from(d - b'0'))
    })
}

fn days_in_month(year: i64, month: i64) -> i64 {
    match month {
        2 if year % 4 == 0 && (year % 100 != 0 || year % 400 == 0) => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

/// Days since 1970-01-01 of a proleptic Gregorian date (H. Hinnant's
/// `days_from_civil`).
fn days_from_civil(year: i64, month: i64, day: i64) -> i64 {
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (month + 9) % 12;
    let doy = (153 * mp + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// The inverse: (year, month, day) of a day count since 1970-01-01.
fn civil_from_days(days: i64) -> (i64, i64, i64) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

/// RFC 3339 in UTC, to the second: `2024-05-01T12:00:00Z`.
pub fn format_time(unix: i64) -> String {
    let (days, secs) = (unix.div_euclid(86_400), unix.rem_euclid(86_400));
    let (year, month, day) = civil_from_days(days);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}Z",
        secs / 3600,
        secs % 3600 / 60,
        secs % 60
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unix_seconds_are_taken_as_they_are() {
        assert_eq!(parse_time("1714564800"), Ok(1_714_564_800));
        assert_eq!(parse_time("0"), Ok(0));
    }

    #[test]
    fn rfc3339_times_in_any_offset_give_unix_seconds() {
        assert_eq!(parse_time("2024-05-01T12:00:00Z"), Ok(1_714_564_800));
        assert_eq!(parse_time("2024-05-01T14:00:00+02:00"), Ok(1_714_564_800));
        assert_eq!(
            parse_time("2024-05-01t07:30:00.250-04:30"),
            Ok(1_714_564_800)
        );
        assert_eq!(parse_time("2024-05-01 12:00:00z"), Ok(1_714_564_800));
        assert_eq!(parse_time("1970-01-01T00:00:00Z"), Ok(0));
        assert_eq!(parse_time("2024-02-29T00:00:00Z"), Ok(1_709_164_800));
    }

    #[test]
    fn a_full_date_is_midnight_utc() {
        assert_eq!(parse_time("2024-05-01"), Ok(1_714_521_600));
    }

    #[test]
    fn malformed_times_are_refused_with_an_example() {
        for bad in [
            "",
            "yesterday",
            "2024-05-01T12:00:00",
            "2024-13-01T00:00:00Z",
            "2023-02-29T00:00:00Z",
            "2024-05-01T24:00:00Z",
            "2024-05-01T12:00:00+2:00",
            "2024-05-01T12:00:00.Z",
            "-5",
        ] {
            let err = parse_time(bad).unwrap_err();
            assert!(err.contains("RFC 3339"), "{bad}: {err}");
        }
    }

    #[test]
    fn formatting_is_rfc3339_utc_and_parses_back() {
        for t in [0, 951_782_400, 1_714_564_800, 4_102_444_799] {
            let text = format_time(t);
            assert_eq!(parse_time(&text), Ok(t), "{text}");
        }
        assert_eq!(format_time(1_714_564_800), "2024-05-01T12:00:00Z");
    }
}
