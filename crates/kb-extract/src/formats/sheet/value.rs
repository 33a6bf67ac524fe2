//! Cell values as a person reads them.
//!
//! Numbers: whole numbers without `.0`; other numbers rounded to 15 significant digits, which
//! removes the noise of binary floating point (`0.1 + 0.2` is `0.3`). When the cell has a
//! number format (XLSX), its percent sign, thousands separator, decimal places and currency
//! symbol are applied (`#,##0` → `412,000`, `0.0%` → `12.5%`, `"$"#,##0.00` → `$1,250.00`);
//! the rest of the format (colours, padding, conditions) is ignored. Dates are ISO
//! (`2025-12-31`), date-times `2025-12-31 14:30` (seconds only when not zero), times of day
//! `14:30`, durations `h:mm:ss`.

use calamine::{Data, ExcelDateTime};
use chrono::{NaiveDate, NaiveDateTime, NaiveTime, Timelike};

/// The text of an XLSX or XLS cell value; `None` for an empty cell. `format` is the cell's
/// number format code, when known.
pub(super) fn cell_text(value: &Data, format: Option<&NumberStyle>) -> Option<String> {
    let text = match value {
        Data::Empty => return None,
        Data::String(s) => s.clone(),
        // Whole numbers stored as integers (XLS RK records) and floats read the same way.
        #[allow(clippy::cast_precision_loss)]
        Data::Int(n) => number(*n as f64, format),
        Data::Float(x) => number(*x, format),
        Data::Bool(b) => boolean(*b).to_owned(),
        Data::DateTime(dt) => excel_datetime(dt),
        Data::DateTimeIso(s) => iso_datetime(s),
        Data::DurationIso(s) => iso_duration(s),
        Data::Error(e) => e.to_string(),
    };
    Some(text)
}

pub(super) fn boolean(b: bool) -> &'static str {
    if b { "TRUE" } else { "FALSE" }
}

/// What a number format asks for, as far as kb writes it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(super) struct NumberStyle {
    percent: bool,
    thousands: bool,
    /// Decimal places always shown (`0`s after the point) and at most shown (`0`, `#`, `?`).
    min_decimals: usize,
    max_decimals: Option<usize>,
    prefix: String,
    suffix: String,
}

impl NumberStyle {
    /// The percent style of an ODS percentage cell without display text.
    pub(super) fn percent() -> Self {
        Self {
            percent: true,
            ..Self::default()
        }
    }

    /// Reads a number format code; `None` for `General`, text (`@`) and codes with no digit
    /// placeholder, which leave the number as it is.
    pub(super) fn parse(code: &str) -> Option<Self> {
        if code.eq_ignore_ascii_case("general") {
            return None;
        }
        // The first section is for positive numbers (and all numbers when it is the only one).
        let mut style = Self::default();
        let mut placeholders = String::new();
        let mut literal = String::new();
        let mut chars = code.chars().peekable();
        let mut seen_digit = false;
        while let Some(c) = chars.next() {
            match c {
                ';' => break,
                '"' => {
                    for q in chars.by_ref() {
                        if q == '"' {
                            break;
                        }
                        literal.push(q);
                    }
                }
                '\\' => literal.extend(chars.next()),
                // Padding and fill: the next character is not shown as such.
                '_' | '*' => {
                    chars.next();
                }
                '[' => {
                    let mut inner = String::new();
                    for b in chars.by_ref() {
                        if b == ']' {
                            break;
                        }
                        inner.push(b);
                    }
                    // [$€-407]: a currency symbol and locale; [Red], [>100]: ignored.
                    if let Some(symbol) = inner.strip_prefix('$') {
                        literal.push_str(symbol.split('-').next().unwrap_or_default());
                    }
                }
                '%' => style.percent = true,
                '0' | '#' | '?' | '.' | ',' => {
                    if !seen_digit && !literal.trim().is_empty() {
                        style.prefix = std::mem::take(&mut literal);
                    }
                    literal.clear();
                    seen_digit |= c != '.' && c != ',';
                    placeholders.push(c);
                }
                '$' | '€' | '£' | '¥' | '₩' | '₹' | '-' | '+' | '(' | ')' | ' ' | ':' | '/' =>
                {
                    literal.push(c);
                }
                // Letters are dates, times or exponents: not a plain number format.
                c if c.is_alphabetic() => return None,
                _ => {}
            }
        }
        if !seen_digit {
            return None;
        }
        style.suffix = literal.trim_end().to_owned();
        style.prefix = style.prefix.trim_start().to_owned();
        let (int_part, dec_part) = match placeholders.split_once('.') {
            Some((i, d)) => (i, Some(d)),
            None => (placeholders.as_str(), None),
        };
        // A comma between digit placeholders groups thousands; trailing commas scale by 1000
        // (rare; ignored).
        let int_trimmed = int_part.trim_end_matches(',');
        style.thousands = int_trimmed.contains(',');
        if let Some(dec) = dec_part {
            let digits: Vec<char> = dec
                .chars()
                .filter(|c| matches!(c, '0' | '#' | '?'))
                .collect();
            style.min_decimals = digits.iter().filter(|c| **c == '0').count();
            style.max_decimals = Some(digits.len());
        } else {
            style.max_decimals = Some(0);
        }
        Some(style)
    }
}

