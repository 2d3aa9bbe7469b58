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

/// The bytes `text()` of an MMM leaf treats as separators (`u8::is_ascii_whitespace`).
#[inline(always)]
fn is_ws(b: u8) -> bool {
    b.is_ascii_whitespace()
}

/// Parse the whitespace-separated numbers of an MMM leaf's text, appending them to
/// `out`. Errors name the offending token: non-numeric, or NaN/infinity.
///
/// Plain decimals (`[-]digits[.digits]`, at most 15 characters after the sign) go
/// through a SIMD path on x86-64 CPUs with SSE4.1; every other token, and the
/// last few of a leaf, through [`parse_partial`]. Both give the same bits (tested).
pub fn parse_list(t: &[u8], out: &mut Vec<f64>) -> Result<(), String> {
    let mut i = 0;
    loop {
        i += plain_run(&t[i..], out);
        while i < t.len() && is_ws(t[i]) {
            i += 1;
        }
        if i >= t.len() {
            return Ok(());
        }
        i += one_token(&t[i..], out)?;
    }
}

/// The number at the start of `rest` (which starts with a non-space): appended to
/// `out`, returning the bytes it used.
#[inline]
fn one_token(rest: &[u8], out: &mut Vec<f64>) -> Result<usize, String> {
    let token = || {
        let end = rest.iter().position(|b| is_ws(*b)).unwrap_or(rest.len());
        String::from_utf8_lossy(&rest[..end.min(40)]).to_string()
    };
    let (v, used) =
        parse_partial(rest).ok_or_else(|| format!("non-numeric value `{}`", token()))?;
    if used < rest.len() && !is_ws(rest[used]) {
        return Err(format!("non-numeric value `{}`", token()));
    }
    if !v.is_finite() {
        return Err(format!("non-finite value `{}` (NaN or infinity)", token()));
    }
    out.push(v);
    Ok(used)
}

/// Plain decimals from the start of `t` by the SIMD path, as many as it takes: the
/// bytes consumed (always at a token start or the end of `t`).
#[inline]
fn plain_run(t: &[u8], out: &mut Vec<f64>) -> usize {
    #[cfg(target_arch = "x86_64")]
    {
        if std::arch::is_x86_feature_detected!("sse4.1") {
            // SAFETY: the CPU has SSE4.1 (and so SSSE3), checked just above.
            return unsafe { simd::plain_run(t, out) };
        }
    }
    let _ = (t, out);
    0
}

#[cfg(target_arch = "x86_64")]
mod simd {
    use super::{is_ws, POW10};
    use std::arch::x86_64::*;

    /// `SHUF[len][dot]`: the `pshufb` mask that moves the digits of a token of `len`
    /// bytes whose `.` is at `dot` (`dot == len`: none) to the right end of a
    /// register, in order, zeros before them (index 0x80 gives 0).
    static SHUF: [[[u8; 16]; 17]; 16] = shuffles();

    const fn shuffles() -> [[[u8; 16]; 17]; 16] {
        let mut t = [[[0x80u8; 16]; 17]; 16];
        let mut len = 1;
        while len < 16 {
            let mut dot = 0;
            while dot <= len {
                let ndig = if dot < len { len - 1 } else { len };
                let mut lane = 16 - ndig;
                let mut k = 0;
                while k < len {
                    if k != dot {
                        t[len][dot][lane] = k as u8;
                        lane += 1;
                    }
                    k += 1;
                }
                dot += 1;
            }
            len += 1;
        }
        t
    }

