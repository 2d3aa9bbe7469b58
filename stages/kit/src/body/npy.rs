//! Reading the `.npy` motions `pipe generate` writes: float32 (or float64), C order,
//! shape `[frames, 50]` = root position (3, mm), root rotation (3, rad), the 44
//! KIT-ML joint angles (rad) in canonical order.

use std::path::Path;

use super::fk::BodyMotion;

/// Values per frame in the `.npy` layout.
pub const WIDTH: usize = 50;

/// A 2-D array of an `.npy` file as f64, with its shape.
pub fn read_2d(path: &Path) -> Result<(usize, usize, Vec<f64>), String> {
    let bytes = std::fs::read(path).map_err(|e| format!("{}: {e}", path.display()))?;
    parse_2d(&bytes).map_err(|e| format!("{}: {e}", path.display()))
}

fn parse_2d(b: &[u8]) -> Result<(usize, usize, Vec<f64>), String> {
    if b.len() < 10 || &b[..6] != b"\x93NUMPY" {
        return Err("not an .npy file (no \\x93NUMPY magic)".into());
    }
    let (hlen, start) = match b[6] {
        1 => (u16::from_le_bytes([b[8], b[9]]) as usize, 10),
        2 | 3 if b.len() >= 12 => (u32::from_le_bytes([b[8], b[9], b[10], b[11]]) as usize, 12),
        v => return Err(format!("unsupported .npy version {v}")),
    };
    let header = b.get(start..start + hlen).ok_or("truncated .npy header")?;
    let header = String::from_utf8_lossy(header);
    let field = |key: &str| -> Option<String> {
        let at = header.find(&format!("'{key}'"))? + key.len() + 2;
        let rest = header[at..].trim_start().strip_prefix(':')?.trim_start();
        let end = if rest.starts_with('(') {
            rest.find(')')? + 1
        } else {
            rest.find([',', '}'])?
        };
        Some(rest[..end].trim().trim_matches('\'').to_string())
    };
    let descr = field("descr").ok_or("the header has no 'descr'")?;
    if field("fortran_order").as_deref() != Some("False") {
        return Err("Fortran-order arrays are not supported; save with C order".into());
    }
    let shape = field("shape").ok_or("the header has no 'shape'")?;
    let dims: Vec<usize> = shape
        .trim_matches(|c| c == '(' || c == ')')
        .split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(|s| s.parse::<usize>().map_err(|_| format!("bad shape {shape}")))
        .collect::<Result<_, _>>()?;
    let [rows, cols] = dims[..] else {
        return Err(format!(
            "expected a 2-D array [frames, {WIDTH}], got shape {shape}"
        ));
    };
    let data = &b[start + hlen..];
    let (size, f): (usize, fn(&[u8]) -> f64) = match descr.as_str() {
        "<f4" => (4, |c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]) as f64),
        "<f8" => (8, |c| {
            f64::from_le_bytes([c[0], c[1], c[2], c[3], c[4], c[5], c[6], c[7]])
        }),
        d => {
            return Err(format!(
                "unsupported dtype {d}: expected float32 or float64"
            ))
        }
    };
    let n = rows * cols;
    if data.len() < n * size {
        return Err(format!(
            "truncated data: shape {shape} needs {} bytes, the file has {}",
            n * size,
            data.len()
        ));
    }
    Ok((
        rows,
        cols,
        data[..n * size].chunks_exact(size).map(f).collect(),
    ))
}

/// An `.npy` file's bytes: float32, C order, `shape`.
pub fn f32_bytes(shape: &[usize], values: impl IntoIterator<Item = f32>) -> Vec<u8> {
    let dims: Vec<String> = shape.iter().map(|d| d.to_string()).collect();
    let shape = match dims.as_slice() {
        [one] => format!("({one},)"),
        _ => format!("({})", dims.join(", ")),
    };
    let mut h = format!("{{'descr': '<f4', 'fortran_order': False, 'shape': {shape}, }}");
    while (10 + h.len() + 1) % 64 != 0 {
        h.push(' ');
    }
    h.push('\n');
    let mut b = b"\x93NUMPY\x01\x00".to_vec();
    b.extend((h.len() as u16).to_le_bytes());
    b.extend(h.as_bytes());
    for v in values {
        b.extend(v.to_le_bytes());
    }
    b
}

/// A motion from the `.npy` layout (`fps` and `height_m` are not stored in it).
pub fn motion_from_layout(
    rows: usize,
    cols: usize,
    v: &[f64],
    fps: f64,
    height_m: f64,
) -> Result<BodyMotion, String> {
    if cols != WIDTH {
        return Err(format!(
            "expected {WIDTH} values per frame (root position 3, root rotation 3, 44 joints), got {cols}"
        ));
    }
    let m = BodyMotion {
        fps,
        height_m,
        root_position: (0..rows)
            .map(|f| [v[f * WIDTH], v[f * WIDTH + 1], v[f * WIDTH + 2]])
            .collect(),
        root_rotation: (0..rows)
            .map(|f| [v[f * WIDTH + 3], v[f * WIDTH + 4], v[f * WIDTH + 5]])
            .collect(),
        joints: (0..rows)
            .flat_map(|f| v[f * WIDTH + 6..(f + 1) * WIDTH].iter().copied())
            .collect(),
    };
    m.check()?;
    Ok(m)
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::panic)]
mod tests {
    use super::*;

    /// A header with any dtype and shape (to test what we refuse).
    fn npy(descr: &str, shape: &str, data: &[u8]) -> Vec<u8> {
        let good = f32_bytes(&[1], []);
        let text = String::from_utf8_lossy(&good[10..])
            .replace("<f4", descr)
            .replace("(1,)", shape);
        let mut b = good[..8].to_vec();
        b.extend((text.len() as u16).to_le_bytes());
        b.extend(text.as_bytes());
        b.extend(data);
        b
    }

    #[test]
    fn reads_float32_and_refuses_what_it_cannot() {
        let vals: Vec<u8> = (0..100).flat_map(|i| (i as f32).to_le_bytes()).collect();
        let (r, c, v) = parse_2d(&f32_bytes(&[2, 50], (0..100).map(|i| i as f32))).unwrap();
        assert_eq!((r, c, v[99]), (2, 50, 99.0));
        let m = motion_from_layout(r, c, &v, 20.0, 1.7).unwrap();
        assert_eq!(m.root_rotation[1], [53.0, 54.0, 55.0]);
        assert_eq!(m.joints[44], 56.0);
        assert!(parse_2d(&npy("<i4", "(2, 50)", &vals))
            .unwrap_err()
            .contains("dtype"));
        assert!(parse_2d(&npy("<f4", "(100,)", &vals))
            .unwrap_err()
            .contains("2-D"));
        assert!(parse_2d(&npy("<f4", "(3, 50)", &vals))
            .unwrap_err()
            .contains("truncated"));
        assert!(parse_2d(b"hello").unwrap_err().contains("magic"));
        let (r, c, v) = parse_2d(&npy("<f4", "(4, 25)", &vals)).unwrap();
        assert!(motion_from_layout(r, c, &v, 20.0, 1.7)
            .unwrap_err()
            .contains("50 values"));
        let (r, c, v) = parse_2d(&npy("<f4", "(0, 50)", &[])).unwrap();
        assert!(motion_from_layout(r, c, &v, 20.0, 1.7)
            .unwrap_err()
            .contains("no frames"));
    }
}