/// A number as a person reads it, in `style` when given.
pub(super) fn number(x: f64, style: Option<&NumberStyle>) -> String {
    if !x.is_finite() {
        return x.to_string();
    }
    let Some(style) = style else {
        return plain(x);
    };
    let scaled = if style.percent { x * 100.0 } else { x };
    let mut digits = match style.max_decimals {
        Some(places) => trim_decimals(
            &round_half_up(scaled.abs(), places.min(15)),
            style.min_decimals,
        ),
        None => plain(scaled.abs()),
    };
    if style.thousands {
        digits = group_digits(&digits);
    }
    let negative = scaled < 0.0 && digits.chars().any(|c| c.is_ascii_digit() && c != '0');
    let mut out = String::new();
    if negative {
        out.push('-');
    }
    out.push_str(&style.prefix);
    out.push_str(&digits);
    if style.percent && !style.suffix.contains('%') {
        out.push('%');
    }
    out.push_str(&style.suffix);
    out
}

/// Whole numbers without a fraction; others at 15 significant digits, shortest form.
fn plain(x: f64) -> String {
    if x == x.trunc() && x.abs() < 1e15 {
        // Exact: the value is a whole number well inside i64.
        #[allow(clippy::cast_possible_truncation)]
        return format!("{}", x as i64);
    }
    let rounded: f64 = format!("{x:.14e}").parse().unwrap_or(x);
    let text = rounded.to_string();
    // Display never uses exponents; keep absurdly long expansions readable.
    if text.len() > 24 {
        format!("{rounded:e}")
    } else {
        text
    }
}

/// A non-negative `x` with `places` decimals, rounded half up as a spreadsheet does: on the
/// decimal digits of its 15-significant-digit form, so that 2.675 is 2.68 and 0.5 is 1.
fn round_half_up(x: f64, places: usize) -> String {
    let sci = format!("{x:.14e}");
    let Some((mantissa, exp)) = sci.split_once('e') else {
        return format!("{x:.places$}");
    };
    let Ok(exp) = exp.parse::<i64>() else {
        return format!("{x:.places$}");
    };
    let mut digits: Vec<u8> = mantissa
        .bytes()
        .filter(u8::is_ascii_digit)
        .map(|b| b - b'0')
        .collect();
    // The value is 0.d1d2d3… × 10^(exp + 1): pad so that every integer digit and `places`
    // decimals exist.
    let mut point = exp + 1;
    if point < 0 {
        let pad = usize::try_from(-point).unwrap_or(0).min(400);
        digits.splice(0..0, std::iter::repeat_n(0, pad));
        point = 0;
    }
    let point = usize::try_from(point).unwrap_or(0).min(400);
    let keep = point + places;
    if digits.len() < keep + 1 {
        digits.resize(keep + 1, 0);
    }
    let round_up = digits[keep] >= 5;
    digits.truncate(keep);
    let mut int_len = point;
    if round_up {
        let mut i = keep;
        loop {
            if i == 0 {
                digits.insert(0, 1);
                int_len += 1;
                break;
            }
            i -= 1;
            if digits[i] == 9 {
                digits[i] = 0;
            } else {
                digits[i] += 1;
                break;
            }
        }
    }
    let text = |ds: &[u8]| ds.iter().map(|d| char::from(b'0' + d)).collect::<String>();
    let int = text(&digits[..int_len]);
    let int = int.trim_start_matches('0');
    let int = if int.is_empty() { "0" } else { int };
    if places == 0 {
        int.to_owned()
    } else {
        format!("{int}.{}", text(&digits[int_len..]))
    }
}