    /// See [`super::plain_run`]. One token after the other: the sign, then 16 bytes
    /// whose digit and dot masks give the token's length and the dot's place, the
    /// digits moved into place by one shuffle and combined by multiply-adds.
    ///
    /// # Safety
    /// The CPU must support SSE4.1 and SSSE3.
    #[target_feature(enable = "ssse3,sse4.1")]
    pub(super) unsafe fn plain_run(t: &[u8], out: &mut Vec<f64>) -> usize {
        let n = t.len();
        let zero = _mm_set1_epi8(b'0' as i8);
        let nine = _mm_set1_epi8(9);
        let dot = _mm_set1_epi8(b'.' as i8);
        let w2 = _mm_setr_epi8(10, 1, 10, 1, 10, 1, 10, 1, 10, 1, 10, 1, 10, 1, 10, 1);
        let w4 = _mm_setr_epi16(100, 1, 100, 1, 100, 1, 100, 1);
        let w8 = _mm_setr_epi16(10000, 1, 10000, 1, 10000, 1, 10000, 1);
        let mut i = 0;
        loop {
            while i < n && is_ws(t[i]) {
                i += 1;
            }
            // A sign, 16 bytes to load, and the byte after the token must all be in `t`.
            if i + 17 > n {
                return i;
            }
            let neg = usize::from(t[i] == b'-');
            let s = i + neg;
            // SAFETY: s + 16 <= i + 17 <= n, so the 16 bytes are inside `t`.
            let v = unsafe { _mm_loadu_si128(t.as_ptr().add(s).cast()) };
            let d = _mm_sub_epi8(v, zero);
            let is_digit = _mm_cmpeq_epi8(_mm_min_epu8(d, nine), d);
            let digits = _mm_movemask_epi8(is_digit) as u32;
            let dots = _mm_movemask_epi8(_mm_cmpeq_epi8(v, dot)) as u32;
            let len = (!(digits | dots)).trailing_zeros() as usize;
            if len >= 16 {
                return i;
            }
            let within = (1u32 << len) - 1;
            let dots = dots & within;
            let end = s + len;
            // One dot at most, a digit at least, and a separator after the token
            // (`end < n` as len < 16); anything else is the scalar path's.
            if dots & dots.wrapping_sub(1) != 0 || digits & within == 0 || !is_ws(t[end]) {
                return i;
            }
            let at = if dots == 0 {
                len
            } else {
                dots.trailing_zeros() as usize
            };
            let frac = len - at - usize::from(dots != 0);
            // SAFETY: SHUF[len][at] is 16 bytes; len < 16 and at <= len.
            let mask = unsafe { _mm_loadu_si128(SHUF[len][at].as_ptr().cast()) };
            let x = _mm_shuffle_epi8(d, mask);
            let p2 = _mm_maddubs_epi16(x, w2); // pairs of digits: 0..=99
            let p4 = _mm_madd_epi16(p2, w4); // groups of 4: 0..=9999
            let p4 = _mm_packus_epi32(p4, p4);
            let p8 = _mm_madd_epi16(p4, w8); // groups of 8: 0..=99_999_999
            let hi = _mm_cvtsi128_si32(p8) as u32 as u64;
            let lo = _mm_extract_epi32::<1>(p8) as u32 as u64;
            // At most 15 digits: m < 10^15 < 2^53, exact; one rounding, as in `fast`.
            let m = hi.wrapping_mul(100_000_000).wrapping_add(lo);
            let v = m as f64 / POW10[frac];
            out.push(f64::from_bits(v.to_bits() | ((neg as u64) << 63)));
            i = end;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// [`parse_list`] without the SIMD path: the reference it is tested against.
    fn parse_list_scalar(t: &[u8], out: &mut Vec<f64>) -> Result<(), String> {
        let mut i = 0;
        loop {
            while i < t.len() && is_ws(t[i]) {
                i += 1;
            }
            if i >= t.len() {
                return Ok(());
            }
            i += one_token(&t[i..], out)?;
        }
    }

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

    /// A seeded xorshift64 stream for the randomized tests.
    fn xorshift(mut x: u64) -> impl FnMut() -> u64 {
        move || {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x
        }
    }

    #[test]
    fn agrees_with_fast_float_on_random_decimals() {
        let mut next = xorshift(0x9E37_79B9_7F4A_7C15u64);
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

    /// Whitespace-separated token lists, the SIMD path against the scalar one: the
    /// same values bit for bit, or the same error.
    #[test]
    fn list_parser_agrees_with_the_scalar_path() {
        let mut next = xorshift(0x2545_F491_4F6C_DD1Du64);
        let odd = [
            "-",
            ".",
            "-.",
            "..",
            "1..2",
            "1.2.3",
            "+1",
            "1e5",
            "-2.5E-3",
            "nan",
            "inf",
            "1x",
            "--1",
            "-0",
            "0",
            "5.",
            ".5",
            "-.5",
            "1-2",
            "123456789012345",
            "1234567890123456",
            "0.00000000000001",
            "-9999999.9999999",
            "12345678.1234567",
            "0000000000000001",
        ];
        let seps = [" ", "\n      ", "\t", "  ", "\r\n", "\x0c"];
        for case in 0..20_000 {
            let mut s = String::new();
            let count = next() % 60;
            for _ in 0..count {
                let r = next();
                if r.is_multiple_of(23) {
                    s.push_str(odd[(r >> 8) as usize % odd.len()]);
                } else {
                    if r & 1 == 1 {
                        s.push('-');
                    }
                    let int_digits = (r >> 4) as usize % 9;
                    let frac_digits = (r >> 12) as usize % 11;
                    let digits = format!("{:020}", next());
                    s.push_str(&digits[..int_digits]);
                    if (r >> 20) & 7 != 0 || int_digits == 0 {
                        s.push('.');
                        s.push_str(&digits[int_digits..int_digits + frac_digits]);
                    }
                }
                s.push_str(seps[(next() % 13) as usize % seps.len()]);
            }
            if case % 3 == 0 {
                s = s.trim_end().to_string();
            }
            let (mut a, mut b) = (Vec::new(), Vec::new());
            let ra = parse_list(s.as_bytes(), &mut a);
            let rb = parse_list_scalar(s.as_bytes(), &mut b);
            assert_eq!(ra, rb, "{s:?}");
            assert_eq!(
                a.iter().map(|v| v.to_bits()).collect::<Vec<_>>(),
                b.iter().map(|v| v.to_bits()).collect::<Vec<_>>(),
                "{s:?}"
            );
        }
    }

    /// The SIMD path is taken where the CPU has it (else the test above compares the
    /// scalar path with itself).
    #[test]
    #[cfg(target_arch = "x86_64")]
    fn the_simd_path_takes_plain_decimals() {
        if !std::arch::is_x86_feature_detected!("sse4.1") {
            return;
        }
        let line = b"-0.0162456 0.0012345 1142.97 -252.854 0.5 1e3 -0.25 0.125 0.0625 0.03125 7";
        let mut v = Vec::new();
        // Up to the exponent, which the scalar path takes.
        assert_eq!(plain_run(line, &mut v), 42);
        assert_eq!(v, [-0.0162456, 0.0012345, 1142.97, -252.854, 0.5]);
    }

    #[test]
    fn list_parser_reads_a_joint_position_line() {
        let line =
            b"-0.0162456 0.0012345 1142.97 -252.854 0 5. .5 -0 0.0028466 -0.0735726 1.64312 3";
        let mut v = Vec::new();
        assert_eq!(parse_list(line, &mut v), Ok(()));
        let want = [
            -0.0162456, 0.0012345, 1142.97, -252.854, 0.0, 5.0, 0.5, -0.0, 0.0028466, -0.0735726,
            1.64312, 3.0,
        ];
        assert_eq!(
            v.iter().map(|x| x.to_bits()).collect::<Vec<_>>(),
            want.map(f64::to_bits)
        );
        assert_eq!(
            parse_list(b"1 2 x 3", &mut v),
            Err("non-numeric value `x`".into())
        );
        assert_eq!(
            parse_list(b"0.25 0.5 0.75 1.0 1.25 nan 2", &mut v),
            Err("non-finite value `nan` (NaN or infinity)".into())
        );
    }
}
