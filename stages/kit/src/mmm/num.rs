//! Number parsing for MMM values. Nearly every value in an MMM file is a short plain
//! decimal (`-0.0162456`, `1142.97`, `0`); those take a fast path that is exact, and
//! anything else (long significands, exponents, `inf`, `nan`, `+1`) goes to
//! `fast_float2`. Both round correctly, so the result is the same either way.

/// 10^0 ..= 10^19 (the most fraction digits the fast path takes): every one exactly
/// representable as an f64.
const POW10: [f64; 20] = [
    1e0, 1e1, 1e2, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8, 1e9, 1e10, 1e11, 1e12, 1e13, 1e14, 1e15, 1e16,
    1e17, 1e18, 1e19,
];

/// The number at the start of `s` and the bytes it used, or `None` when `s` does not
/// start with one: the same as `fast_float2::parse_partial::<f64>`.
#[inline]
pub fn parse_partial(s: &[u8]) -> Option<(f64, usize)> {
    fast(s).or_else(|| fast_float2::parse_partial::<f64, _>(s).ok())
}

/// Digits from `s[i..]` folded into `m`: the index after them.
#[inline(always)]
fn digits(s: &[u8], mut i: usize, m: &mut u64) -> usize {
    while let Some(&b) = s.get(i) {
        let d = b.wrapping_sub(b'0');
        if d > 9 {
            break;
        }
        *m = m.wrapping_mul(10).wrapping_add(u64::from(d));
        i += 1;
    }
    i
}

/// `[-]digits[.digits]` with at most 19 digits, a significand up to 2^53 and no
/// exponent: `m / 10^k` is then one correctly rounded division of exact operands
/// (Clinger's fast path). `None` for anything else.
#[inline(always)]
fn fast(s: &[u8]) -> Option<(f64, usize)> {
    let neg = s.first() == Some(&b'-');
    let start = usize::from(neg);
    let mut m = 0u64;
    let mut i = digits(s, start, &mut m);
    let int_digits = i - start;
    let mut frac = 0;
    if s.get(i) == Some(&b'.') {
        let f0 = i + 1;
        i = digits(s, f0, &mut m);
        frac = i - f0;
    }
    let n = int_digits + frac;
    if n == 0 || n > 19 || m > 1 << 53 || s.get(i).is_some_and(|b| b | 0x20 == b'e') {
        return None;
    }
    let v = m as f64 / POW10[frac];
    Some((if neg { -v } else { v }, i))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn same(s: &str) {
        let want = fast_float2::parse_partial::<f64, _>(s.as_bytes()).ok();
        let got = parse_partial(s.as_bytes());
        match (want, got) {
            (Some((a, n)), Some((b, m))) => {
                assert_eq!(n, m, "{s:?}: bytes used");
                assert!(
                    a.to_bits() == b.to_bits() || (a.is_nan() && b.is_nan()),
                    "{s:?}: {a} vs {b}"
                );
            }
            (w, g) => assert!(
                w.is_none() && g.is_none(),
                "{s:?}: fast_float2 {w:?}, ours {g:?}"
            ),
        }
    }

    #[test]
    fn agrees_with_fast_float_on_mmm_values_and_odd_ones() {
        for s in [
            "0",
            "-0",
            "1142.97",
            "-252.854",
            "0.0028466",
            "-0.0735726 ",
            "1.64312<",
            "3e-05",
            "-1.5E+3",
            "1e22",
            "9007199254740993",
            "9007199254740992",
            "12345678901234567890",
            "0.1234567890123456789",
            "0.00000000000000000000001",
            ".5",
            "5.",
            "-.5",
            "-",
            ".",
            "",
            "+1",
            "inf",
            "-inf",
            "nan",
            "1e",
            "1x",
            "0x10",
            "00012.50",
            "1.5e3.2",
        ] {
            same(s);
        }
    }

    #[test]
    fn agrees_with_fast_float_on_random_decimals() {
        let mut x = 0x9E37_79B9_7F4A_7C15u64;
        let mut next = move || {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x
        };
        for _ in 0..200_000 {
            let r = next();
            let digits = (next() >> (r % 64)).to_string();
            let point = (r >> 8) as usize % (digits.len() + 1);
            let mut s = String::new();
            if r & 1 == 1 {
                s.push('-');
            }
            s.push_str(&digits[..point]);
            if (r >> 16) & 3 != 0 {
                s.push('.');
            }
            s.push_str(&digits[point..]);
            if (r >> 20) & 7 == 0 {
                s.push_str(&format!("e{}", (r >> 24) % 40));
            }
            same(&s);
        }
    }
}