/// Drops trailing zeros after the decimal point down to `min` places.
fn trim_decimals(fixed: &str, min: usize) -> String {
    let Some((int, dec)) = fixed.split_once('.') else {
        return fixed.to_owned();
    };
    let keep = dec.trim_end_matches('0').len().max(min);
    if keep == 0 {
        int.to_owned()
    } else {
        format!("{int}.{}", &dec[..keep])
    }
}

/// `1234567.5` → `1,234,567.5`.
fn group_digits(digits: &str) -> String {
    let (int, rest) = match digits.find('.') {
        Some(at) => digits.split_at(at),
        None => (digits, ""),
    };
    let mut out = String::with_capacity(digits.len() + int.len() / 3);
    for (i, c) in int.chars().enumerate() {
        if i > 0 && (int.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out.push_str(rest);
    out
}

/// A count with thousands separators, for notes.
pub(super) fn grouped(n: u64) -> String {
    group_digits(&n.to_string())
}

fn excel_datetime(dt: &ExcelDateTime) -> String {
    if dt.is_duration() {
        return duration_seconds((dt.as_f64() * 86_400.0).round());
    }
    let Some(value) = dt.as_datetime() else {
        return plain(dt.as_f64());
    };
    // Round to the second: serial values carry float noise in their fraction.
    let value = value + chrono::Duration::milliseconds(500);
    let value = value.with_nanosecond(0).unwrap_or(value);
    // A serial value below 1 is a time of day without a date.
    if dt.as_f64().abs() < 1.0 {
        return time_of_day(value.time());
    }
    datetime(value)
}

fn datetime(value: NaiveDateTime) -> String {
    if value.time() == NaiveTime::MIN {
        value.format("%Y-%m-%d").to_string()
    } else {
        format!("{} {}", value.format("%Y-%m-%d"), time_of_day(value.time()))
    }
}

fn time_of_day(time: NaiveTime) -> String {
    if time.second() == 0 {
        time.format("%H:%M").to_string()
    } else {
        time.format("%H:%M:%S").to_string()
    }
}

/// An ISO 8601 date, date-time or time (XLSX `t="d"` cells, ODS date values) in kb's form;
/// anything else as written.
pub(super) fn iso_datetime(text: &str) -> String {
    let text = text.trim();
    let no_zone = text.trim_end_matches('Z');
    for pattern in ["%Y-%m-%dT%H:%M:%S%.f", "%Y-%m-%dT%H:%M"] {
        if let Ok(value) = NaiveDateTime::parse_from_str(no_zone, pattern) {
            let value = value.with_nanosecond(0).unwrap_or(value);
            return datetime(value);
        }
    }
    if let Ok(date) = NaiveDate::parse_from_str(no_zone, "%Y-%m-%d") {
        return date.format("%Y-%m-%d").to_string();
    }
    if let Ok(time) = NaiveTime::parse_from_str(no_zone, "%H:%M:%S%.f") {
        return time_of_day(time.with_nanosecond(0).unwrap_or(time));
    }
    text.to_owned()
}

/// An ISO 8601 duration (`PT14H30M00S`, as ODS writes times and XLSX durations) as `h:mm`
/// or `h:mm:ss`; anything else as written.
pub(super) fn iso_duration(text: &str) -> String {
    let trimmed = text.trim();
    let (negative, body) = match trimmed.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, trimmed),
    };
    let Some(body) = body.strip_prefix('P') else {
        return trimmed.to_owned();
    };
    let mut seconds = 0f64;
    let mut number = String::new();
    let mut in_time = false;
    for c in body.chars() {
        match c {
            'T' => in_time = true,
            c if c.is_ascii_digit() || c == '.' => number.push(c),
            unit => {
                let Ok(n) = number.parse::<f64>() else {
                    return trimmed.to_owned();
                };
                number.clear();
                seconds += n * match (unit, in_time) {
                    ('D', false) => 86_400.0,
                    ('H', true) => 3_600.0,
                    ('M', true) => 60.0,
                    ('S', true) => 1.0,
                    _ => return trimmed.to_owned(),
                };
            }
        }
    }
    if !number.is_empty() {
        return trimmed.to_owned();
    }
    let text = duration_seconds(seconds.round());
    if negative { format!("-{text}") } else { text }
}

