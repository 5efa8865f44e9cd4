//! Doubles as Redis 7.2 writes them in replies (ZSCORE, ZINCRBY, RESP3 `,` frames): the
//! shortest digits that read back to the same value, in plain notation while the exponent is
//! small and in `1.5e+20` notation beyond, as Redis's `d2string`/`fpconv_dtoa` lay them out.

/// Formats `d` as Redis's `addReplyDouble` does.
pub fn format_double(d: f64) -> String {
    if d.is_nan() {
        return "nan".into();
    }
    if d.is_infinite() {
        return if d > 0.0 { "inf".into() } else { "-inf".into() };
    }
    if d == 0.0 {
        return if d.is_sign_negative() { "-0".into() } else { "0".into() };
    }
    // Redis prints integral values within ±LLONG_MAX/2 as integers.
    const HALF_I64: f64 = (i64::MAX / 2) as f64;
    if d.fract() == 0.0 && (-HALF_I64..=HALF_I64).contains(&d) {
        return (d as i64).to_string();
    }
    // Rust's `{:e}` gives the shortest round-trip digits: "-1.2345e-7".
    let sci = format!("{:e}", d.abs());
    let (mantissa, exp10) = sci.split_once('e').unwrap_or((&sci, "0"));
    let exp10: i32 = exp10.parse().unwrap_or(0);
    let digits: String = mantissa.chars().filter(|c| c.is_ascii_digit()).collect();
    let digits = digits.as_bytes();
    let ndigits = digits.len() as i32;
    // fpconv's K: the value is digits × 10^K.
    let k = exp10 - (ndigits - 1);
    let neg = d < 0.0;
    let mut out = String::with_capacity(24);
    if neg {
        out.push('-');
    }
    let exp = (k + ndigits - 1).abs();
    let push = |out: &mut String, bytes: &[u8]| out.extend(bytes.iter().map(|&b| b as char));
    if k >= 0 && exp < ndigits + 7 {
        push(&mut out, digits);
        out.extend(std::iter::repeat_n('0', k as usize));
        return out;
    }
    if k < 0 && (k > -7 || exp < 4) {
        let offset = ndigits + k;
        if offset <= 0 {
            out.push_str("0.");
            out.extend(std::iter::repeat_n('0', (-offset) as usize));
            push(&mut out, digits);
        } else {
            push(&mut out, &digits[..offset as usize]);
            out.push('.');
            push(&mut out, &digits[offset as usize..]);
        }
        return out;
    }
    let shown = digits.len().min(18 - neg as usize);
    out.push(digits[0] as char);
    if shown > 1 {
        out.push('.');
        push(&mut out, &digits[1..shown]);
    }
    out.push('e');
    out.push(if k + ndigits - 1 < 0 { '-' } else { '+' });
    out.push_str(&exp.to_string());
    out
}

#[cfg(test)]
mod tests {
    use super::format_double;

    #[test]
    fn matches_redis_7_2() {
        for (v, text) in [
            (1.0, "1"),
            (-2.5, "-2.5"),
            (1.1, "1.1"),
            (0.1, "0.1"),
            (3.0e-5, "0.00003"),
            (1.5e-7, "1.5e-7"),
            (123456789.0, "123456789"),
            (1e15, "1000000000000000"),
            (4e18, "4000000000000000000"),
            (1e19, "1e+19"),
            (1e20, "1e+20"),
            (1.5e300, "1.5e+300"),
            (12345.678, "12345.678"),
            (f64::INFINITY, "inf"),
            (f64::NEG_INFINITY, "-inf"),
            (0.0, "0"),
        ] {
            assert_eq!(format_double(v), text, "{v}");
        }
    }

    #[test]
    fn reads_back_exactly() {
        for v in [0.1 + 0.2, 1.0 / 3.0, -1e-300, 9007199254740993.0, 2.5e-5] {
            assert_eq!(format_double(v).parse::<f64>().ok(), Some(v));
        }
    }
}
