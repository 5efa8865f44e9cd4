//! INCRBYFLOAT and HINCRBYFLOAT as Redis computes them: in C's `long double` (on x86-64 the
//! x87 extended format, a 64-bit mantissa), printed with `"%.17Lf"` and trailing zeros
//! dropped. f64 arithmetic answers differently where users look: 0.1 + 0.2 is
//! 0.30000000000000004 in f64 and 0.3 in Redis; 3.14159 + 0.01 is 3.1515899999999997 and
//! 3.15159. The same arithmetic is done here exactly, on big integers: parse (correctly
//! rounded, as strtold), add (rounded once), print (the exact binary value rounded to 17
//! decimals, as glibc's printf).

use num_bigint::{BigInt, BigUint, Sign};

/// A finite extended value: `mantissa × 2^exp`, the mantissa at most 64 bits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct LongDouble {
    negative: bool,
    mantissa: u64,
    exp: i64,
}

/// The x87 format's largest values are below 2^16384.
const MAX_BITS: i64 = 16384;
/// Decimal exponents beyond which a text is out of the format's range either way (its
/// largest value is ~1.19e4932, its smallest subnormal ~3.6e-4951).
const MAX_DECIMAL_EXP: i64 = 4940;
const MIN_DECIMAL_EXP: i64 = -4940;

/// Redis refuses longer texts as floats (MAX_LONG_DOUBLE_CHARS).
pub const MAX_CHARS: usize = 5 * 1024;

/// What adding two texts gives.
#[derive(Debug, PartialEq, Eq)]
pub enum Sum {
    /// The sum as Redis prints it.
    Text(String),
    /// The sum is beyond the format's range (Redis: "increment would produce NaN or
    /// Infinity").
    Overflow,
    /// One of the texts is not a plain decimal number in range (`inf`, hexadecimal, a
    /// subnormal): the caller computes in f64.
    NotDecimal,
}

/// Whether `text` is a plain decimal number in the format's range (wider than f64's:
/// `1e4000` is one).
pub fn is_decimal(text: &[u8]) -> bool {
    parse(text).is_some()
}

/// `a + b` for two texts Redis's float parser accepted.
pub fn add(a: &[u8], b: &[u8]) -> Sum {
    let (Some(x), Some(y)) = (parse(a), parse(b)) else { return Sum::NotDecimal };
    match sum(x, y) {
        Some(v) => Sum::Text(format(v)),
        None => Sum::Overflow,
    }
}

/// `strtold` of a plain decimal text (`-12.5e3`), correctly rounded; None for anything else
/// or a value out of range.
fn parse(text: &[u8]) -> Option<LongDouble> {
    if text.len() >= MAX_CHARS {
        return None;
    }
    let text = std::str::from_utf8(text).ok()?;
    let (negative, unsigned) = match text.as_bytes().first()? {
        b'-' => (true, &text[1..]),
        b'+' => (false, &text[1..]),
        _ => (false, text),
    };
    let (mantissa, exp10) = match unsigned.find(['e', 'E']) {
        Some(i) => (&unsigned[..i], unsigned[i + 1..].parse::<i64>().ok()?),
        None => (unsigned, 0),
    };
    let (int, frac) = mantissa.split_once('.').unwrap_or((mantissa, ""));
    if (int.is_empty() && frac.is_empty()) || !int.bytes().chain(frac.bytes()).all(|c| c.is_ascii_digit()) {
        return None;
    }
    let digits = format!("{int}{frac}");
    let digits = digits.trim_start_matches('0');
    if digits.is_empty() {
        return Some(LongDouble { negative, mantissa: 0, exp: 0 });
    }
    // The value is digits × 10^k; its leading digit's decimal exponent bounds the range.
    let k = exp10.checked_sub(frac.len() as i64)?;
    let leading = k.checked_add(digits.len() as i64 - 1)?;
    if !(MIN_DECIMAL_EXP..=MAX_DECIMAL_EXP).contains(&leading) {
        return None;
    }
    let n: BigUint = digits.parse().ok()?;
    let ten = BigUint::from(10u32);
    let (mantissa, exp) =
        if k >= 0 { round(&(n * ten.pow(k as u32)), &BigUint::from(1u32)) } else { round(&n, &ten.pow((-k) as u32)) };
    Some(LongDouble { negative, mantissa, exp }).filter(|v| v.exp + 64 <= MAX_BITS)
}