/// `h:mm` (or `h:mm:ss`) for a number of whole seconds.
fn duration_seconds(seconds: f64) -> String {
    if !seconds.is_finite() || seconds.abs() > 1e12 {
        return plain(seconds);
    }
    #[allow(clippy::cast_possible_truncation)]
    let total = seconds.abs() as u64;
    let sign = if seconds < 0.0 { "-" } else { "" };
    let (h, m, s) = (total / 3600, total / 60 % 60, total % 60);
    if s == 0 {
        format!("{sign}{h}:{m:02}")
    } else {
        format!("{sign}{h}:{m:02}:{s:02}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn styled(x: f64, code: &str) -> String {
        number(x, NumberStyle::parse(code).as_ref())
    }

    #[test]
    fn whole_numbers_have_no_fraction_and_float_noise_is_rounded_away() {
        assert_eq!(number(412_000.0, None), "412000");
        assert_eq!(number(-3.0, None), "-3");
        assert_eq!(number(0.1 + 0.2, None), "0.3");
        assert_eq!(number(98_500.5, None), "98500.5");
        assert_eq!(number(1.0 / 3.0, None), "0.333333333333333");
        assert_eq!(number(1e20, None), "100000000000000000000");
        assert_eq!(number(1e-7, None), "0.0000001");
    }

    #[test]
    fn number_formats_give_thousands_decimals_percent_and_currency() {
        assert_eq!(styled(412_000.0, "#,##0"), "412,000");
        assert_eq!(styled(1_250_000.456, "#,##0.00"), "1,250,000.46");
        assert_eq!(styled(0.125, "0.0%"), "12.5%");
        assert_eq!(styled(0.1 + 0.2, "0%"), "30%");
        assert_eq!(styled(1250.0, "\"$\"#,##0.00"), "$1,250.00");
        assert_eq!(styled(-1250.0, "[$€-407]#,##0;[Red]-#,##0"), "-€1,250");
        assert_eq!(styled(3.5, "#,##0.##"), "3.5");
        assert_eq!(styled(7.0, "0.00 \"kg\""), "7.00 kg");
        assert_eq!(styled(-0.0001, "0.00"), "0.00");
        assert_eq!(styled(510_500.5, "#,##0"), "510,501");
        assert_eq!(styled(2.675, "0.00"), "2.68");
        assert_eq!(styled(0.5, "0"), "1");
        assert_eq!(styled(9.995, "0.00"), "10.00");
        assert_eq!(styled(0.000_123, "0.0000"), "0.0001");
        assert_eq!(styled(0.0, "0.00"), "0.00");
        assert_eq!(styled(123_456_789_012.0, "#,##0"), "123,456,789,012");
        assert_eq!(NumberStyle::parse("General"), None);
        assert_eq!(NumberStyle::parse("@"), None);
        assert_eq!(NumberStyle::parse("0.00E+00"), None);
    }

    #[test]
    fn iso_dates_times_and_durations_are_written_plainly() {
        assert_eq!(iso_datetime("2025-12-31"), "2025-12-31");
        assert_eq!(iso_datetime("2025-12-31T00:00:00"), "2025-12-31");
        assert_eq!(iso_datetime("2026-01-15T14:30:00"), "2026-01-15 14:30");
        assert_eq!(
            iso_datetime("2026-01-15T14:30:05.250Z"),
            "2026-01-15 14:30:05"
        );
        assert_eq!(iso_datetime("14:30:00"), "14:30");
        assert_eq!(iso_datetime("next week"), "next week");
        assert_eq!(iso_duration("PT14H30M00S"), "14:30");
        assert_eq!(iso_duration("P1DT2H0M5S"), "26:00:05");
        assert_eq!(iso_duration("-PT0H15M"), "-0:15");
        assert_eq!(iso_duration("PTxS"), "PTxS");
    }

    #[test]
    fn excel_serial_dates_round_to_the_second() {
        use calamine::ExcelDateTimeType::{DateTime, TimeDelta};
        // 2025-12-31 is serial 46022; 14:30 is 0.6041666….
        let date = ExcelDateTime::new(46_022.0, DateTime, false);
        let stamp = ExcelDateTime::new(46_022.0 + 14.5 / 24.0 - 1e-9, DateTime, false);
        let time = ExcelDateTime::new(14.5 / 24.0, DateTime, false);
        let span = ExcelDateTime::new(1.5, TimeDelta, false);
        assert_eq!(excel_datetime(&date), "2025-12-31");
        assert_eq!(excel_datetime(&stamp), "2025-12-31 14:30");
        assert_eq!(excel_datetime(&time), "14:30");
        assert_eq!(excel_datetime(&span), "36:00");
    }
}