/// `num / den` (both non-zero) rounded to a 64-bit mantissa, ties to even: `(mantissa, exp)`.
fn round(num: &BigUint, den: &BigUint) -> (u64, i64) {
    // Scale so the quotient has 66 or 67 bits: 64 kept, the rest (and the remainder) decide
    // the rounding.
    let shift = 66 + den.bits() as i64 - num.bits() as i64;
    let (q, r) = if shift >= 0 {
        let n = num << shift as usize;
        (&n / den, &n % den)
    } else {
        let d = den << (-shift) as usize;
        (num / &d, num % &d)
    };
    let sticky = r.bits() > 0;
    let drop = q.bits() as i64 - 64;
    let kept = &q >> drop as usize;
    let mut mantissa = kept.iter_u64_digits().next().unwrap_or(0);
    let rest = &q - (&kept << drop as usize);
    let half = BigUint::from(1u32) << (drop - 1) as usize;
    let up = rest > half || (rest == half && (sticky || mantissa & 1 == 1));
    let mut exp = drop - shift;
    if up {
        match mantissa.checked_add(1) {
            Some(m) => mantissa = m,
            None => {
                mantissa = 1 << 63;
                exp += 1;
            }
        }
    }
    (mantissa, exp)
}

/// `a + b`, rounded once; None when it overflows.
fn sum(a: LongDouble, b: LongDouble) -> Option<LongDouble> {
    let exp = a.exp.min(b.exp);
    let signed = |v: LongDouble| {
        let magnitude = BigInt::from(v.mantissa) << (v.exp - exp) as usize;
        if v.negative {
            -magnitude
        } else {
            magnitude
        }
    };
    let total = signed(a) + signed(b);
    let (sign, magnitude) = total.into_parts();
    if sign == Sign::NoSign {
        return Some(LongDouble { negative: false, mantissa: 0, exp: 0 });
    }
    let (mantissa, e) = round(&magnitude, &BigUint::from(1u32));
    let v = LongDouble { negative: sign == Sign::Minus, mantissa, exp: exp + e };
    (v.exp + 64 <= MAX_BITS).then_some(v)
}

/// `"%.17Lf"` with trailing zeros (and a trailing point) dropped, and "-0" printed as "0".
fn format(v: LongDouble) -> String {
    let scale = BigUint::from(10u32).pow(17);
    let scaled = if v.exp >= 0 {
        (BigUint::from(v.mantissa) << v.exp as usize) * scale
    } else {
        let num = BigUint::from(v.mantissa) * scale;
        let drop = (-v.exp) as usize;
        let q = &num >> drop;
        let rest = &num - (&q << drop);
        let half = BigUint::from(1u32) << (drop - 1);
        let odd = q.bit(0);
        if rest > half || (rest == half && odd) {
            q + 1u32
        } else {
            q
        }
    };
    let digits = format!("{scaled:0>18}");
    let (int, frac) = digits.split_at(digits.len() - 17);
    let frac = frac.trim_end_matches('0');
    let body = if frac.is_empty() { int.to_string() } else { format!("{int}.{frac}") };
    if v.negative && body != "0" {
        format!("-{body}")
    } else {
        body
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sums_are_redis_s() {
        // (stored value, increment, what redis-server 7 answered to INCRBYFLOAT)
        let cases = [
            ("0", "1000.1", "1000.09999999999999998"),
            ("1000.1", "0.01", "1000.10999999999999999"),
            ("0", "3.14159", "3.14159"),
            ("3.14159", "0.01", "3.15159"),
            ("10000000000", "0.01", "10000000000.00999999977648258"),
            ("0", "123456.789", "123456.78900000000000148"),
            ("0.1", "0.2", "0.3"),
            ("9223372036854775807", "10", "9223372036854775817"),
            ("1", "-1", "0"),
            ("0.1", "-0.1", "0"),
            ("1e30", "1", "1000000000000000000024696061952"),
            ("-5", "0.000000000000000001", "-5"),
            ("1.5e-10", "1", "1.00000000015"),
            ("5.0e3", "2.0e2", "5200"),
            ("10.50", "0.1", "10.6"),
            ("10.6", "-5", "5.6"),
            ("17179869184", "1.5", "17179869185.5"),
            ("-0.00000000000000000001", "0", "0"),
            ("0.3333333333333333333", "0.6666666666666666667", "1"),
            ("123.456e-2", "7", "8.23456"),
        ];
        for (a, b, want) in cases {
            assert_eq!(add(a.as_bytes(), b.as_bytes()), Sum::Text(want.to_string()), "{a} + {b}");
        }
    }

    #[test]
    fn out_of_range_and_other_forms_are_left_to_the_caller() {
        assert_eq!(add(b"1e4932", b"1e4932"), Sum::Overflow);
        assert_eq!(add(b"inf", b"1"), Sum::NotDecimal);
        assert_eq!(add(b"0x10", b"1"), Sum::NotDecimal);
        assert_eq!(add(b"1e99999", b"1"), Sum::NotDecimal);
        assert_eq!(add(b"1e-99999", b"1"), Sum::NotDecimal);
        assert_eq!(add(b"1e", b"1"), Sum::NotDecimal);
        assert_eq!(add(b".", b"1"), Sum::NotDecimal);
    }
}
